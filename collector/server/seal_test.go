package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// sealer seals one device's reports like its agent's outbox does: each
// chained to the one before it in the epoch, the first to the epoch's
// genesis.
type sealer struct {
	t      *testing.T
	id     string
	epoch  uint64
	key    crypto.Signer
	head   []byte
	hashes map[uint64][]byte
}

func enrolSealer(t *testing.T, c *servertest.Collector) (*sealer, tls.Certificate) {
	t.Helper()
	resp, cert, err := c.TryEnroll(context.Background(), c.Token("staff", 1, time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &sealer{t: t, id: resp.DeviceId, epoch: resp.Epoch, key: cert.PrivateKey.(crypto.Signer),
		head: evidence.Genesis(resp.DeviceId, resp.Epoch, resp.CertificateDer), hashes: map[uint64][]byte{}}, cert
}

// next is report seq sealed onto the head, with the agent's drop count.
func (s *sealer) next(seq, dropped uint64) *wardv1.ReportRequest {
	s.t.Helper()
	req := newReport(seq, simpleFacts())
	req.Report.Epoch = s.epoch
	h, err := evidence.Seal(s.key, s.id, req.Report, s.head, dropped)
	if err != nil {
		s.t.Fatal(err)
	}
	s.head, s.hashes[seq] = h, h
	return req
}

func chainsOf(t *testing.T, c *servertest.Collector) store.Chains {
	t.Helper()
	cs, ok := c.Store().(store.Chains)
	if !ok {
		t.Fatalf("%T keeps no chains", c.Store())
	}
	return cs
}

func evidenceReports(t *testing.T, c *servertest.Collector, id string) []store.Report {
	t.Helper()
	rs, err := chainsOf(t, c).EvidenceReports(context.Background(), id, time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func wantSealRefused(t *testing.T, err error, part string) {
	t.Helper()
	wantCode(t, err, codes.InvalidArgument)
	if msg := status.Convert(err).Message(); !strings.HasPrefix(msg, "invalid report: seal: ") || !strings.Contains(msg, part) {
		t.Fatalf("refusal %q, want \"invalid report: seal: …%s…\"", msg, part)
	}
}

func TestSealedReportsStoredWithSeals(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	s, cert := enrolSealer(t, c)
	agent := agentClient(c, &cert)
	genesis := s.head
	var last *wardv1.ReportRequest
	for seq := uint64(1); seq <= 2; seq++ {
		last = s.next(seq, 0)
		if _, err := agent.Report(ctx, last); err != nil {
			t.Fatalf("report %d: %v", seq, err)
		}
	}
	rs := evidenceReports(t, c, s.id)
	if len(rs) != 2 {
		t.Fatalf("%d reports stored, want 2", len(rs))
	}
	for i, r := range rs {
		seal := r.Seal
		if seal == nil {
			t.Fatalf("report %d stored without its seal", r.Sequence)
		}
		want := genesis
		if i > 0 {
			want = s.hashes[rs[i-1].Sequence]
		}
		if !bytes.Equal(seal.Hash, s.hashes[r.Sequence]) || !bytes.Equal(seal.PrevHash, want) || !bytes.Equal(seal.KeyID, evidence.CertKeyID(cert.Leaf)) {
			t.Errorf("report %d: seal hash %x prev %x key %x", r.Sequence, seal.Hash, seal.PrevHash, seal.KeyID)
		}
		st, err := evidence.DecodeStatement(seal.Statement)
		if err != nil || !bytes.Equal(evidence.StatementHash(seal.Statement), seal.Hash) {
			t.Fatalf("report %d: stored statement %v does not hash to the seal's hash", r.Sequence, err)
		}
		if st.DeviceId != s.id || st.Sequence != r.Sequence || st.Epoch != s.epoch {
			t.Errorf("report %d: statement %v", r.Sequence, st)
		}
		if err := evidence.VerifyHash(cert.Leaf.PublicKey, seal.Hash, seal.Signature); err != nil {
			t.Errorf("report %d: stored signature: %v", r.Sequence, err)
		}
		// The facts stored are those the statement names.
		facts := &wardv1.Facts{}
		if err := proto.Unmarshal(r.Facts, facts); err != nil || !bytes.Equal(evidence.FactsDigest(facts), st.FactsDigest) {
			t.Errorf("report %d: stored facts do not match the statement's digest (%v)", r.Sequence, err)
		}
	}
	// A redelivery is acknowledged and changes nothing.
	if _, err := agent.Report(ctx, last); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if n := len(evidenceReports(t, c, s.id)); n != 2 {
		t.Errorf("%d reports after a redelivery, want 2", n)
	}
	if gs, _ := chainsOf(t, c).ChainGaps(ctx, s.id); len(gs) != 0 {
		t.Errorf("gaps %+v, want none", gs)
	}
	if fs, _ := chainsOf(t, c).ChainForks(ctx, s.id); len(fs) != 0 {
		t.Errorf("forks %+v, want none", fs)
	}
}

func TestSealRefusals(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	s, cert := enrolSealer(t, c)
	agent := agentClient(c, &cert)
	if _, err := agent.Report(ctx, s.next(1, 0)); err != nil {
		t.Fatal(err)
	}
	head := s.head

	// A flipped bit in the signature.
	req := s.next(2, 0)
	req.Report.Seal.Signature[len(req.Report.Seal.Signature)-1] ^= 1
	_, err := agent.Report(ctx, req)
	wantSealRefused(t, err, "signature does not verify")
	// A report changed after it was sealed.
	s.head = head
	req = s.next(2, 0)
	req.Report.PolicyVersion++
	_, err = agent.Report(ctx, req)
	wantSealRefused(t, err, "signature does not verify")
	// Sealed by a key that is none of this device's certificates'.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.head = head
	req = newReport(2, simpleFacts())
	req.Report.Epoch = s.epoch
	if _, err := evidence.Seal(other, s.id, req.Report, head, 0); err != nil {
		t.Fatal(err)
	}
	_, err = agent.Report(ctx, req)
	wantSealRefused(t, err, "is not one of this device's certificates")
	// Sealed for another device (the statement names the device).
	req = newReport(2, simpleFacts())
	req.Report.Epoch = s.epoch
	if _, err := evidence.Seal(s.key, "dev_someone_else", req.Report, head, 0); err != nil {
		t.Fatal(err)
	}
	_, err = agent.Report(ctx, req)
	wantSealRefused(t, err, "signature does not verify")
	// Seal fields out of bounds.
	s.head = head
	req = s.next(2, 0)
	req.Report.Seal.PrevHash = append(req.Report.Seal.PrevHash, 0)
	_, err = agent.Report(ctx, req)
	wantCode(t, err, codes.InvalidArgument)
	if msg := status.Convert(err).Message(); msg != "invalid report: seal: prev_hash is 33 bytes, not 32" {
		t.Errorf("refusal %q", msg)
	}
	// An unsealed report after a sealed one: a downgrade.
	_, err = agent.Report(ctx, newReportIn(2, s.epoch))
	wantSealRefused(t, err, "report is not sealed")
	// A sealed report chained to nothing once the chain has begun.
	req = newReport(2, simpleFacts())
	req.Report.Epoch = s.epoch
	if _, err := evidence.Seal(s.key, s.id, req.Report, nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err = agent.Report(ctx, req)
	wantSealRefused(t, err, "no prev_hash")

	if rs := c.Reports(s.id); len(rs) != 1 {
		t.Fatalf("%d reports stored, want only the first", len(rs))
	}
	m := scrape(t, c.HTTPAddr)
	for reason, want := range map[string]float64{"signature": 3, "unknown_key": 1, "downgrade": 1, "unchained": 1} {
		if got := m[`ward_collector_reports_seal_refused_total{reason="`+reason+`"}`]; got != want {
			t.Errorf("seal refusals for %s = %v, want %v", reason, got, want)
		}
	}
	// The honest next report is stored.
	s.head = head
	if _, err := agent.Report(ctx, s.next(2, 0)); err != nil {
		t.Fatal(err)
	}
}

func newReportIn(seq, epoch uint64) *wardv1.ReportRequest {
	req := newReport(seq, simpleFacts())
	req.Report.Epoch = epoch
	return req
}

// An agent enrolled before it sealed (no genesis): unsealed reports,
// then a first sealed one chained to nothing, then the chain.
func TestSealsBeginInAnEpoch(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	s, cert := enrolSealer(t, c)
	agent := agentClient(c, &cert)
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := agent.Report(ctx, newReportIn(seq, s.epoch)); err != nil {
			t.Fatal(err)
		}
	}
	s.head = nil
	first := s.next(3, 0)
	for range 2 { // and its redelivery
		if _, err := agent.Report(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := agent.Report(ctx, s.next(4, 0)); err != nil {
		t.Fatal(err)
	}
	rs := evidenceReports(t, c, s.id)
	if len(rs) != 4 || rs[0].Seal != nil || rs[1].Seal != nil || rs[2].Seal == nil || len(rs[2].Seal.PrevHash) != 0 || rs[3].Seal == nil {
		t.Fatalf("reports %+v: want 2 unsealed, then 3 chained to nothing and 4", rs)
	}
}

func TestSealGapRecordsAgentDrops(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	s, cert := enrolSealer(t, c)
	agent := agentClient(c, &cert)
	if _, err := agent.Report(ctx, s.next(1, 0)); err != nil {
		t.Fatal(err)
	}
	// 2 to 4 are sealed but never delivered: the outbox dropped two of
	// them (it counts them in the next seal), the third is lost.
	s.next(2, 0)
	s.next(3, 1)
	s.next(4, 2)
	if _, err := agent.Report(ctx, s.next(5, 2)); err != nil {
		t.Fatal(err)
	}
	gs, err := chainsOf(t, c).ChainGaps(ctx, s.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Epoch != s.epoch || gs[0].After != 1 || gs[0].Before != 5 || gs[0].Missing() != 3 || gs[0].Dropped != 2 {
		t.Fatalf("gaps %+v, want one after 1 before 5: 3 missing, 2 dropped", gs)
	}
	if fs, _ := chainsOf(t, c).ChainForks(ctx, s.id); len(fs) != 0 {
		t.Errorf("forks %+v, want none", fs)
	}
}

// A newer agent's report with fields this collector does not know: they
// are dropped before it stores, so the seal cannot verify; the report is
// stored unsealed instead of refused, and the chain shows the hole.
func TestSealVersionSkewStoredUnsealed(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	s, cert := enrolSealer(t, c)
	agent := agentClient(c, &cert)
	if _, err := agent.Report(ctx, s.next(1, 0)); err != nil {
		t.Fatal(err)
	}
	req := newReportIn(2, s.epoch)
	req.Report.Facts.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 999, protowire.VarintType), 7))
	h, err := evidence.Seal(s.key, s.id, req.Report, s.head, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.head = h
	if _, err := agent.Report(ctx, req); err != nil {
		t.Fatalf("report with unknown fields: %v", err)
	}
	if _, err := agent.Report(ctx, s.next(3, 0)); err != nil {
		t.Fatal(err)
	}
	rs := evidenceReports(t, c, s.id)
	if len(rs) != 3 || rs[0].Seal == nil || rs[1].Seal != nil || rs[2].Seal == nil {
		t.Fatalf("reports %+v: want 2 stored unsealed between sealed 1 and 3", rs)
	}
	gs, _ := chainsOf(t, c).ChainGaps(ctx, s.id)
	if len(gs) != 1 || gs[0].After != 1 || gs[0].Before != 3 || gs[0].Dropped != 0 {
		t.Errorf("gaps %+v, want 1..3 with none dropped", gs)
	}
	if got := scrape(t, c.HTTPAddr)["ward_collector_reports_seal_unverified_total"]; got != 1 {
		t.Errorf("unverified seals = %v, want 1", got)
	}
}

// certStore is a store that also records device certificates (the
// records of docs/evidence.md) for this test.
type certStore struct {
	*sqlite.Store
	certs []store.DeviceCertificate
}

func (s *certStore) DeviceCertificates(_ context.Context, deviceID string) ([]store.DeviceCertificate, error) {
	var out []store.DeviceCertificate
	for _, c := range s.certs {
		if c.DeviceID == deviceID {
			out = append(out, c)
		}
	}
	return out, nil
}

// A report sealed before a renewal, delivered over the renewed
// certificate, verifies with the device's previous certificate.
func TestSealByRenewedAwayKey(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &certStore{Store: db}
	c := servertest.Start(t, func(cfg *server.Config) { cfg.Store = st })
	s, cert := enrolSealer(t, c)
	if _, err := agentClient(c, &cert).Report(ctx, s.next(1, 0)); err != nil {
		t.Fatal(err)
	}
	queued := s.next(2, 0) // sealed with the old key, still in the outbox

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := agentClient(c, &cert).Renew(ctx, &wardv1.RenewRequest{CsrDer: csr})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(renewed.CertificateDer)
	agent := wardv1grpc.NewAgentServiceClient(c.Dial(&tls.Certificate{Certificate: [][]byte{renewed.CertificateDer}, PrivateKey: key, Leaf: leaf}))
	_, err = agent.Report(ctx, queued)
	wantSealRefused(t, err, "is not one of this device's certificates")
	st.certs = append(st.certs, store.DeviceCertificate{DeviceID: s.id, Epoch: s.epoch, KeyID: evidence.CertKeyID(cert.Leaf), DER: cert.Leaf.Raw, Kind: "enrol"})
	if _, err := agent.Report(ctx, queued); err != nil {
		t.Fatalf("report sealed by the previous key: %v", err)
	}
	s.key = key
	if _, err := agent.Report(ctx, s.next(3, 0)); err != nil {
		t.Fatalf("report sealed by the new key: %v", err)
	}
	rs := evidenceReports(t, c, s.id)
	if len(rs) != 3 || !bytes.Equal(rs[1].Seal.KeyID, evidence.CertKeyID(cert.Leaf)) || !bytes.Equal(rs[2].Seal.KeyID, evidence.CertKeyID(leaf)) {
		t.Fatalf("reports %+v", rs)
	}
}

// A compact report (docs/enrolment.md, "Report size") names the facts of
// the report before it by digest; it is sealed over the full facts it
// stands for, and verifies once the collector has put them back.
func TestSealedCompactReport(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	s, cert := enrolSealer(t, c)
	agent := agentClient(c, &cert)
	first := newReportIn(1, s.epoch)
	first.Report.Facts.CollectedAt = first.Report.CollectedAt
	head, err := evidence.Seal(s.key, s.id, first.Report, s.head, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.head = head
	if _, err := agent.Report(ctx, first); err != nil {
		t.Fatal(err)
	}
	base := policies.FactsDigest(first.Report.Facts)
	req := newReportIn(2, s.epoch)
	req.Report.Facts = proto.Clone(first.Report.Facts).(*wardv1.Facts)
	req.Report.Facts.CollectedAt = req.Report.CollectedAt
	if _, err := evidence.Seal(s.key, s.id, req.Report, s.head, 0); err != nil {
		t.Fatal(err)
	}
	req.Report.Facts, req.Report.BaseFacts = nil, base
	if _, err := agent.Report(ctx, req); err != nil {
		t.Fatalf("compact sealed report: %v", err)
	}
	rs := evidenceReports(t, c, s.id)
	if len(rs) != 2 || rs[1].Seal == nil || !bytes.Equal(rs[1].Seal.PrevHash, rs[0].Seal.Hash) {
		t.Fatalf("reports %+v: want 2 sealed, chained", rs)
	}
}
