package outbox

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

const testDevice = "dev-seal-1"

// testSealer seals with one device key and certificate, as the agent's
// identity does; genesis is per epoch, from the epoch's certificate.
type testSealer struct {
	key  crypto.Signer
	cert *x509.Certificate
	fail error
}

func newTestSealer(t *testing.T) *testSealer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: testDevice},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testSealer{key: key, cert: cert}
}

func (s *testSealer) Seal(r *wardv1.Report, prev []byte, dropped uint64) ([]byte, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	return evidence.Seal(s.key, testDevice, r, prev, dropped)
}

func (s *testSealer) Genesis(epoch uint64) []byte {
	return evidence.Genesis(testDevice, epoch, s.cert.Raw)
}

// chainOf reads every queued report and checks each seal with the
// certificate; it returns the reports and their statement hashes.
func chainOf(t *testing.T, o *Outbox, cert *x509.Certificate) ([]*wardv1.Report, [][]byte) {
	t.Helper()
	var rs []*wardv1.Report
	var hashes [][]byte
	for _, seq := range o.Sequences() {
		r, err := o.Read(seq)
		if err != nil {
			t.Fatal(err)
		}
		_, h, err := evidence.VerifySeal(cert, testDevice, r)
		if err != nil {
			t.Fatalf("report %d: VerifySeal: %v", seq, err)
		}
		rs, hashes = append(rs, r), append(hashes, h)
	}
	return rs, hashes
}

func epochReport(epoch uint64, status wardv1.ResultStatus, note string) *wardv1.Report {
	r := report(status, note)
	r.Epoch = epoch
	return r
}

func TestSealedChain(t *testing.T) {
	dir := t.TempDir()
	s := newTestSealer(t)
	o := mustOpen(t, dir, Options{Sealer: s})
	for i := range 4 {
		mustAppend(t, o, epochReport(3, pass, string(rune('a'+i))))
	}
	rs, hashes := chainOf(t, o, s.cert)
	if len(rs) != 4 {
		t.Fatalf("%d reports queued, want 4", len(rs))
	}
	if got, want := rs[0].GetSeal().GetPrevHash(), s.Genesis(3); !bytes.Equal(got, want) {
		t.Errorf("first report chains to %x, want the epoch's genesis %x", got, want)
	}
	for i := 1; i < len(rs); i++ {
		if got := rs[i].GetSeal().GetPrevHash(); !bytes.Equal(got, hashes[i-1]) {
			t.Errorf("report %d chains to %x, want report %d's hash %x", rs[i].Sequence, got, rs[i-1].Sequence, hashes[i-1])
		}
	}
	if got, want := rs[0].GetSeal().GetKeyId(), evidence.CertKeyID(s.cert); !bytes.Equal(got, want) {
		t.Errorf("key id %x, want the certificate's %x", got, want)
	}
	epoch, head, kid := o.Head()
	if epoch != 3 || !bytes.Equal(head, hashes[3]) || !bytes.Equal(kid, evidence.CertKeyID(s.cert)) {
		t.Errorf("Head() = %d, %x, %x; want 3, %x and the key id", epoch, head, kid, hashes[3])
	}

	// A restart: the chain goes on from the head in meta.json.
	o = mustOpen(t, dir, Options{Sealer: s})
	mustAppend(t, o, epochReport(3, fail, "after restart"))
	rs, _ = chainOf(t, o, s.cert)
	if got := rs[4].GetSeal().GetPrevHash(); !bytes.Equal(got, hashes[3]) {
		t.Errorf("after a restart report %d chains to %x, want %x", rs[4].Sequence, got, hashes[3])
	}

	// A tampered report no longer verifies.
	rs[4].Results[0].Status = pass // results are not signed: a verifier recomputes them
	rs[4].CollectedAt.Seconds++
	if _, _, err := evidence.VerifySeal(s.cert, testDevice, rs[4]); !errors.Is(err, evidence.ErrBadSignature) {
		t.Errorf("a report with a changed time: VerifySeal = %v, want ErrBadSignature", err)
	}
}

func TestSealedNewEpochStartsAtGenesis(t *testing.T) {
	s := newTestSealer(t)
	o := mustOpen(t, t.TempDir(), Options{Sealer: s, MaxEntries: 3})
	mustAppend(t, o, epochReport(1, pass, "a"))
	mustAppend(t, o, epochReport(1, pass, "b"))
	mustAppend(t, o, epochReport(1, pass, "c"))
	mustAppend(t, o, epochReport(1, pass, "d")) // drops one of epoch 1
	mustAppend(t, o, epochReport(2, fail, "re-bound"))
	mustAppend(t, o, epochReport(2, fail, "next"))
	rs, hashes := chainOf(t, o, s.cert)
	var first, second *wardv1.Report
	for i, r := range rs {
		if r.Epoch == 2 && first == nil {
			first = r
			if i+1 < len(rs) {
				second = rs[i+1]
				if !bytes.Equal(second.GetSeal().GetPrevHash(), hashes[i]) {
					t.Errorf("epoch 2's second report chains to %x, want %x", second.GetSeal().GetPrevHash(), hashes[i])
				}
			}
		}
	}
	if first == nil || second == nil {
		t.Fatalf("epoch 2's reports are not queued: %v", o.Sequences())
	}
	if got, want := first.GetSeal().GetPrevHash(), s.Genesis(2); !bytes.Equal(got, want) {
		t.Errorf("epoch 2's first report chains to %x, want its genesis %x", got, want)
	}
	if got := first.GetSeal().GetDroppedTotal(); got != 0 {
		t.Errorf("epoch 2's first report carries dropped_total %d, want 0 (epoch 1's drops are epoch 1's)", got)
	}
}

