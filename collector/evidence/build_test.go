package evidence_test

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	ev "github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

var day0 = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

func day(n int) time.Time { return day0.AddDate(0, 0, n) }

// memStore is evidence.Store over fixed data: the store's side of the
// contract (EvidenceReports' boundaries) is the backends' conformance
// suite's; this one tests what the builder makes of it.
type memStore struct {
	devices  []store.Device
	reports  map[string][]store.Report
	gaps     map[string][]store.ChainGap
	forks    map[string][]store.ChainFork
	certs    map[string][]store.DeviceCertificate
	records  map[string][]store.EnrolmentRecord
	policies []store.PolicyDocument
}

func (m *memStore) Device(_ context.Context, id string) (store.Device, error) {
	for _, d := range m.devices {
		if d.ID == id {
			return d, nil
		}
	}
	return store.Device{}, store.ErrNotFound
}

func (m *memStore) Devices(context.Context) ([]store.Device, error) {
	return slices.Clone(m.devices), nil
}

func (m *memStore) EvidenceReports(_ context.Context, id string, from, to time.Time) ([]store.Report, error) {
	var out []store.Report
	var before, after *store.Report
	for _, r := range m.reports[id] {
		switch {
		case r.ObservedAt.Before(from):
			if before == nil || r.ObservedAt.After(before.ObservedAt) {
				before = &r
			}
		case !r.ObservedAt.Before(to):
			if after == nil || r.ObservedAt.Before(after.ObservedAt) {
				after = &r
			}
		default:
			out = append(out, r)
		}
	}
	if before != nil {
		out = append(out, *before)
	}
	if after != nil {
		out = append(out, *after)
	}
	slices.SortFunc(out, func(a, b store.Report) int {
		return cmp.Or(cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Sequence, b.Sequence))
	})
	return out, nil
}

func (m *memStore) ChainGaps(_ context.Context, id string) ([]store.ChainGap, error) {
	return m.gaps[id], nil
}

func (m *memStore) ChainForks(_ context.Context, id string) ([]store.ChainFork, error) {
	return m.forks[id], nil
}

func (m *memStore) DeviceCertificates(_ context.Context, id string) ([]store.DeviceCertificate, error) {
	return m.certs[id], nil
}

func (m *memStore) EnrolmentRecords(_ context.Context, id string) ([]store.EnrolmentRecord, error) {
	return m.records[id], nil
}

func (m *memStore) PolicyDocument(_ context.Context, name string, version int) (store.PolicyDocument, error) {
	for _, p := range m.policies {
		if p.Name == name && p.Version == version {
			return p, nil
		}
	}
	return store.PolicyDocument{}, store.ErrNotFound
}

// testDevice is a device key with the certificate the CA issued for it.
type testDevice struct {
	id   string
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	prev []byte // the chain's head
}

func newCA(t *testing.T) *pki.Authority {
	t.Helper()
	a, _, err := pki.LoadOrCreate(t.TempDir(), day(-30))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newDevice(t *testing.T, a *pki.Authority, id string) *testDevice {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _, _, err := a.SignDeviceWindow(key.Public(), id, day(-10), day(300))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testDevice{id: id, key: key, cert: cert}
}

// facts are the facts of a device whose system disk is encrypted or not.
func facts(encrypted bool) *wardv1.Facts {
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	return &wardv1.Facts{
		Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &encrypted}}},
	}
}

// sealed is report (epoch, seq) of d collected at, sealed by d's key and
// chained to d's head, as the store keeps it.
func (d *testDevice) sealed(t *testing.T, epoch, seq uint64, at time.Time, policy string, version int, dropped uint64) store.Report {
	t.Helper()
	f := facts(true)
	r := &wardv1.Report{Epoch: epoch, Sequence: seq, CollectedAt: timestamppb.New(at), AgentVersion: "test", PolicyName: policy, PolicyVersion: int32(version), Facts: f}
	if d.prev == nil {
		d.prev = ev.Genesis(d.id, epoch, d.cert.Raw)
	}
	hash, err := ev.Seal(d.key, d.id, r, d.prev, dropped)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ev.EncodeStatement(ev.Statement(d.id, r))
	if err != nil {
		t.Fatal(err)
	}
	fb, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	sr := store.Report{
		DeviceID: d.id, Epoch: epoch, Sequence: seq, CollectedAt: at, ObservedAt: at, ReceivedAt: at.Add(time.Minute),
		AgentVersion: "test", PolicyName: policy, PolicyVersion: version, DroppedTotal: dropped, Facts: fb,
		Seal: &store.ReportSeal{Statement: enc, Hash: hash, PrevHash: d.prev, KeyID: r.Seal.KeyId, Signature: r.Seal.Signature},
	}
	d.prev = hash
	return sr
}

