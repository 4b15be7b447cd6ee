package evidence

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	ev "github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/snapshot"
)

// Store is what an export reads: the device records and the evidence
// the backend keeps (the reading half of store.EvidenceStore).
type Store interface {
	Device(ctx context.Context, id string) (store.Device, error)
	Devices(ctx context.Context) ([]store.Device, error)
	EvidenceReports(ctx context.Context, deviceID string, from, to time.Time) ([]store.Report, error)
	ChainGaps(ctx context.Context, deviceID string) ([]store.ChainGap, error)
	ChainForks(ctx context.Context, deviceID string) ([]store.ChainFork, error)
	DeviceCertificates(ctx context.Context, deviceID string) ([]store.DeviceCertificate, error)
	EnrolmentRecords(ctx context.Context, deviceID string) ([]store.EnrolmentRecord, error)
	PolicyDocument(ctx context.Context, name string, version int) (store.PolicyDocument, error)
}

// For returns st as a Store, or ErrNoEvidence when its backend keeps no
// evidence.
func For(st store.Store) (Store, error) {
	es, ok := st.(interface {
		store.Store
		store.EvidenceStore
	})
	if !ok {
		return nil, fmt.Errorf("%w (store %T)", ErrNoEvidence, st)
	}
	return es, nil
}

// Errors Build returns (wrapped); test with errors.Is.
var (
	// ErrUnknownDevice: Options.DeviceID names no device.
	ErrUnknownDevice = errors.New("no such device")
	// ErrPeriod: the period is empty or reversed (From not before To).
	ErrPeriod = errors.New("the period must start before it ends")
	// ErrNoCA: Options.CA is empty, so no certificate could be verified.
	ErrNoCA = errors.New("no collector CA to include")
	// ErrNoEvidence: the store keeps no evidence (For).
	ErrNoEvidence = errors.New("the store keeps no evidence")
)

// Options says what to export.
type Options struct {
	// DeviceID selects one device; empty selects the fleet: every device
	// with a report collected in the period (sealed or not), so a device
	// whose reports there are all unsealed is in the file, unobserved.
	DeviceID string
	// From and To bound the period, by collected time (the reports'
	// ObservedAt): [From, To).
	From, To time.Time
	// Now is the file's generated_at; GeneratedBy names the collector
	// ("ward-collector VERSION on HOST").
	Now         time.Time
	GeneratedBy string
	// CA is the collector CA chain, DER (CAChain).
	CA [][]byte
	// Log, when set, is the collector's evidence log: Build appends to it
	// what is not yet in it and proves every report in the file a leaf of
	// its newest checkpoint.
	Log *Log
	// ConsistentWith, with Log, is an earlier file's checkpoint (export
	// --consistent-with): the file proves the log now extends it.
	ConsistentWith *ev.Checkpoint
	// Summarize computes the file's summary (default evidence.Summarize,
	// the one ward-verify recomputes).
	Summarize func(*ev.File) (ev.Summary, error)
}

// Result is a built file and what its building left out.
type Result struct {
	File *ev.File
	// Reports is the number of reports in the file.
	Reports int
	// Unsealed is the number of reports collected in the period that are
	// left out because they carry no seal (agents older than evidence,
	// or a seal the collector could not verify after dropping unknown
	// fields): nothing vouches for them, so the summary counts their time
	// as unobserved.
	Unsealed int
	// MissingPolicies are the policies ("baseline v2") reports name that
	// the collector has no document of: their reports' rules are UNKNOWN
	// in the summary.
	MissingPolicies []string
	// MissingFeeds are the release feeds ("serial 2026…: why") reports
	// were judged by that the collector cannot include (neither stored
	// nor its built-in snapshot, or unreadable): those reports' feed
	// rules are UNKNOWN in the summary.
	MissingFeeds []string
}

// FeedSource is where Build reads the release feeds reports were judged
// by: store.FeedStore's FeedBySerial, which both backends implement. A
// Store without it carries no stored feed (only the built-in snapshot).
type FeedSource interface {
	FeedBySerial(ctx context.Context, serial uint64) (store.Feed, error)
}

