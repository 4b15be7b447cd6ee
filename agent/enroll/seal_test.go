package enroll_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/collector/token"
	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// appendSealed queues a report of id's epoch and returns it as queued.
func appendSealed(t *testing.T, ob *outbox.Outbox, id *enroll.Identity, at time.Time) *wardv1.Report {
	t.Helper()
	seq, err := ob.Append(&wardv1.Report{Epoch: id.Epoch, CollectedAt: timestamppb.New(at), AgentVersion: "test",
		Facts:   &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux"}},
		Results: []*wardv1.RuleResult{{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ob.Read(seq)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func verifySeal(t *testing.T, what string, cert *x509.Certificate, deviceID string, r *wardv1.Report) []byte {
	t.Helper()
	_, hash, err := evidence.VerifySeal(cert, deviceID, r)
	if err != nil {
		t.Fatalf("%s: VerifySeal: %v", what, err)
	}
	return hash
}

// Enrolment saves the genesis of the issued certificate; the first
// sealed report chains to it; a re-bind is a new epoch whose first report
// chains to the new certificate's genesis.
func TestGenesisAtEnrolmentAndRebind(t *testing.T) {
	ctx := context.Background()
	clk, c, id := shortLived(t)
	want := evidence.Genesis(id.DeviceID, id.Epoch, id.Cert.Leaf.Raw)
	if id.Epoch == 0 || !bytes.Equal(id.Genesis, want) {
		t.Fatalf("enrolment: epoch %d, genesis %x; want an epoch and %x", id.Epoch, id.Genesis, want)
	}
	loaded, err := enroll.Load(id.Dir)
	if err != nil || !bytes.Equal(loaded.Genesis, want) {
		t.Fatalf("device.json: genesis %x, %v; want %x", genesisOf(loaded), err, want)
	}
	cl, _ := report.Dial(id, nil)
	cl.Now = clk.Now
	ob, err := outbox.Open(filepath.Join(id.Dir, "outbox"), outbox.Options{Sealer: cl.Sealer()})
	if err != nil {
		t.Fatal(err)
	}
	r1 := appendSealed(t, ob, id, clk.Now())
	verifySeal(t, "first report", id.Cert.Leaf, id.DeviceID, r1)
	if !bytes.Equal(r1.Seal.PrevHash, want) {
		t.Errorf("first report chains to %x, want the genesis %x", r1.Seal.PrevHash, want)
	}
	if n, err := cl.Deliver(ctx, ob, nil); err != nil || n != 1 {
		t.Fatalf("Deliver = %d, %v; want the sealed report taken", n, err)
	}
	cl.Close()

	rebind, _, err := token.CreateRebind(ctx, c.Store(), id.DeviceID, time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	again, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: rebind, Fingerprint: c.Fingerprint,
		StateDir: id.Dir, Source: fixtureSource(t), Now: clk.Now})
	if err != nil {
		t.Fatalf("re-bind: %v", err)
	}
	wantAgain := evidence.Genesis(again.DeviceID, again.Epoch, again.Cert.Leaf.Raw)
	if again.Epoch <= id.Epoch || !bytes.Equal(again.Genesis, wantAgain) {
		t.Fatalf("re-bind: epoch %d, genesis %x; want an epoch after %d and %x", again.Epoch, again.Genesis, id.Epoch, wantAgain)
	}
	cl, _ = report.Dial(again, nil)
	defer cl.Close()
	ob, err = outbox.Open(filepath.Join(id.Dir, "outbox"), outbox.Options{Sealer: cl.Sealer()})
	if err != nil {
		t.Fatal(err)
	}
	r2 := appendSealed(t, ob, again, clk.Now())
	verifySeal(t, "first report after the re-bind", again.Cert.Leaf, again.DeviceID, r2)
	if !bytes.Equal(r2.Seal.PrevHash, wantAgain) || r2.Seal.DroppedTotal != 0 {
		t.Errorf("first report of the new epoch chains to %x with dropped_total %d, want its genesis %x and 0", r2.Seal.PrevHash, r2.Seal.DroppedTotal, wantAgain)
	}
	if n, err := cl.Deliver(ctx, ob, nil); err != nil || n != 1 {
		t.Fatalf("Deliver after the re-bind = %d, %v", n, err)
	}
}

// A renewal sends a handover signed by the current key that names the
// new one; the report queued before it stays sealed by the old key, the
// one after it is sealed by the new key and chains to the one before.
func TestRenewalHandsOverTheChain(t *testing.T) {
	ctx := context.Background()
	clk, _, id := shortLived(t)

	ren, err := enroll.NewRenewal()
	if err != nil {
		t.Fatal(err)
	}
	h, err := ren.Handover(id, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := evidence.VerifyHandover(id.Cert.Leaf, h); err != nil {
		t.Errorf("VerifyHandover with the current certificate: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(ren.CSR)
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := evidence.KeyID(csr.PublicKey); !bytes.Equal(h.NewKeyId, kid) || h.DeviceId != id.DeviceID || h.Epoch != id.Epoch {
		t.Errorf("handover names key %x, device %q, epoch %d; want the CSR's key %x, %q, %d", h.NewKeyId, h.DeviceId, h.Epoch, kid, id.DeviceID, id.Epoch)
	}
	h.Epoch++
	if err := evidence.VerifyHandover(id.Cert.Leaf, h); !errors.Is(err, evidence.ErrBadSignature) {
		t.Errorf("a handover with a changed epoch: %v, want ErrBadSignature", err)
	}

	cl, _ := report.Dial(id, nil)
	defer cl.Close()
	cl.Now = clk.Now
	ob, err := outbox.Open(filepath.Join(id.Dir, "outbox"), outbox.Options{Sealer: cl.Sealer()})
	if err != nil {
		t.Fatal(err)
	}
	before := appendSealed(t, ob, id, clk.Now())
	hashBefore := verifySeal(t, "report before the renewal", id.Cert.Leaf, id.DeviceID, before)
	if err := cl.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := cl.Identity()
	if bytes.Equal(renewed.Cert.Leaf.Raw, id.Cert.Leaf.Raw) || !bytes.Equal(renewed.Genesis, id.Genesis) {
		t.Fatalf("renewal: certificate unchanged or genesis changed")
	}
	after := appendSealed(t, ob, renewed, clk.Now())
	verifySeal(t, "report after the renewal", renewed.Cert.Leaf, id.DeviceID, after)
	if !bytes.Equal(after.Seal.PrevHash, hashBefore) {
		t.Errorf("the report after the renewal chains to %x, want the one before it %x", after.Seal.PrevHash, hashBefore)
	}
	// The queued report still verifies with the old certificate.
	queued, err := ob.Read(before.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	verifySeal(t, "queued report", id.Cert.Leaf, id.DeviceID, queued)
	if n, err := cl.Deliver(ctx, ob, nil); err != nil || n != 2 {
		t.Fatalf("Deliver = %d, %v; want both reports taken", n, err)
	}
}

func genesisOf(id *enroll.Identity) []byte {
	if id == nil {
		return nil
	}
	return id.Genesis
}
