package evidence

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// rebindProofPrefix starts what a re-bind proof signs: the collector's
// scheme (collector/server.RebindProofPrefix, copied so this package needs
// no collector code): SHA-256 of the prefix followed by the CSR's DER.
const rebindProofPrefix = "ward-rebind-v1\x00"

// ErrNotVerified is wrapped by Verify's error when the file does not
// verify; Result.Problems says why.
var ErrNotVerified = errors.New("evidence does not verify")

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// CA, when set, are the CA certificates the device certificates must
	// chain to, instead of the file's own CA chain (which then only
	// serves as intermediates): ward-verify --ca.
	CA []*x509.Certificate
	// Previous, when set, is an earlier evidence file of the same
	// collector: the file's log must carry a consistency proof from
	// Previous's checkpoint (ward-verify --previous).
	Previous *File
}

// Problem is something a verification found, at its place in the file
// ("devices[0].reports[12] (epoch 2, sequence 41)").
type Problem struct {
	Place   string `json:"place"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Place == "" {
		return p.Message
	}
	return p.Place + ": " + p.Message
}

// Result is what Verify found.
type Result struct {
	// Problems are the reasons the file does not verify; none means it
	// does.
	Problems []Problem `json:"problems"`
	// Notes are shown but are no failure: forks the collector recorded,
	// renewals without a key handover (older agents), reports whose policy
	// document is not in the file, and what the collector asserts
	// without a signature.
	Notes []Problem `json:"notes"`
	// Trust says what the certificates were checked against.
	Trust string `json:"trust"`
	// Feeds are the file's release feeds that decoded and validated.
	Feeds   []FeedResult   `json:"feeds"`
	Devices []DeviceResult `json:"devices"`
	// Summary is the summary recomputed from the facts.
	Summary Summary `json:"summary"`
}

// OK reports whether the file verified.
func (r *Result) OK() bool { return r != nil && len(r.Problems) == 0 }

// FeedResult is one release feed of the file, as decoded.
type FeedResult struct {
	Place       string    `json:"place"`
	Serial      uint64    `json:"serial"`
	BuiltIn     bool      `json:"built_in,omitempty"`
	GeneratedAt time.Time `json:"generated_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Reports is how many of the file's reports were judged by it.
	Reports int `json:"reports"`
}

// DeviceResult lists a device's reports as verified.
type DeviceResult struct {
	DeviceID string `json:"device_id"`
	// Hostname is the collector's word.
	Hostname string         `json:"hostname,omitempty"`
	Reports  []ReportResult `json:"reports"`
}

// ReportResult is one report: what its seal signs, and beside it what
// the collector asserts (Asserted).
type ReportResult struct {
	Place         string    `json:"place"`
	Epoch         uint64    `json:"epoch"`
	Sequence      uint64    `json:"sequence"`
	CollectedAt   time.Time `json:"collected_at"`
	PolicyName    string    `json:"policy_name"`
	PolicyVersion int32     `json:"policy_version"`
	KeyID         string    `json:"key_id"`
	Hash          string    `json:"hash"`
	DroppedTotal  uint64    `json:"dropped_total"`
	Asserted      Asserted  `json:"asserted"`
}

// Asserted is what the collector says about a report without a
// signature.
type Asserted struct {
	ReceivedAt   time.Time `json:"received_at"`
	ObservedAt   time.Time `json:"observed_at"`
	ClockSuspect bool      `json:"clock_suspect,omitempty"`
	// FeedSerial is the release feed the collector judged it by (0:
	// none).
	FeedSerial uint64 `json:"feed_serial,omitempty"`
}

