package report_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// formServer is a collector's Report that answers as an older collector
// does (no compact_reports; a report without facts is invalid) on the
// calls old says, and records every request.
type formServer struct {
	wardv1grpc.UnimplementedAgentServiceServer
	old func(call int) bool

	mu    sync.Mutex
	calls []*wardv1.Report
}

func (s *formServer) Report(_ context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, proto.CloneOf(req.GetReport()))
	old := s.old(len(s.calls))
	if old && req.GetReport().GetFacts() == nil {
		// What an older collector's validateReport says of base_facts,
		// a field it does not know.
		return nil, status.Error(codes.InvalidArgument, "invalid report: facts are missing")
	}
	return &wardv1.ReportResponse{AckedSequence: req.GetReport().GetSequence(), PolicyName: "baseline", PolicyVersion: 1,
		CompactReports: !old}, nil
}

// sameReport is a round that observed what the previous ones did, with
// pending updates whose names its policy does not read (their digest set).
func sameReport(i int) *wardv1.Report {
	pending := []*wardv1.PendingUpdate{{Name: "openssl", Version: "3.0.15-1~deb12u1", Security: true}, {Name: "tzdata", Version: "2024b-0+deb12u1"}}
	return &wardv1.Report{
		CollectedAt:   timestamppb.New(time.Date(2026, 11, 25, 10, i, 0, 0, time.UTC)),
		AgentVersion:  "test",
		PolicyName:    "baseline",
		PolicyVersion: 1,
		Facts: &wardv1.Facts{CollectedAt: timestamppb.New(time.Date(2026, 11, 25, 10, i, 0, 0, time.UTC)),
			Os: &wardv1.OSFacts{Platform: "linux"},
			PatchLevel: &wardv1.PatchFacts{Manager: "apt", PendingUpdates: proto.Int32(2), PendingSecurityUpdates: proto.Int32(1),
				Pending: pending, PendingDigest: policies.PendingDigest(pending)}},
		Results: []*wardv1.RuleResult{{RuleId: "security-updates", Title: "Security updates are installed", Observed: "1 security update pending",
			Status: wardv1.ResultStatus_RESULT_STATUS_FAIL, FailingSince: timestamppb.New(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))}},
	}
}

// deliverSame queues n same reports and delivers them, one Deliver each
// (a quarantined report is not counted as sent).
func deliverSame(t *testing.T, srv *formServer, n int) {
	t.Helper()
	cl, err := report.Dial(startServer(t, srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := ob.Append(sameReport(i)); err != nil {
			t.Fatal(err)
		}
		if sent, err := cl.Deliver(context.Background(), ob, nil); err != nil || sent != 1 {
			t.Fatalf("deliver report %d: %d sent, %v", i+1, sent, err)
		}
	}
	if ob.Len() != 0 {
		t.Fatalf("outbox left %d", ob.Len())
	}
}

// full reports whether r is the report in its full, uncompacted form.
func full(r *wardv1.Report) bool {
	return len(r.GetFacts().GetPatchLevel().GetPending()) == 2 && r.GetResults()[0].GetTitle() != "" && len(r.GetBaseFacts()) == 0
}

// TestOlderCollectorGetsFullReports: a collector that never announces
// compact_reports gets every report as the outbox holds it, names and
// texts included, never a digest in place of facts.
func TestOlderCollectorGetsFullReports(t *testing.T) {
	srv := &formServer{old: func(int) bool { return true }}
	deliverSame(t, srv, 3)
	if len(srv.calls) != 3 {
		t.Fatalf("%d calls, want 3", len(srv.calls))
	}
	for i, r := range srv.calls {
		if !full(r) {
			t.Errorf("call %d to an older collector not in full: %v", i+1, r)
		}
	}
}

// TestCompactForms: to a collector that announces them, the first report
// goes in full (nothing announced yet), the second without names and
// texts, the third as unchanged; and when the collector behind the same
// address turns out to be an older one, the report it refuses is sent
// again in full at once, and not quarantined.
func TestCompactForms(t *testing.T) {
	srv := &formServer{old: func(call int) bool { return call == 4 || call == 5 }}
	deliverSame(t, srv, 5)
	want := []string{"full", "compact", "unchanged", "unchanged", "full", "full"}
	if len(srv.calls) != len(want) {
		t.Fatalf("%d calls, want %d", len(srv.calls), len(want))
	}
	for i, r := range srv.calls {
		var got string
		switch {
		case full(r):
			got = "full"
		case r.Facts != nil && len(r.Facts.PatchLevel.Pending) == 0 && len(r.Facts.PatchLevel.PendingDigest) == 32 &&
			proto.Equal(r.Results[0], &wardv1.RuleResult{RuleId: "security-updates", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL}):
			got = "compact"
		case r.Facts == nil && len(r.BaseFacts) == 32 && r.ResultsAsBase && len(r.Results) == 0:
			got = "unchanged"
		}
		if got != want[i] {
			t.Errorf("call %d (sequence %d): %s form, want %s: %v", i+1, r.Sequence, got, want[i], r)
		}
	}
	if srv.calls[3].Sequence != 4 || srv.calls[4].Sequence != 4 || srv.calls[5].Sequence != 5 {
		t.Errorf("sequences %d %d %d, want 4 resent as 4, then 5", srv.calls[3].Sequence, srv.calls[4].Sequence, srv.calls[5].Sequence)
	}
	// The unchanged form names the facts of the compact one.
	if d := policies.FactsDigest(srv.calls[1].Facts); !proto.Equal(&wardv1.Report{BaseFacts: d}, &wardv1.Report{BaseFacts: srv.calls[2].BaseFacts}) {
		t.Errorf("base_facts %x, want the digest %x of the facts acknowledged", srv.calls[2].BaseFacts, d)
	}
}

// refusingServer acknowledges every report as a collector that takes
// compact forms, except the calls refuse names, which it answers with
// FailedPrecondition (it does not hold what the report names); it
// records every request.
type refusingServer struct {
	wardv1grpc.UnimplementedAgentServiceServer
	refuse map[int]bool

	mu    sync.Mutex
	calls []*wardv1.Report
}

func (s *refusingServer) Report(_ context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, proto.CloneOf(req.GetReport()))
	if s.refuse[len(s.calls)] {
		return nil, status.Error(codes.FailedPrecondition, "the report this seal chains to (prev_as_base) is not one this collector holds sealed")
	}
	return &wardv1.ReportResponse{AckedSequence: req.GetReport().GetSequence(), AckedEpoch: req.GetReport().GetEpoch(),
		PolicyName: "baseline", PolicyVersion: 1, CompactReports: true}, nil
}