func baselineDoc(t *testing.T) (store.PolicyDocument, *policies.Policy) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "policies", "baseline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policies.Parse("baseline.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	return store.PolicyDocument{Name: p.Name, Version: p.Version, Document: b, FirstSeen: day(-20)}, p
}

// noSummary stands for evidence.Summarize and keeps the file it saw.
type noSummary struct{ saw *ev.File }

func (s *noSummary) summarize(f *ev.File) (ev.Summary, error) {
	s.saw = f
	return ev.Summary{CoverageSeconds: 42}, nil
}

// fixture is a fleet of three devices over days 0 … 9:
// dev-a reports daily in epoch 1 (days 0-4), its report of day 5 is
// unsealed, then re-bound to epoch 2 (days 6-9), with a gap and a fork
// in each epoch and one in an epoch (0) it has no sealed report in;
// dev-b reported only before day 3; dev-c only an unsealed report on
// day 4.
func fixture(t *testing.T) (*memStore, *pki.Authority, map[string]*testDevice) {
	t.Helper()
	a := newCA(t)
	doc, p := baselineDoc(t)
	devs := map[string]*testDevice{}
	for _, id := range []string{"dev-a", "dev-b", "dev-c"} {
		devs[id] = newDevice(t, a, id)
	}
	m := &memStore{
		reports: map[string][]store.Report{}, gaps: map[string][]store.ChainGap{}, forks: map[string][]store.ChainFork{},
		certs: map[string][]store.DeviceCertificate{}, records: map[string][]store.EnrolmentRecord{},
		policies: []store.PolicyDocument{doc},
	}
	for _, id := range []string{"dev-c", "dev-a", "dev-b"} { // not by id: Build sorts
		m.devices = append(m.devices, store.Device{ID: id, DeviceInfo: store.DeviceInfo{Hostname: "host-" + id}})
	}
	da := devs["dev-a"]
	for i := range 5 {
		m.reports["dev-a"] = append(m.reports["dev-a"], da.sealed(t, 1, uint64(i+1), day(i).Add(9*time.Hour), p.Name, p.Version, 0))
	}
	m.reports["dev-a"] = append(m.reports["dev-a"], store.Report{DeviceID: "dev-a", Epoch: 1, Sequence: 6, ObservedAt: day(5).Add(9 * time.Hour), PolicyName: p.Name, PolicyVersion: p.Version})
	// Epoch 2: a new key and certificate (re-bind), a policy the
	// collector has no document of.
	old := da
	da = newDevice(t, a, "dev-a")
	devs["dev-a"] = da
	for i := 6; i < 10; i++ {
		m.reports["dev-a"] = append(m.reports["dev-a"], da.sealed(t, 2, uint64(i-5), day(i).Add(9*time.Hour), "field", 7, 1))
	}
	m.certs["dev-a"] = []store.DeviceCertificate{
		{DeviceID: "dev-a", Epoch: 1, KeyID: ev.CertKeyID(old.cert), DER: old.cert.Raw, Kind: "enrol", IssuedAt: day(-10)},
		{DeviceID: "dev-a", Epoch: 2, KeyID: ev.CertKeyID(da.cert), DER: da.cert.Raw, Kind: "rebind", IssuedAt: day(6)},
	}
	m.records["dev-a"] = []store.EnrolmentRecord{
		{DeviceID: "dev-a", Epoch: 0, At: day(-20), Kind: "enrol", Certificate: []byte("epoch 0")},
		{DeviceID: "dev-a", Epoch: 1, At: day(-10), Kind: "enrol", Certificate: old.cert.Raw, Genesis: ev.Genesis("dev-a", 1, old.cert.Raw)},
		{DeviceID: "dev-a", Epoch: 2, At: day(6), Kind: "rebind-token", Certificate: da.cert.Raw, Genesis: ev.Genesis("dev-a", 2, da.cert.Raw), TokenRecord: "created by amina at 2026-10-07T08:00:00Z"},
	}
	m.gaps["dev-a"] = []store.ChainGap{
		{DeviceID: "dev-a", Epoch: 0, After: 1, Before: 3},
		{DeviceID: "dev-a", Epoch: 1, After: 5, Before: 7, Dropped: 0},
		{DeviceID: "dev-a", Epoch: 2, After: 2, Before: 5, Dropped: 1},
	}
	m.forks["dev-a"] = []store.ChainFork{
		{DeviceID: "dev-a", Epoch: 0, Sequence: 2},
		{DeviceID: "dev-a", Epoch: 2, Sequence: 3, PrevHash: []byte("p"), Hash: []byte("h"), Other: []byte("o"), OtherSequence: 2, RecordedAt: day(8)},
	}
	db := devs["dev-b"]
	for i := range 3 {
		m.reports["dev-b"] = append(m.reports["dev-b"], db.sealed(t, 1, uint64(i+1), day(i).Add(10*time.Hour), p.Name, p.Version, 0))
	}
	m.reports["dev-c"] = []store.Report{{DeviceID: "dev-c", Epoch: 1, Sequence: 1, ObservedAt: day(4), PolicyName: p.Name, PolicyVersion: p.Version}}
	return m, a, devs
}