// Verify checks f offline (docs/evidence.md, "Verifying"): every
// certificate chains to the CA (opts.CA or the file's), is the device's
// and was valid when its reports were observed; every report's statement
// is canonical, signed by the certificate its key id names, the device's,
// and names the facts the file holds; the reports are in (epoch,
// sequence) order and chained, every jump in sequence is a listed gap
// (else a report was removed or a gap hidden), the first report of an
// epoch whose enrolment record is in the file chains to its genesis;
// renewals' handovers and re-bind proofs verify; policy documents match
// their hashes and parse as what they claim; the release feeds decode and
// validate strictly, match their hashes and every serial a report names
// is carried (a missing one is a note); the log, when the file has
// one, is signed by a log certificate of the CA, proves every report a
// leaf of its checkpoint and its consistency proof holds (and starts at
// opts.Previous's checkpoint); and f.Summary is what Summarize computes. Every problem names its place.
//
// The error is nil only when the file verified; it wraps ErrNotVerified
// when it did not (the Result says why) and is something else when f
// could not be checked at all.
func Verify(f *File, opts VerifyOptions) (*Result, error) {
	if f == nil {
		return nil, errors.New("verify: no file")
	}
	v := &verifier{f: f, res: &Result{Problems: []Problem{}, Notes: []Problem{}, Feeds: []FeedResult{}, Devices: []DeviceResult{}}}
	v.run(opts)
	if len(v.res.Problems) > 0 {
		n := len(v.res.Problems)
		return v.res, fmt.Errorf("%w: %d problem(s), the first: %s", ErrNotVerified, n, v.res.Problems[0])
	}
	return v.res, nil
}

type verifier struct {
	f     *File
	res   *Result
	roots *x509.CertPool
	inter *x509.CertPool
}

func (v *verifier) fail(place, format string, args ...any) {
	v.res.Problems = append(v.res.Problems, Problem{Place: place, Message: fmt.Sprintf(format, args...)})
}

func (v *verifier) note(place, format string, args ...any) {
	v.res.Notes = append(v.res.Notes, Problem{Place: place, Message: fmt.Sprintf(format, args...)})
}

func (v *verifier) run(opts VerifyOptions) {
	f := v.f
	if f.Format != Format {
		v.fail("format", "is %q, want %q", f.Format, Format)
	}
	if !f.From.Before(f.To) {
		v.fail("from", "the period %s to %s is empty", stamp(f.From), stamp(f.To))
	}
	v.roots, v.inter = x509.NewCertPool(), x509.NewCertPool()
	var fileCAs int
	for i, der := range f.CA {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			v.fail(fmt.Sprintf("ca[%d]", i), "not a certificate: %v", err)
			continue
		}
		if !c.IsCA {
			v.fail(fmt.Sprintf("ca[%d]", i), "%s is not a CA certificate", c.Subject)
			continue
		}
		v.inter.AddCert(c)
		if len(opts.CA) == 0 {
			v.roots.AddCert(c)
		}
		fileCAs++
	}
	if len(opts.CA) > 0 {
		var names []string
		for _, c := range opts.CA {
			v.roots.AddCert(c)
			names = append(names, c.Subject.String())
		}
		v.res.Trust = "the CA given: " + strings.Join(names, "; ")
	} else {
		v.res.Trust = fmt.Sprintf("the file's own CA chain (%d certificate(s)): this shows the file is consistent, not that it comes from your collector; give the collector's CA (--ca) for that", fileCAs)
		if fileCAs == 0 {
			v.fail("ca", "the file holds no CA certificate and none was given")
		}
	}

	for i, p := range f.Policies {
		place := fmt.Sprintf("policies[%d] (%s v%d)", i, p.Name, p.Version)
		if why := policyProblem(p); why != "" {
			v.fail(place, "%s", why)
			continue
		}
		if j := slices.IndexFunc(f.Policies[:i], func(q Policy) bool { return q.Name == p.Name && q.Version == p.Version }); j >= 0 && f.Policies[j].Document != p.Document {
			v.fail(place, "another document (policies[%d]) has the same name and version", j)
		}
		pol, err := parseDocument(p)
		if err != nil {
			v.fail(place, "does not parse: %v", err)
			continue
		}
		if pol.Name != p.Name || pol.Version != p.Version {
			v.fail(place, "the document is %s v%d", pol.Name, pol.Version)
		}
	}

	v.feeds()

	seen := map[string]int{}
	for i := range f.Devices {
		d := &f.Devices[i]
		if j, dup := seen[d.DeviceID]; dup {
			v.fail(fmt.Sprintf("devices[%d]", i), "device %q is also devices[%d]", d.DeviceID, j)
		}
		seen[d.DeviceID] = i
		v.device(i, d)
	}
	v.log(opts.Previous)

	sum, err := Summarize(f)
	if err != nil {
		v.fail("summary", "cannot be recomputed: %v", err)
		return
	}
	v.res.Summary = sum
	if path, what := diffSummary(f.Summary, sum); path != "" {
		v.fail(path, "%s", what)
	}
	if len(f.Devices) > 0 {
		v.note("", "not signed, the collector's word: each report's received_at, observed_at and feed_serial, hostnames, token re-bind records, and how many of a gap's reports the agent dropped beyond what its signed counts show")
	}
}