// TestCompactSeal: in the unchanged form a sealed report's seal goes
// without its key id (the calling certificate's) and its prev_hash (the
// report acknowledged last, prev_as_base), while the outbox keeps the
// whole seal; a FailedPrecondition answer makes the agent send the same
// report again at once in full, seal whole; the next unchanged round
// leaves them out again.
func TestCompactSeal(t *testing.T) {
	srv := &refusingServer{refuse: map[int]bool{4: true}}
	id := startServer(t, srv)
	leaf, err := x509.ParseCertificate(id.Cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	id.Cert.Leaf, id.Epoch = leaf, 1
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox"), outbox.Options{Sealer: cl.Sealer()})
	if err != nil {
		t.Fatal(err)
	}
	var queued []*wardv1.Report // the seals as the outbox holds them, by sequence - 1
	for i := range 5 {
		r := sameReport(i)
		r.Epoch = 1
		seq, err := ob.Append(r)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ob.Read(seq)
		if err != nil || q.GetSeal() == nil {
			t.Fatalf("report %d queued as %v, %v; want it sealed", seq, q, err)
		}
		queued = append(queued, q)
		if sent, err := cl.Deliver(context.Background(), ob, nil); err != nil || sent != 1 {
			t.Fatalf("deliver report %d: %d sent, %v", seq, sent, err)
		}
	}
	kid := evidence.CertKeyID(leaf)
	// call: sequence, whether the seal leaves out key id and prev_hash.
	want := []struct {
		seq     uint64
		compact bool
	}{{1, false}, {2, false}, {3, true}, {4, true}, {4, false}, {5, true}}
	if len(srv.calls) != len(want) {
		t.Fatalf("%d calls, want %d", len(srv.calls), len(want))
	}
	for i, w := range want {
		r := srv.calls[i]
		q := queued[w.seq-1]
		s := r.GetSeal()
		if r.Sequence != w.seq || !bytes.Equal(s.GetSignature(), q.Seal.Signature) || s.GetDroppedTotal() != q.Seal.DroppedTotal {
			t.Errorf("call %d: sequence %d seal %v, want sequence %d with the queued signature", i+1, r.Sequence, s, w.seq)
			continue
		}
		if !bytes.Equal(q.Seal.KeyId, kid) || (w.seq > 1 && len(q.Seal.PrevHash) != 32) || q.Seal.PrevAsBase {
			t.Errorf("report %d: the outbox holds seal %v, want it whole", w.seq, q.Seal)
		}
		switch {
		case w.compact && (len(r.BaseFacts) != 32 || len(s.KeyId) != 0 || len(s.PrevHash) != 0 || !s.PrevAsBase):
			t.Errorf("call %d (sequence %d): seal %v, want key_id and prev_hash left out (prev_as_base)", i+1, w.seq, s)
		case !w.compact && (!bytes.Equal(s.KeyId, q.Seal.KeyId) || !bytes.Equal(s.PrevHash, q.Seal.PrevHash) || s.PrevAsBase || r.Facts == nil):
			t.Errorf("call %d (sequence %d): %v, want the full report with its whole seal %v", i+1, w.seq, r, q.Seal)
		}
	}
	// The left-out prev_hash is the hash of the report before: the chain
	// the outbox made links each report to the one before it.
	for i := 1; i < len(queued); i++ {
		enc, err := evidence.EncodeStatement(evidence.Statement(id.DeviceID, queued[i-1]))
		if err != nil || !bytes.Equal(queued[i].Seal.PrevHash, evidence.StatementHash(enc)) {
			t.Errorf("report %d does not chain to report %d: %v", i+1, i, err)
		}
	}
}