// TestBuildDevice: one device over days 2 … 7 holds its sealed reports
// of the period with the one before and the one after, byte for byte as
// stored and each verifying with its certificate; the unsealed one is
// counted and left out; every certificate; the records, gaps and forks
// of the epochs in the file only; the policy documents the reports name
// with their hashes, a missing one listed; the CA chain; the summary
// Summarize made of the whole file.
func TestBuildDevice(t *testing.T) {
	ctx := context.Background()
	m, a, _ := fixture(t)
	doc, _ := baselineDoc(t)
	var sum noSummary
	gen := day(20).Add(3 * time.Hour)
	res, err := evidence.Build(ctx, m, evidence.Options{
		DeviceID: "dev-a", From: day(2), To: day(7), Now: gen, GeneratedBy: "ward-collector test on here",
		CA: evidence.CAChain(a), Summarize: sum.summarize,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := res.File
	if f.Format != ev.Format || !f.GeneratedAt.Equal(gen) || f.GeneratedBy != "ward-collector test on here" || !f.From.Equal(day(2)) || !f.To.Equal(day(7)) {
		t.Errorf("header: %s %s %q %s %s", f.Format, f.GeneratedAt, f.GeneratedBy, f.From, f.To)
	}
	if len(f.CA) != 1 || string(f.CA[0]) != string(a.Cert.Raw) {
		t.Errorf("CA = %d certificates, want the collector CA", len(f.CA))
	}
	if sum.saw != f || f.Summary.CoverageSeconds != 42 {
		t.Errorf("summary: Summarize saw %p (file %p), file has %+v", sum.saw, f, f.Summary)
	}
	if len(f.Devices) != 1 {
		t.Fatalf("%d devices, want 1", len(f.Devices))
	}
	d := f.Devices[0]
	if d.DeviceID != "dev-a" || d.Hostname != "host-dev-a" {
		t.Errorf("device %q hostname %q", d.DeviceID, d.Hostname)
	}
	// Day 1 (the one before), days 2-4 (epoch 1), day 6 (epoch 2, in the
	// period) and day 7 (the first after): the day 5 one is unsealed.
	var got []string
	for i, r := range d.Reports {
		st, err := ev.DecodeStatement(r.Statement)
		if err != nil {
			t.Fatalf("reports[%d]: %v", i, err)
		}
		got = append(got, r.ObservedAt.Format("01-02")+"/"+string(rune('0'+st.GetEpoch()))+"."+string(rune('0'+st.GetSequence())))
		cert := m.certs["dev-a"][st.GetEpoch()-1].DER
		c, _ := x509.ParseCertificate(cert)
		if err := ev.VerifyHash(c.PublicKey, ev.StatementHash(r.Statement), r.Signature); err != nil {
			t.Errorf("reports[%d]: signature: %v", i, err)
		}
		stored := m.reports["dev-a"][slices.IndexFunc(m.reports["dev-a"], func(s store.Report) bool {
			return s.Epoch == st.GetEpoch() && s.Sequence == st.GetSequence()
		})]
		if string(r.Facts) != string(stored.Facts) || !r.ReceivedAt.Equal(stored.ReceivedAt) || !r.ObservedAt.Equal(stored.ObservedAt) {
			t.Errorf("reports[%d] differs from the stored report", i)
		}
		var fa wardv1.Facts
		if err := proto.Unmarshal(r.Facts, &fa); err != nil || string(ev.FactsDigest(&fa)) != string(st.GetFactsDigest()) {
			t.Errorf("reports[%d]: facts do not hash to the statement's digest (%v)", i, err)
		}
	}
	want := []string{"10-02/1.2", "10-03/1.3", "10-04/1.4", "10-05/1.5", "10-07/2.1", "10-08/2.2"}
	if !slices.Equal(got, want) {
		t.Errorf("reports (day/epoch.sequence) = %v, want %v", got, want)
	}
	if res.Reports != len(want) || res.Unsealed != 1 {
		t.Errorf("counted %d reports, %d unsealed; want %d, 1", res.Reports, res.Unsealed, len(want))
	}
	if len(d.Certificates) != 2 || d.Certificates[0].Kind != "enrol" || d.Certificates[1].Kind != "rebind" || d.Certificates[1].Epoch != 2 {
		t.Errorf("certificates = %+v", d.Certificates)
	}
	var epochs []uint64
	for _, e := range d.Enrolments {
		epochs = append(epochs, e.Epoch)
	}
	if !slices.Equal(epochs, []uint64{1, 2}) || d.Enrolments[1].Kind != "rebind-token" || !strings.Contains(d.Enrolments[1].TokenRecord, "amina") {
		t.Errorf("enrolments = %+v, want epochs 1 and 2", d.Enrolments)
	}
	if want := []ev.Gap{{Epoch: 1, After: 5, Before: 7}, {Epoch: 2, After: 2, Before: 5, Dropped: 1}}; !slices.Equal(d.Gaps, want) {
		t.Errorf("gaps = %+v, want %+v", d.Gaps, want)
	}
	if len(d.Forks) != 1 || d.Forks[0].Sequence != 3 || d.Forks[0].OtherSequence != 2 || string(d.Forks[0].Other) != "o" || !d.Forks[0].RecordedAt.Equal(day(8)) {
		t.Errorf("forks = %+v", d.Forks)
	}
	sha := sha256.Sum256(doc.Document)
	if len(f.Policies) != 1 || f.Policies[0].Name != doc.Name || f.Policies[0].Version != doc.Version || f.Policies[0].Document != string(doc.Document) || f.Policies[0].SHA256 != hex.EncodeToString(sha[:]) {
		t.Errorf("policies = %d, want %s v%d with its hash", len(f.Policies), doc.Name, doc.Version)
	}
	if !slices.Equal(res.MissingPolicies, []string{"field v7"}) {
		t.Errorf("missing policies = %q, want field v7", res.MissingPolicies)
	}
	if s, want := res.Describe(), "evidence for device dev-a from 2026-10-03T00:00:00Z to 2026-10-08T00:00:00Z: 6 reports, 1 unsealed left out (their time is unobserved); no document of policy field v7 (its rules are UNKNOWN)"; s != want {
		t.Errorf("Describe() = %q\nwant         %q", s, want)
	}
	// The JSON is the format's: it decodes into evidence.File with the
	// same reports, and names its format.
	var buf strings.Builder
	if err := evidence.Write(&buf, f); err != nil {
		t.Fatal(err)
	}
	var back ev.File
	dec := json.NewDecoder(strings.NewReader(buf.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil || back.Format != "ward-evidence/1" || len(back.Devices[0].Reports) != len(want) || string(back.Devices[0].Reports[0].Signature) != string(d.Reports[0].Signature) {
		t.Errorf("written file does not read back: %v", err)
	}
}

// TestBuildFleet: the fleet file holds, by id, every device with a report
// collected in the period, also one whose reports there are all unsealed
// (it shows unobserved); a device that reported only before is not in it.
func TestBuildFleet(t *testing.T) {
	m, a, _ := fixture(t)
	var sum noSummary
	res, err := evidence.Build(context.Background(), m, evidence.Options{From: day(3), To: day(5), Now: day(20), CA: evidence.CAChain(a), Summarize: sum.summarize})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range res.File.Devices {
		ids = append(ids, d.DeviceID)
	}
	if !slices.Equal(ids, []string{"dev-a", "dev-c"}) {
		t.Errorf("devices = %v, want dev-a and dev-c", ids)
	}
	if n := len(res.File.Devices[1].Reports); n != 0 || res.Unsealed != 1 {
		t.Errorf("dev-c: %d reports, %d unsealed in all; want 0 and 1", n, res.Unsealed)
	}
	// dev-a: day 2 (the one before) and days 3-4; the first one after is
	// day 5's, unsealed, so left out (and not counted: it is not in the
	// period).
	if n := len(res.File.Devices[0].Reports); n != 3 {
		t.Errorf("dev-a: %d reports, want 3", n)
	}
}

// TestBuildRefuses: an unknown device, an empty or reversed period and a
// missing CA are errors, before anything is summarised.
func TestBuildRefuses(t *testing.T) {
	m, a, _ := fixture(t)
	ca := evidence.CAChain(a)
	summarize := func(*ev.File) (ev.Summary, error) { t.Error("summarised a refused export"); return ev.Summary{}, nil }
	for _, c := range []struct {
		name string
		o    evidence.Options
		want error
	}{
		{"unknown device", evidence.Options{DeviceID: "nope", From: day(1), To: day(2), CA: ca}, evidence.ErrUnknownDevice},
		{"from = to", evidence.Options{DeviceID: "dev-a", From: day(2), To: day(2), CA: ca}, evidence.ErrPeriod},
		{"from after to", evidence.Options{From: day(3), To: day(2), CA: ca}, evidence.ErrPeriod},
		{"no CA", evidence.Options{DeviceID: "dev-a", From: day(1), To: day(2)}, evidence.ErrNoCA},
	} {
		c.o.Summarize = summarize
		if _, err := evidence.Build(context.Background(), m, c.o); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// A summary that fails fails the export.
	_, err := evidence.Build(context.Background(), m, evidence.Options{DeviceID: "dev-a", From: day(1), To: day(2), CA: ca, Summarize: func(*ev.File) (ev.Summary, error) {
		return ev.Summary{}, errors.New("no")
	}})
	if err == nil || !strings.Contains(err.Error(), "summary: no") {
		t.Errorf("failing summary: err = %v", err)
	}
}

// TestForNeedsEvidence: a store without evidence is ErrNoEvidence.
func TestForNeedsEvidence(t *testing.T) {
	var st store.Store
	if _, err := evidence.For(st); !errors.Is(err, evidence.ErrNoEvidence) {
		t.Errorf("err = %v", err)
	}
}

func TestParsePeriod(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		from, to     string
		wantF, wantT time.Time
		wantErr      string
	}{
		{"2026-11-01", "2026-11-10", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC), ""},
		{"2026-11-01", "", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), now, ""},
		{"2026-11-01", "2026-11-20", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), now, ""},
		{"2026-11-01T10:00:00+02:00", "2026-11-02T00:00:00Z", time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), ""},
		{"2026-11-20", "2026-11-20", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), now, ""},
		{"2026-11-10", "2026-11-09", time.Time{}, time.Time{}, "not before"},
		{"2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z", time.Time{}, time.Time{}, "not before"},
		{"2026-11-01", "2026-11-21", time.Time{}, time.Time{}, "in the future"},
		{"2026-11-01", "2026-11-20T16:00:00Z", time.Time{}, time.Time{}, "in the future"},
		{"", "", time.Time{}, time.Time{}, "first day"},
		{"yesterday", "", time.Time{}, time.Time{}, `from "yesterday"`},
		{"2026-11-01", "11/02/2026", time.Time{}, time.Time{}, `to "11/02/2026"`},
	} {
		f, to, err := evidence.ParsePeriod(c.from, c.to, now)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q %q: err = %v, want %q", c.from, c.to, err, c.wantErr)
			}
			continue
		}
		if err != nil || !f.Equal(c.wantF) || !to.Equal(c.wantT) {
			t.Errorf("%q %q = %s %s (%v), want %s %s", c.from, c.to, f, to, err, c.wantF, c.wantT)
		}
	}
}

func TestNameFor(t *testing.T) {
	if n := evidence.NameFor("dev/a b", day(0), day(31)); n != "ward-evidence-dev_a_b-2026-10-01-to-2026-10-31.json" {
		t.Errorf("name = %s", n)
	}
	if n := evidence.NameFor("", day(0), day(1).Add(90*time.Minute)); n != "ward-evidence-fleet-2026-10-01T000000Z-to-2026-10-02T013000Z.json" {
		t.Errorf("name = %s", n)
	}
}