// feeds checks the file's release feeds: each decodes and validates
// strictly as the feed of its serial in its canonical encoding and hashes
// to its sha256, a serial is not given twice with different documents, a
// built-in one is this program's snapshot when it has that serial, and
// every serial a report names is carried (a report whose feed is missing
// is a note: its feed rules are UNKNOWN in the summary).
func (v *verifier) feeds() {
	f := v.f
	judged := map[uint64]int{}
	for _, d := range f.Devices {
		for _, r := range d.Reports {
			judged[r.FeedSerial]++
		}
	}
	for i, e := range f.Feeds {
		place := fmt.Sprintf("feeds[%d] (serial %d)", i, e.Serial)
		if j := slices.IndexFunc(f.Feeds[:i], func(o Feed) bool { return o.Serial == e.Serial }); j >= 0 {
			if f.Feeds[j].Document != e.Document {
				v.fail(place, "another feed (feeds[%d]) has the same serial", j)
			}
			continue
		}
		fd, err := DecodeFeed(e)
		if err != nil {
			v.fail(place, "release feed: %v", err)
			continue
		}
		v.res.Feeds = append(v.res.Feeds, FeedResult{Place: place, Serial: e.Serial, BuiltIn: e.BuiltIn,
			GeneratedAt: fd.GeneratedAt.UTC(), ExpiresAt: fd.ExpiresAt.UTC(), Reports: judged[e.Serial]})
		if e.BuiltIn {
			problem, note := checkBuiltIn(e)
			if problem != "" {
				v.fail(place, "%s", problem)
			}
			if note != "" {
				v.note(place, "%s", note)
			}
		}
	}
	carried := map[uint64]bool{}
	for _, e := range f.Feeds {
		carried[e.Serial] = true
	}
	missing := map[uint64]int{}
	var order []uint64
	for _, d := range f.Devices {
		for _, r := range d.Reports {
			if r.FeedSerial == 0 || carried[r.FeedSerial] {
				continue
			}
			if missing[r.FeedSerial] == 0 {
				order = append(order, r.FeedSerial)
			}
			missing[r.FeedSerial]++
		}
	}
	for _, s := range order {
		v.note("feeds", "release feed %d, which %d report(s) were judged by, is not in the file: their rules that read the feed are UNKNOWN in the summary", s, missing[s])
	}
}

// cert is a parsed device certificate.
type cert struct {
	idx   int
	c     *x509.Certificate
	epoch uint64
	used  bool
}