// Build builds the evidence file o asks for from st.
func Build(ctx context.Context, st Store, o Options) (*Result, error) {
	if !o.From.Before(o.To) {
		return nil, fmt.Errorf("%w (from %s, to %s)", ErrPeriod, o.From.UTC().Format(time.RFC3339), o.To.UTC().Format(time.RFC3339))
	}
	if len(o.CA) == 0 {
		return nil, ErrNoCA
	}
	summarize := o.Summarize
	if summarize == nil {
		summarize = ev.Summarize
	}
	from, to := o.From.UTC(), o.To.UTC()
	f := &ev.File{
		Format:      ev.Format,
		GeneratedAt: o.Now.UTC(),
		GeneratedBy: o.GeneratedBy,
		From:        from,
		To:          to,
		CA:          o.CA,
		Policies:    []ev.Policy{},
		Devices:     []ev.Device{},
	}
	res := &Result{File: f}
	var devs []store.Device
	if o.DeviceID != "" {
		d, err := st.Device(ctx, o.DeviceID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrUnknownDevice, o.DeviceID)
		}
		if err != nil {
			return nil, err
		}
		devs = []store.Device{d}
	} else {
		all, err := st.Devices(ctx)
		if err != nil {
			return nil, err
		}
		devs = all
		slices.SortFunc(devs, func(a, b store.Device) int { return strings.Compare(a.ID, b.ID) })
	}
	named := map[policyKey]bool{}
	serials := map[uint64]bool{}
	for _, d := range devs {
		reports, err := st.EvidenceReports(ctx, d.ID, from, to)
		if err != nil {
			return nil, fmt.Errorf("device %s: reports: %w", d.ID, err)
		}
		if o.DeviceID == "" && !slices.ContainsFunc(reports, func(r store.Report) bool { return inPeriod(r, from, to) }) {
			continue
		}
		fd, err := device(ctx, st, d, reports, from, to, res, named, serials)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", d.ID, err)
		}
		f.Devices = append(f.Devices, fd)
	}
	// After the reports were read: every one of them is in the log once
	// it has appended.
	if o.Log != nil {
		l, err := logPart(ctx, o.Log, f, o.ConsistentWith)
		if err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
		f.Log = l
	}
	keys := make([]policyKey, 0, len(named))
	for k := range named {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b policyKey) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.version, b.version))
	})
	for _, k := range keys {
		doc, err := st.PolicyDocument(ctx, k.name, k.version)
		if errors.Is(err, store.ErrNotFound) {
			res.MissingPolicies = append(res.MissingPolicies, fmt.Sprintf("%s v%d", k.name, k.version))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("policy %s v%d: %w", k.name, k.version, err)
		}
		sum := sha256.Sum256(doc.Document)
		f.Policies = append(f.Policies, ev.Policy{Name: k.name, Version: k.version, SHA256: hex.EncodeToString(sum[:]), Document: string(doc.Document)})
	}
	if err := addFeeds(ctx, st, f, res, serials); err != nil {
		return nil, err
	}
	s, err := summarize(f)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	f.Summary = s
	return res, nil
}

// Describe says what the file holds in a line, for the audit log and
// the CLI: the device (or how many), the period, the reports, and what
// was left out.
func (r *Result) Describe() string {
	f := r.File
	who := fmt.Sprintf("%d devices", len(f.Devices))
	if len(f.Devices) == 1 {
		who = "device " + f.Devices[0].DeviceID
	}
	s := fmt.Sprintf("evidence for %s from %s to %s: %d reports", who, f.From.Format(time.RFC3339), f.To.Format(time.RFC3339), r.Reports)
	if r.Unsealed > 0 {
		s += fmt.Sprintf(", %d unsealed left out (their time is unobserved)", r.Unsealed)
	}
	if len(r.MissingPolicies) > 0 {
		s += "; no document of policy " + strings.Join(r.MissingPolicies, ", ") + " (its rules are UNKNOWN)"
	}
	if len(r.MissingFeeds) > 0 {
		s += "; release feed " + strings.Join(r.MissingFeeds, ", ") + " not included (the rules that read it are UNKNOWN)"
	}
	return s
}

type policyKey struct {
	name    string
	version int
}

// inPeriod reports whether r was collected in [from, to).
func inPeriod(r store.Report, from, to time.Time) bool {
	return !r.ObservedAt.Before(from) && r.ObservedAt.Before(to)
}

