package evidence_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	ev "github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestBuildFromStore builds a device's file over a real collector's store
// (SQLite, and PostgreSQL), the certificate, enrolment record, policy
// document and sealed reports written through the store API: the file
// has the reports around the period, the gap SaveReport recorded with
// the agent's dropped count, the certificate, the record with its
// genesis and the document with its hash.
func TestBuildFromStore(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testBuildFromStore(t) })
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		testBuildFromStore(t, func(cfg *server.Config) { cfg.StoreSpec = url })
	})
}

func testBuildFromStore(t *testing.T, opts ...servertest.Option) {
	ctx := context.Background()
	c := servertest.Start(t, opts...)
	resp, tc, err := c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: "lap-7", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: "m7",
	})
	if err != nil {
		t.Fatal(err)
	}
	id, epoch := resp.DeviceId, resp.Epoch
	es, err := evidence.For(c.Store())
	if err != nil {
		t.Fatalf("%v: the backends implement store.EvidenceStore once the chain and records work is in", err)
	}
	ws := c.Store().(store.EvidenceStore)
	cert, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	genesis := ev.Genesis(id, epoch, cert.Raw)
	if err := ws.AddDeviceCertificate(ctx, store.DeviceCertificate{DeviceID: id, Epoch: epoch, KeyID: ev.CertKeyID(cert), DER: cert.Raw, Kind: "enrol", IssuedAt: now.Add(-5 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := ws.AddEnrolmentRecord(ctx, store.EnrolmentRecord{DeviceID: id, Epoch: epoch, At: now.Add(-5 * time.Hour), Kind: "enrol", Certificate: cert.Raw, Genesis: genesis}); err != nil {
		t.Fatal(err)
	}
	doc, p := baselineDoc(t)
	if err := ws.RecordPolicyDocument(ctx, doc); err != nil {
		t.Fatal(err)
	}
	// Sequences 1-4 an hour apart, then 6 (5 dropped by the agent).
	key := tc.PrivateKey.(crypto.Signer)
	prev := genesis
	at := map[uint64]time.Time{1: now.Add(-4 * time.Hour), 2: now.Add(-3 * time.Hour), 3: now.Add(-2 * time.Hour), 4: now.Add(-time.Hour), 6: now.Add(-30 * time.Minute)}
	for _, seq := range []uint64{1, 2, 3, 4, 6} {
		var dropped uint64
		if seq == 6 {
			dropped = 1
		}
		f := facts(true)
		r := &wardv1.Report{Epoch: epoch, Sequence: seq, CollectedAt: timestamppb.New(at[seq]), AgentVersion: "test", PolicyName: p.Name, PolicyVersion: int32(p.Version), Facts: f}
		hash, err := ev.Seal(key, id, r, prev, dropped)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := ev.EncodeStatement(ev.Statement(id, r))
		if err != nil {
			t.Fatal(err)
		}
		fb, _ := proto.Marshal(f)
		sr := store.Report{
			DeviceID: id, Epoch: epoch, Sequence: seq, CollectedAt: at[seq], ObservedAt: at[seq], ReceivedAt: now,
			AgentVersion: "test", PolicyName: p.Name, PolicyVersion: p.Version, DroppedTotal: dropped, Facts: fb,
			Seal: &store.ReportSeal{Statement: enc, Hash: hash, PrevHash: prev, KeyID: r.Seal.KeyId, Signature: r.Seal.Signature},
		}
		if _, err := c.Store().SaveReport(ctx, sr); err != nil {
			t.Fatalf("save %d: %v", seq, err)
		}
		prev = hash
	}
	var sum noSummary
	res, err := evidence.Build(ctx, es, evidence.Options{
		DeviceID: id, From: now.Add(-3*time.Hour - 30*time.Minute), To: now.Add(-45 * time.Minute), Now: now,
		CA: [][]byte{c.CACertDER}, Summarize: sum.summarize,
	})
	if err != nil {
		t.Fatal(err)
	}
	d := res.File.Devices[0]
	var seqs []uint64
	for _, r := range d.Reports {
		st, err := ev.DecodeStatement(r.Statement)
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.VerifyHash(cert.PublicKey, ev.StatementHash(r.Statement), r.Signature); err != nil {
			t.Errorf("sequence %d: %v", st.GetSequence(), err)
		}
		if !r.ObservedAt.Equal(at[st.GetSequence()]) || !r.ReceivedAt.Equal(now) {
			t.Errorf("sequence %d: observed %s received %s", st.GetSequence(), r.ObservedAt, r.ReceivedAt)
		}
		seqs = append(seqs, st.GetSequence())
	}
	// 1 is the last before the period, 6 the first after it.
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 6}) {
		t.Errorf("sequences = %v, want 1 2 3 4 6", seqs)
	}
	if want := []ev.Gap{{Epoch: epoch, After: 4, Before: 6, Dropped: 1}}; !slices.Equal(d.Gaps, want) {
		t.Errorf("gaps = %+v, want %+v", d.Gaps, want)
	}
	if len(d.Forks) != 0 {
		t.Errorf("forks = %+v, want none", d.Forks)
	}
	if d.Hostname != "lap-7" || len(d.Certificates) != 1 || string(d.Certificates[0].DER) != string(cert.Raw) {
		t.Errorf("hostname %q, %d certificates", d.Hostname, len(d.Certificates))
	}
	if len(d.Enrolments) != 1 || d.Enrolments[0].Epoch != epoch || string(d.Enrolments[0].Certificate) != string(cert.Raw) {
		t.Errorf("enrolments = %+v", d.Enrolments)
	}
	stored, err := es.PolicyDocument(ctx, p.Name, p.Version)
	if err != nil {
		t.Fatal(err)
	}
	sha := sha256.Sum256(stored.Document)
	if len(res.File.Policies) != 1 || res.File.Policies[0].SHA256 != hex.EncodeToString(sha[:]) || res.File.Policies[0].Document != string(stored.Document) || len(res.MissingPolicies) != 0 {
		t.Errorf("policies = %d (missing %q), want %s v%d with its hash", len(res.File.Policies), res.MissingPolicies, p.Name, p.Version)
	}
}