func (v *verifier) device(di int, d *Device) {
	dplace := fmt.Sprintf("devices[%d]", di)
	dr := DeviceResult{DeviceID: d.DeviceID, Hostname: d.Hostname, Reports: []ReportResult{}}
	if d.DeviceID == "" {
		v.fail(dplace, "no device id")
	}

	// Certificates, by key id.
	certs := map[string]*cert{}
	for ci, c := range d.Certificates {
		place := fmt.Sprintf("%s.certificates[%d]", dplace, ci)
		x, err := x509.ParseCertificate(c.DER)
		if err != nil {
			v.fail(place, "not a certificate: %v", err)
			continue
		}
		if x.Subject.CommonName != d.DeviceID {
			v.fail(place, "is for %q, not the device %q", x.Subject.CommonName, d.DeviceID)
		}
		if !slices.Contains(x.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			v.fail(place, "is not a client (device) certificate")
		}
		kid := string(CertKeyID(x))
		if other, dup := certs[kid]; dup {
			v.fail(place, "holds the same key as certificates[%d]", other.idx)
			continue
		}
		certs[kid] = &cert{idx: ci, c: x, epoch: c.Epoch}
	}
	for ci, c := range d.Certificates {
		place := fmt.Sprintf("%s.certificates[%d]", dplace, ci)
		x, err := x509.ParseCertificate(c.DER)
		if err != nil {
			continue
		}
		switch c.Kind {
		case "enrol", "rebind":
			if len(c.Handover) > 0 {
				v.fail(place, "an %s certificate with a key handover", c.Kind)
			}
		case "renew":
			if len(c.Handover) == 0 {
				v.note(place, "renewal without a key handover (an agent older than evidence): the new key is the collector's word")
				continue
			}
			v.handover(place, d, c, x, certs)
		default:
			v.fail(place, "unknown kind %q", c.Kind)
		}
	}

	// Enrolment records, by epoch.
	genesis := map[uint64][]byte{}
	for ei, e := range d.Enrolments {
		place := fmt.Sprintf("%s.enrolments[%d] (epoch %d)", dplace, ei, e.Epoch)
		if _, dup := genesis[e.Epoch]; dup {
			v.fail(place, "a second record of epoch %d", e.Epoch)
			continue
		}
		x, err := x509.ParseCertificate(e.Certificate)
		if err != nil {
			v.fail(place, "certificate: not a certificate: %v", err)
			continue
		}
		c := certs[string(CertKeyID(x))]
		switch {
		case c == nil || !bytes.Equal(c.c.Raw, e.Certificate):
			v.fail(place, "its certificate is not among the device's certificates")
		case c.epoch != e.Epoch:
			v.fail(place, "its certificate (certificates[%d]) is of epoch %d", c.idx, c.epoch)
		}
		genesis[e.Epoch] = Genesis(d.DeviceID, e.Epoch, e.Certificate)
		switch e.Kind {
		case "enrol":
		case "rebind-key":
			v.rebindProof(place, d, e, x)
		case "rebind-token":
			v.note(place, "re-bound with an administrator's token: %q (the collector's word)", e.TokenRecord)
		default:
			v.fail(place, "unknown kind %q", e.Kind)
		}
	}

	// Reports, in order, chained.
	type done struct {
		idx  int
		st   *wardv1.ReportStatement
		hash []byte
	}
	var prev *done
	held := map[[2]uint64]int{} // (epoch, sequence) → report index
	for ri := range d.Reports {
		r := &d.Reports[ri]
		place := fmt.Sprintf("%s.reports[%d]", dplace, ri)
		st, err := DecodeStatement(r.Statement)
		if err != nil {
			v.fail(place, "statement: %v", err)
			prev = nil
			continue
		}
		place = fmt.Sprintf("%s (epoch %d, sequence %d)", place, st.GetEpoch(), st.GetSequence())
		hash := StatementHash(r.Statement)
		at := r.ObservedAt
		if at.IsZero() {
			at = st.GetCollectedAt().AsTime()
		}
		dr.Reports = append(dr.Reports, ReportResult{
			Place: place, Epoch: st.GetEpoch(), Sequence: st.GetSequence(),
			CollectedAt: st.GetCollectedAt().AsTime().UTC(), PolicyName: st.GetPolicyName(), PolicyVersion: st.GetPolicyVersion(),
			KeyID: hex.EncodeToString(st.GetKeyId()), Hash: hex.EncodeToString(hash), DroppedTotal: st.GetDroppedTotal(),
			Asserted: Asserted{ReceivedAt: r.ReceivedAt, ObservedAt: r.ObservedAt, ClockSuspect: r.ClockSuspect, FeedSerial: r.FeedSerial},
		})
		if st.GetDeviceId() != d.DeviceID {
			v.fail(place, "statement is of device %q, not %q", st.GetDeviceId(), d.DeviceID)
		}
		// Signature, by the certificate its key id names.
		c := certs[string(st.GetKeyId())]
		if c == nil {
			v.fail(place, "signed by key %x, which no certificate of the device holds", short(st.GetKeyId()))
		} else {
			c.used = true
			if err := VerifyHash(c.c.PublicKey, hash, r.Signature); err != nil {
				v.fail(place, "signature: %v", err)
			}
			if c.epoch != st.GetEpoch() {
				v.fail(place, "signed by certificates[%d], a certificate of epoch %d", c.idx, c.epoch)
			}
			if err := v.chains(c.c, at); err != nil {
				v.fail(place, "certificates[%d] at %s (the report's time): %v", c.idx, stamp(at), err)
			}
		}
		if _, why := reportFacts(r, st); why != "" {
			v.fail(place, "facts: %s", strings.TrimPrefix(why, "a report's "))
		}
		key := [2]uint64{st.GetEpoch(), st.GetSequence()}
		if j, dup := held[key]; dup {
			v.fail(place, "a second report of epoch %d sequence %d (reports[%d])", key[0], key[1], j)
			continue
		}
		held[key] = ri
		cur := &done{idx: ri, st: st, hash: hash}
		switch {
		case prev != nil && (st.GetEpoch() < prev.st.GetEpoch() || st.GetEpoch() == prev.st.GetEpoch() && st.GetSequence() < prev.st.GetSequence()):
			v.fail(place, "out of order: after reports[%d] (epoch %d, sequence %d)", prev.idx, prev.st.GetEpoch(), prev.st.GetSequence())
			// Keep the later of the two as the chain's head.
			continue
		case prev != nil && st.GetEpoch() == prev.st.GetEpoch():
			v.link(dplace, place, d, prev.st, prev.hash, prev.idx, st, hash)
		default:
			// The first report of its epoch in the file.
			v.epochStart(place, st, genesis, prev != nil)
		}
		prev = cur
	}
	for _, c := range certs {
		if !c.used {
			at := c.c.NotBefore.Add(5 * time.Minute)
			if at.After(c.c.NotAfter) {
				at = c.c.NotBefore
			}
			if err := v.chains(c.c, at); err != nil {
				v.fail(fmt.Sprintf("%s.certificates[%d]", dplace, c.idx), "at %s (when it was issued): %v", stamp(at), err)
			}
		}
	}

	v.dropAccounting(dplace, d, dr.Reports, held)

	// Listed gaps may not hide reports the file holds.
	for gi, g := range d.Gaps {
		place := fmt.Sprintf("%s.gaps[%d] (epoch %d, after %d, before %d)", dplace, gi, g.Epoch, g.After, g.Before)
		if g.Before <= g.After+1 {
			v.fail(place, "is empty")
			continue
		}
		if g.Dropped > g.Before-g.After-1 {
			v.fail(place, "says %d dropped of %d missing", g.Dropped, g.Before-g.After-1)
		}
		for key, ri := range held {
			if key[0] == g.Epoch && key[1] > g.After && key[1] < g.Before {
				v.fail(place, "lists sequence %d as missing, the file holds it (reports[%d])", key[1], ri)
				break
			}
		}
	}
	for ki, k := range d.Forks {
		place := fmt.Sprintf("%s.forks[%d] (epoch %d, sequence %d)", dplace, ki, k.Epoch, k.Sequence)
		if ri, ok := held[[2]uint64{k.Epoch, k.Sequence}]; ok && !bytes.Equal(StatementHash(d.Reports[ri].Statement), k.Hash) {
			v.fail(place, "names hash %x, the file's report (reports[%d]) has %x", short(k.Hash), ri, short(StatementHash(d.Reports[ri].Statement)))
			continue
		}
		v.note(place, "the collector recorded a fork: %s", ForkText(k))
	}
	v.res.Devices = append(v.res.Devices, dr)
}