// device is one device's part of the file: its sealed reports, every
// certificate it was issued, and the enrolment records, gaps and forks
// of the epochs its reports are in. It adds the policies the reports
// name to named, the release feed serials they were judged by to serials,
// and its counts to res.
func device(ctx context.Context, st Store, d store.Device, reports []store.Report, from, to time.Time, res *Result, named map[policyKey]bool, serials map[uint64]bool) (ev.Device, error) {
	fd := ev.Device{DeviceID: d.ID, Hostname: d.Hostname, Certificates: []ev.Certificate{}, Enrolments: []ev.Enrolment{}, Reports: []ev.Report{}, Gaps: []ev.Gap{}, Forks: []ev.Fork{}}
	// The file's order is (epoch, sequence), whatever the backend's.
	slices.SortStableFunc(reports, func(a, b store.Report) int {
		return cmp.Or(cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Sequence, b.Sequence))
	})
	epochs := map[uint64]bool{}
	for _, r := range reports {
		if r.Seal == nil {
			if inPeriod(r, from, to) {
				res.Unsealed++
			}
			continue
		}
		epochs[r.Epoch] = true
		fd.Reports = append(fd.Reports, ev.Report{
			Statement:    r.Seal.Statement,
			Signature:    r.Seal.Signature,
			Facts:        r.Facts,
			ReceivedAt:   r.ReceivedAt.UTC(),
			ObservedAt:   r.ObservedAt.UTC(),
			ClockSuspect: r.ClockSuspect,
			FeedSerial:   r.FeedSerial,
		})
		if r.FeedSerial != 0 {
			serials[r.FeedSerial] = true
		}
		res.Reports++
		// The policy the signed statement names is the one the verifier
		// evaluates with; the stored columns should say the same.
		if r.PolicyName != "" {
			named[policyKey{r.PolicyName, r.PolicyVersion}] = true
		}
		if s, err := ev.DecodeStatement(r.Seal.Statement); err == nil && s.GetPolicyName() != "" {
			named[policyKey{s.GetPolicyName(), int(s.GetPolicyVersion())}] = true
		}
	}
	certs, err := st.DeviceCertificates(ctx, d.ID)
	if err != nil {
		return fd, fmt.Errorf("certificates: %w", err)
	}
	for _, c := range certs {
		fd.Certificates = append(fd.Certificates, ev.Certificate{DER: c.DER, Kind: c.Kind, Epoch: c.Epoch, Handover: c.Handover})
	}
	recs, err := st.EnrolmentRecords(ctx, d.ID)
	if err != nil {
		return fd, fmt.Errorf("enrolment records: %w", err)
	}
	for _, e := range recs {
		if !epochs[e.Epoch] {
			continue
		}
		fd.Enrolments = append(fd.Enrolments, ev.Enrolment{
			Epoch: e.Epoch, At: e.At.UTC(), Kind: e.Kind, Certificate: e.Certificate,
			PreviousCertificate: e.PreviousCertificate, CSR: e.CSR, RebindProof: e.RebindProof, TokenRecord: e.TokenRecord,
		})
	}
	gaps, err := st.ChainGaps(ctx, d.ID)
	if err != nil {
		return fd, fmt.Errorf("gaps: %w", err)
	}
	for _, g := range gaps {
		if epochs[g.Epoch] {
			fd.Gaps = append(fd.Gaps, ev.Gap{Epoch: g.Epoch, After: g.After, Before: g.Before, Dropped: g.Dropped})
		}
	}
	forks, err := st.ChainForks(ctx, d.ID)
	if err != nil {
		return fd, fmt.Errorf("forks: %w", err)
	}
	for _, k := range forks {
		if epochs[k.Epoch] {
			fd.Forks = append(fd.Forks, ev.Fork{Epoch: k.Epoch, Sequence: k.Sequence, PrevHash: k.PrevHash, Hash: k.Hash, Other: k.Other, OtherSequence: k.OtherSequence, RecordedAt: k.RecordedAt.UTC()})
		}
	}
	return fd, nil
}