func TestSealedDropsGrow(t *testing.T) {
	s := newTestSealer(t)
	o := mustOpen(t, t.TempDir(), Options{Sealer: s, MaxEntries: 3})
	// Each Append past three entries drops one; a report counts the drops
	// made before it was queued.
	for i := range 7 {
		mustAppend(t, o, epochReport(1, pass, string(rune('a'+i))))
	}
	rs, _ := chainOf(t, o, s.cert)
	if len(rs) != 3 {
		t.Fatalf("%d reports queued, want 3", len(rs))
	}
	var got []uint64
	for _, r := range rs {
		got = append(got, r.GetSeal().GetDroppedTotal())
	}
	// Compaction drops the oldest report that repeats its predecessor's
	// verdicts: 2 at 4's Append, then 3, 4 and 5, so 1, 6 and 7 survive.
	// 1 was sealed before any drop, 6 after two (2, 3), 7 after three; the
	// fourth (5, dropped at 7's Append) is counted by the next report.
	// So the gap 1..6 has four missing reports of which 6's count explains
	// two: the drops of 4 and 5 show only in later reports' counts
	// (docs/outbox.md, "Sealed reports").
	if !equalU64(o.Sequences(), []uint64{1, 6, 7}) {
		t.Fatalf("survivors %v, want [1 6 7]", o.Sequences())
	}
	want := []uint64{0, 2, 3}
	if !equalU64(got, want) {
		t.Errorf("sealed dropped_total of the survivors %v = %v, want %v", o.Sequences(), got, want)
	}
	if o.DroppedTotal() != 4 {
		t.Errorf("DroppedTotal() = %d, want 4 (the next report carries them)", o.DroppedTotal())
	}
	seq := mustAppend(t, o, epochReport(1, fail, "next"))
	r, err := o.Read(seq)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.GetSeal().GetDroppedTotal(); got != 4 {
		t.Errorf("the next report's sealed dropped_total = %d, want 4", got)
	}
}

func TestSealerFailureQueuesNothing(t *testing.T) {
	s := newTestSealer(t)
	o := mustOpen(t, t.TempDir(), Options{Sealer: s})
	mustAppend(t, o, epochReport(1, pass, "a"))
	_, head, _ := o.Head()
	s.fail = errors.New("no key")
	if _, err := o.Append(epochReport(1, pass, "b")); err == nil || !errors.Is(err, s.fail) {
		t.Fatalf("Append with a failing sealer = %v, want its error", err)
	}
	if o.Len() != 1 || o.NextSequence() != 2 {
		t.Errorf("after a failed seal: %d queued, next sequence %d; want 1 and 2 (nothing spent)", o.Len(), o.NextSequence())
	}
	if _, h, _ := o.Head(); !bytes.Equal(h, head) {
		t.Errorf("a failed seal moved the head")
	}
}

// A crash after meta.json is written and before the entry file leaves
// the report lost; its successor chains to it, so the collector sees a
// gap of one missing report rather than a broken chain.
func TestSealedCrashBeforeEntry(t *testing.T) {
	dir := t.TempDir()
	s := newTestSealer(t)
	o := mustOpen(t, dir, Options{Sealer: s})
	mustAppend(t, o, epochReport(1, pass, "a"))
	seq := mustAppend(t, o, epochReport(1, pass, "lost"))
	_, lost, _ := o.Head()
	if err := os.Remove(o.path(seq)); err != nil { // as if the crash came before it was written
		t.Fatal(err)
	}
	o = mustOpen(t, dir, Options{Sealer: s})
	next := mustAppend(t, o, epochReport(1, fail, "c"))
	r, err := o.Read(next)
	if err != nil {
		t.Fatal(err)
	}
	if next != seq+1 || !bytes.Equal(r.GetSeal().GetPrevHash(), lost) {
		t.Errorf("report %d chains to %x; want report %d chained to the lost report's hash %x", next, r.GetSeal().GetPrevHash(), seq+1, lost)
	}
}

func TestUnsealedWithoutSealer(t *testing.T) {
	s := newTestSealer(t)
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{Sealer: s})
	sealed := epochReport(1, pass, "a")
	mustAppend(t, o, sealed)
	// Queued again without a sealer (as a renumber would), the old seal,
	// which names the old sequence, does not go along.
	o2 := mustOpen(t, t.TempDir(), Options{})
	seq := mustAppend(t, o2, sealed)
	r, err := o2.Read(seq)
	if err != nil {
		t.Fatal(err)
	}
	if r.Seal != nil {
		t.Errorf("an outbox without a sealer queued a seal: %v", r.Seal)
	}
	// A report of epoch 0 (a state saved before epochs) goes unsealed.
	seq = mustAppend(t, o, epochReport(0, pass, "pre-epoch"))
	if r, err := o.Read(seq); err != nil || r.Seal != nil {
		t.Errorf("a report of epoch 0: %v, seal %v; want it queued unsealed", err, r.GetSeal())
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