// link checks a report against the one before it in its epoch.
func (v *verifier) link(dplace, place string, d *Device, pst *wardv1.ReportStatement, phash []byte, pidx int, st *wardv1.ReportStatement, hash []byte) {
	seq, pseq := st.GetSequence(), pst.GetSequence()
	if seq == pseq+1 {
		if bytes.Equal(st.GetPrevHash(), phash) {
			return
		}
		for _, k := range d.Forks {
			if k.Epoch == st.GetEpoch() && k.Sequence == seq && bytes.Equal(k.Hash, hash) && bytes.Equal(k.PrevHash, st.GetPrevHash()) {
				return // a recorded fork: shown as a note
			}
		}
		v.fail(place, "chain broken: prev_hash %x is not the hash of reports[%d] (sequence %d), %x, and no fork lists it", short(st.GetPrevHash()), pidx, pseq, short(phash))
		return
	}
	missing := seq - pseq - 1
	if len(st.GetPrevHash()) == 0 {
		v.fail(place, "no prev_hash after sealed reports of its epoch")
	}
	i := slices.IndexFunc(d.Gaps, func(g Gap) bool { return g.Epoch == st.GetEpoch() && g.After == pseq && g.Before == seq })
	if i < 0 {
		what := fmt.Sprintf("sequence %d is", pseq+1)
		if missing > 1 {
			what = fmt.Sprintf("sequences %d…%d are", pseq+1, seq-1)
		}
		v.fail(place, "%s missing before it and no gap lists them: report removed or gap hidden", what)
		return
	}
	_ = i // its drop count is checked with the epoch's (dropAccounting)
}