// addFeeds adds to f the release feed of each serial, in serial order:
// the stored one (its signed record's feed, decoded and validated) or,
// when none is stored, the built-in snapshot when it has that serial. A
// serial it cannot include goes to res.MissingFeeds.
func addFeeds(ctx context.Context, st Store, f *ev.File, res *Result, serials map[uint64]bool) error {
	fs, _ := st.(FeedSource)
	for _, serial := range slices.Sorted(maps.Keys(serials)) {
		fd, builtIn, why, err := feedOf(ctx, fs, serial)
		if err != nil {
			return fmt.Errorf("release feed %d: %w", serial, err)
		}
		if fd == nil {
			res.MissingFeeds = append(res.MissingFeeds, fmt.Sprintf("%d (%s)", serial, why))
			continue
		}
		e, err := ev.NewFeed(fd, builtIn)
		if err != nil {
			res.MissingFeeds = append(res.MissingFeeds, fmt.Sprintf("%d (%v)", serial, err))
			continue
		}
		f.Feeds = append(f.Feeds, e)
	}
	return nil
}

// feedOf finds the feed of serial: stored, else the built-in snapshot.
// It returns why there is none, or an error reading the store.
func feedOf(ctx context.Context, fs FeedSource, serial uint64) (f *feed.Feed, builtIn bool, why string, err error) {
	if fs != nil {
		rec, err := fs.FeedBySerial(ctx, serial)
		switch {
		case err == nil:
			f, err := storedFeed(rec)
			if err != nil {
				return nil, false, "the stored feed cannot be read: " + err.Error(), nil
			}
			return f, false, "", nil
		case !errors.Is(err, store.ErrNotFound):
			return nil, false, "", err
		}
	}
	if snap, err := snapshot.Feed(); err == nil && snap.Serial == serial {
		return snap, true, "", nil
	}
	return nil, false, "neither stored nor this collector's built-in feed", nil
}

// storedFeed is the feed a stored record signs: its signed file decoded,
// the feed in it decoded and validated strictly, of the record's serial.
func storedFeed(rec store.Feed) (*feed.Feed, error) {
	sf, err := feed.DecodeSigned(bytes.NewReader(rec.Signed))
	if err != nil {
		return nil, err
	}
	f, err := feed.Decode(bytes.NewReader(sf.Feed))
	if err != nil {
		return nil, err
	}
	if err := feed.Validate(f); err != nil {
		return nil, err
	}
	if f.Serial != rec.Serial {
		return nil, fmt.Errorf("the signed feed is serial %d, the record %d", f.Serial, rec.Serial)
	}
	return f, nil
}

// CAChain is the collector CA chain an evidence file carries: the
// current CA, the previous ones (expired ones too: device certificates
// they issued still date reports) and the cross certificates.
func CAChain(a *pki.Authority) [][]byte {
	out := [][]byte{a.Cert.Raw}
	for _, c := range a.Previous {
		out = append(out, c.Raw)
	}
	for _, c := range a.ExpiredPrevious {
		out = append(out, c.Raw)
	}
	for _, c := range a.Cross {
		out = append(out, c.Raw)
	}
	return out
}

// Write writes f as the evidence file's JSON.
func Write(w io.Writer, f *ev.File) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(f)
}

// NameFor is the name of the file for a device ("" for the fleet) and
// period: ward-evidence-DEVICE-FROM-to-LAST.json (ward-evidence-fleet-…),
// FROM and LAST the period's first and last day when it is whole UTC
// days, else its bounds to the second.
func NameFor(deviceID string, from, to time.Time) string {
	who := "fleet"
	if deviceID != "" {
		who = safeName(deviceID)
	}
	return fileName(who, from, to)
}

func fileName(who string, from, to time.Time) string {
	from, to = from.UTC(), to.UTC()
	var a, b string
	if from.Equal(from.Truncate(24*time.Hour)) && to.Equal(to.Truncate(24*time.Hour)) {
		a, b = from.Format("2006-01-02"), to.AddDate(0, 0, -1).Format("2006-01-02")
	} else {
		a, b = from.Format("2006-01-02T150405Z"), to.Format("2006-01-02T150405Z")
	}
	return "ward-evidence-" + who + "-" + a + "-to-" + b + ".json"
}

// safeName keeps a device id to the characters a file name can hold
// anywhere.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
