package loadgen

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// flaky is an AgentService that fails the first attempt of every odd
// sequence (Unavailable: the report may have been stored, so it comes
// again) and refuses every unchanged round of sequence 4 once
// (FailedPrecondition: it is sent again in full), and keeps every
// request it got.
type flaky struct {
	noop
	mu   sync.Mutex
	got  map[string][]*wardv1.Report // by device, in arrival order
	seen map[string]bool
}

func (f *flaky) Report(ctx context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	r := req.GetReport()
	dev := f.device(ctx)
	f.mu.Lock()
	f.got[dev] = append(f.got[dev], proto.CloneOf(r))
	key := fmt.Sprintf("%s/%d/%v", dev, r.Sequence, r.BaseFacts != nil)
	first := !f.seen[key]
	f.seen[key] = true
	f.mu.Unlock()
	switch {
	case first && r.Sequence%2 == 1:
		return nil, status.Error(codes.Unavailable, "try again")
	case first && r.Sequence == 4 && r.BaseFacts != nil:
		return nil, status.Error(codes.FailedPrecondition, "no base")
	}
	return f.noop.Report(ctx, req)
}

// device is the common name of the calling certificate.
func (f *flaky) device(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			return ti.State.PeerCertificates[0].Subject.CommonName
		}
	}
	return ""
}

// TestSealedLikeTheAgent: each device's reports are sealed by its key,
// chained from the genesis of its certificate, once per sequence: every
// attempt of a report, in any form, carries the same seal, which
// verifies against the full report.
func TestSealedLikeTheAgent(t *testing.T) {
	srv := &flaky{got: map[string][]*wardv1.Report{}, seen: map[string]bool{}}
	c, grpcSrv, err := listenCeiling(t.TempDir(), srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(grpcSrv.Stop)
	ctx := context.Background()
	p, err := LoadPayloads(ctx, "../../agent/testdata/bundles", testNow)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	p.Evaluate(ctx, pol, testNow)
	devs, err := NewDevices(ctx, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range devs {
		d.ID, d.Epoch = fmt.Sprintf("dev_sealtest%08d", i), uint64(i+1)
	}
	target, err := c.Target(devs)
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 6
	run, err := Run(ctx, target, devs, p, RunConfig{Mode: Kept, Concurrency: 2, Rounds: rounds})
	if err != nil {
		t.Fatal(err)
	}
	// Sequences 1, 3 and 5 failed once each; 4 went unchanged, was
	// refused and went again in full.
	if run.Errors["Unavailable"] != 3*3 || run.Resent != 3 || run.Acknowledged != 3*rounds || !run.Sealed {
		t.Fatalf("run %+v", run)
	}
	for i, d := range devs {
		cert, err := x509.ParseCertificate(d.ceilingCert)
		if err != nil {
			t.Fatal(err)
		}
		prev := evidence.Genesis(d.ID, d.Epoch, d.ceilingCert)
		bySeq := map[uint64][]*wardv1.Report{}
		for _, r := range srv.got[d.ID] {
			bySeq[r.Sequence] = append(bySeq[r.Sequence], r)
		}
		for seq := uint64(1); seq <= rounds; seq++ {
			attempts := bySeq[seq]
			// Twice: the odd ones after Unavailable, 4 unchanged then in full.
			if want := 1 + int(seq%2); seq == 4 && len(attempts) != 2 || seq != 4 && len(attempts) != want {
				t.Errorf("device %d sequence %d: %d attempts", i, seq, len(attempts))
				continue
			}
			seal := attempts[0].GetSeal()
			for _, a := range attempts {
				if !proto.Equal(a.GetSeal(), seal) || !a.CollectedAt.AsTime().Equal(attempts[0].CollectedAt.AsTime()) || a.Epoch != d.Epoch {
					t.Errorf("device %d sequence %d: attempts differ: %v and %v", i, seq, seal, a.GetSeal())
				}
			}
			if !bytes.Equal(seal.GetPrevHash(), prev) {
				t.Errorf("device %d sequence %d: prev_hash %x, want %x", i, seq, seal.GetPrevHash(), prev)
			}
			// The seal is over the report the device made (its facts in
			// full, whatever form went).
			full := p.Request(i, d.Epoch, seq, attempts[0].CollectedAt.AsTime(), Legacy).Report
			full.Seal = seal
			_, hash, err := evidence.VerifySeal(cert, d.ID, full)
			if err != nil {
				t.Fatalf("device %d sequence %d: %v", i, seq, err)
			}
			prev = hash
		}
	}
	// Unsealed: no seal at all.
	srv.got = map[string][]*wardv1.Report{}
	run, err = Run(ctx, target, devs, p, RunConfig{Mode: Kept, Concurrency: 2, Rounds: 1, Unsealed: true})
	if err != nil || run.Sealed || run.Acknowledged != 3 {
		t.Fatalf("unsealed run %+v: %v", run, err)
	}
	for _, rs := range srv.got {
		for _, r := range rs {
			if r.Seal != nil {
				t.Errorf("an unsealed run sent a seal: %v", r.Seal)
			}
		}
	}
}