// epochStart checks the first report of an epoch in the file.
func (v *verifier) epochStart(place string, st *wardv1.ReportStatement, genesis map[uint64][]byte, afterEarlierEpoch bool) {
	g, ok := genesis[st.GetEpoch()]
	switch {
	case ok && bytes.Equal(st.GetPrevHash(), g):
	case len(st.GetPrevHash()) == 0:
		v.note(place, "the first sealed report of epoch %d, with no predecessor (its agent began sealing after the epoch began)", st.GetEpoch())
	case ok && afterEarlierEpoch:
		v.fail(place, "does not chain to the genesis of epoch %d's enrolment record, though the epoch began within the file: its first reports were removed or their gap hidden", st.GetEpoch())
	case !ok && afterEarlierEpoch:
		v.note(place, "epoch %d has no enrolment record in the file: where its chain begins is not verified", st.GetEpoch())
	}
}

// chains checks that c chains to the trusted CA and was valid at t.
func (v *verifier) chains(c *x509.Certificate, t time.Time) error {
	_, err := c.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: v.inter,
		CurrentTime:   t,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err
}

// handover checks a renewal's key handover against the certificate of the
// key it replaced.
func (v *verifier) handover(place string, d *Device, c Certificate, x *x509.Certificate, certs map[string]*cert) {
	h := &wardv1.KeyHandover{}
	if err := proto.Unmarshal(c.Handover, h); err != nil {
		v.fail(place, "handover: does not decode: %v", err)
		return
	}
	old := certs[string(h.GetOldKeyId())]
	if old == nil {
		// The certificate is still the CA's; only the handover cannot be
		// checked (a certificate older than the collector's records).
		v.note(place, "handover by key %x, whose certificate is not in the file: the new key is the collector's word", short(h.GetOldKeyId()))
		return
	}
	if err := VerifyHandover(old.c, h); err != nil {
		v.fail(place, "handover by certificates[%d]: %v", old.idx, err)
	}
	if !bytes.Equal(h.GetNewKeyId(), CertKeyID(x)) {
		v.fail(place, "handover introduces key %x, the certificate holds %x", short(h.GetNewKeyId()), short(CertKeyID(x)))
	}
	if h.GetDeviceId() != d.DeviceID || h.GetEpoch() != c.Epoch {
		v.fail(place, "handover is for device %q epoch %d, the certificate for %q epoch %d", h.GetDeviceId(), h.GetEpoch(), d.DeviceID, c.Epoch)
	}
}

// rebindProof checks a rebind-key record: the previous certificate is the
// device's and chains to the CA, the CSR is for the new certificate's key
// and the previous key signed it.
func (v *verifier) rebindProof(place string, d *Device, e Enrolment, issued *x509.Certificate) {
	prev, err := x509.ParseCertificate(e.PreviousCertificate)
	if err != nil {
		v.fail(place, "previous_certificate: not a certificate: %v", err)
		return
	}
	if prev.Subject.CommonName != d.DeviceID {
		v.fail(place, "previous_certificate is for %q, not the device %q", prev.Subject.CommonName, d.DeviceID)
	}
	at := e.At
	if at.After(prev.NotAfter) || at.Before(prev.NotBefore) {
		// A re-bind by key may follow an expired certificate: the key
		// proves the device, the CA its issue.
		at = prev.NotAfter.Add(-time.Second)
	}
	if err := v.chains(prev, at); err != nil {
		v.fail(place, "previous_certificate: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(e.CSR)
	if err != nil {
		v.fail(place, "csr: %v", err)
		return
	}
	if err := csr.CheckSignature(); err != nil {
		v.fail(place, "csr: signature: %v", err)
	}
	if !samePublicKey(csr.PublicKey, issued.PublicKey) {
		v.fail(place, "csr is for another key than the certificate issued")
	}
	digest := sha256.Sum256(append([]byte(rebindProofPrefix), e.CSR...))
	switch k := prev.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest[:], e.RebindProof) {
			v.fail(place, "rebind_proof: the previous key's %v", ErrBadSignature)
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, digest[:], e.RebindProof) {
			v.fail(place, "rebind_proof: the previous key's %v", ErrBadSignature)
		}
	default:
		v.fail(place, "previous_certificate: key type %T", k)
	}
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// dropAccounting checks the drops each gap between two of the file's
// reports says the agent accounted for against the agent's signed counts.
// A seal's dropped_total counts the drops made before its report was
// queued, and the outbox drops older queued reports later, so a gap's
// drops are signed by reports after it: in each epoch, in order, a gap
// may claim at most what the largest signed count at or after its end
// adds over the epoch's first report in the file, less what the gaps
// before it claimed.
func (v *verifier) dropAccounting(dplace string, d *Device, reports []ReportResult, held map[[2]uint64]int) {
	type gapRef struct {
		idx int
		g   Gap
	}
	byEpoch := map[uint64][]gapRef{}
	for gi, g := range d.Gaps {
		_, lo := held[[2]uint64{g.Epoch, g.After}]
		_, hi := held[[2]uint64{g.Epoch, g.Before}]
		if lo && hi && g.Before > g.After+1 {
			byEpoch[g.Epoch] = append(byEpoch[g.Epoch], gapRef{gi, g})
		}
	}
	for epoch, gaps := range byEpoch {
		slices.SortFunc(gaps, func(a, b gapRef) int { return cmp.Compare(a.g.After, b.g.After) })
		var first *ReportResult
		for i := range reports {
			r := &reports[i]
			if r.Epoch == epoch && (first == nil || r.Sequence < first.Sequence) {
				first = r
			}
		}
		var claimed uint64
		for _, ref := range gaps {
			var latest uint64
			for _, r := range reports {
				if r.Epoch == epoch && r.Sequence >= ref.g.Before {
					latest = max(latest, r.DroppedTotal)
				}
			}
			var budget uint64
			if latest > first.DroppedTotal+claimed {
				budget = latest - first.DroppedTotal - claimed
			}
			missing := ref.g.Before - ref.g.After - 1
			if signed := min(budget, missing); ref.g.Dropped > signed {
				v.fail(fmt.Sprintf("%s.gaps[%d] (epoch %d, after %d, before %d)", dplace, ref.idx, epoch, ref.g.After, ref.g.Before),
					"says %d of the %d missing were dropped by the agent; its signed counts (dropped_total %d in the epoch's first report here, at most %d after the gap) account for %d",
					ref.g.Dropped, missing, first.DroppedTotal, latest, signed)
			}
			claimed += min(ref.g.Dropped, missing)
		}
	}
}
