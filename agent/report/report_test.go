package report_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

func TestBackoff(t *testing.T) {
	base, maxDelay := time.Second, 5*time.Minute
	for attempt := range 70 {
		ceiling := maxDelay
		if attempt < 9 { // 2^9 s > 5 min
			ceiling = base << attempt
		}
		if got := report.Backoff(attempt, base, maxDelay, 0); got != 0 {
			t.Errorf("attempt %d, r=0: %v, want 0 (full jitter)", attempt, got)
		}
		hi := report.Backoff(attempt, base, maxDelay, 0.999999)
		if hi >= ceiling || hi < ceiling*99/100 {
			t.Errorf("attempt %d, r→1: %v, want just under %v", attempt, hi, ceiling)
		}
		if mid := report.Backoff(attempt, base, maxDelay, 0.5); mid != ceiling/2 {
			t.Errorf("attempt %d, r=0.5: %v, want %v", attempt, mid, ceiling/2)
		}
	}
	if got := report.Backoff(3, base, maxDelay, 1.5); got != 0 {
		t.Errorf("out-of-range r: %v, want 0", got)
	}
}

func reportAt(i int) *wardv1.Report {
	return &wardv1.Report{
		CollectedAt:  timestamppb.New(time.Date(2026, 11, 25, 10, i, 0, 0, time.UTC)),
		AgentVersion: "test",
		Facts:        &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux"}},
		Results:      []*wardv1.RuleResult{{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL}},
	}
}

func storedSequences(c *servertest.Collector, id string) []uint64 {
	var seqs []uint64
	for _, r := range c.Reports(id) {
		seqs = append(seqs, r.Sequence)
	}
	slices.Sort(seqs)
	return seqs
}

func TestDeliverInOrderAndAck(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	ob, err := outbox.Open(filepath.Join(dir, "outbox"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := ob.Append(reportAt(i)); err != nil {
			t.Fatal(err)
		}
	}
	// 4 is refused as invalid: it is quarantined and does not block 5.
	bad := reportAt(3)
	bad.Results[0].RuleId = ""
	ob.Append(bad)
	ob.Append(reportAt(4))

	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked []uint64
	var policyName string
	n, err := cl.Deliver(ctx, ob, func(r *wardv1.ReportResponse) {
		acked = append(acked, r.AckedSequence)
		policyName = r.PolicyName
	})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n != 4 || !slices.Equal(acked, []uint64{1, 2, 3, 5}) {
		t.Errorf("delivered %d, acked %v; want 4: [1 2 3 5]", n, acked)
	}
	if policyName == "" {
		t.Error("responses named no policy")
	}
	if ob.Len() != 0 {
		t.Errorf("outbox still holds %v", ob.Sequences())
	}
	if got := storedSequences(c, id.DeviceID); !slices.Equal(got, []uint64{1, 2, 3, 5}) {
		t.Errorf("collector stored %v, want [1 2 3 5]", got)
	}
	q, _ := os.ReadDir(filepath.Join(dir, "outbox", "quarantine"))
	if len(q) != 1 {
		t.Errorf("quarantine holds %d reports, want 1", len(q))
	}
}

func TestUnavailableKeepsQueue(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	ob, _ := outbox.Open(filepath.Join(dir, "outbox"), outbox.Options{})
	ob.Append(reportAt(0))
	ob.Append(reportAt(1))
	c.Stop()
	cl, _ := report.Dial(id, nil)
	defer cl.Close()
	cl.CallTimeout = 2 * time.Second
	n, err := cl.Deliver(ctx, ob, nil)
	if code := connect.CodeOf(err); n != 0 || (code != connect.CodeUnavailable && code != connect.CodeDeadlineExceeded) || report.Permanent(err) {
		t.Fatalf("Deliver to a stopped collector = %d, %v; want 0 and Unavailable or DeadlineExceeded", n, err)
	}
	if got := ob.Sequences(); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("outbox = %v, want [1 2] kept", got)
	}
	c.Restart()
	if n, err := cl.Deliver(ctx, ob, nil); n != 2 || err != nil {
		t.Fatalf("Deliver after restart = %d, %v; want 2", n, err)
	}
	if got := storedSequences(c, id.DeviceID); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("collector stored %v, want [1 2]", got)
	}
}

func TestRevokedIsPermanent(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	if err := c.Store().RevokeDevice(ctx, id.DeviceID, time.Now()); err != nil {
		t.Fatal(err)
	}
	ob, _ := outbox.Open(filepath.Join(dir, "outbox"), outbox.Options{})
	ob.Append(reportAt(0))
	cl, _ := report.Dial(id, nil)
	defer cl.Close()
	_, err := cl.Deliver(ctx, ob, nil)
	if !report.Permanent(err) {
		t.Fatalf("Deliver as a revoked device: %v, want a permanent error", err)
	}
	if ob.Len() != 1 {
		t.Error("the report was dropped")
	}
}

func TestPolicyFetchAndCache(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	cl, _ := report.Dial(id, nil)
	defer cl.Close()

	p := report.LoadPolicy(dir, nil)
	if p.Current() != nil {
		t.Fatal("a policy before any fetch")
	}
	changed, err := p.Refresh(ctx, cl, nil)
	if err != nil || !changed || p.Current() == nil {
		t.Fatalf("Refresh = %v, %v; want the collector's policy", changed, err)
	}
	name, version := p.Current().Name, p.Current().Version
	if p.Differs(name, version, "") || !p.Differs(name, version+1, "") {
		t.Error("Differs does not compare with the cached policy")
	}
	hash := p.Hash()
	if !strings.HasPrefix(hash, "sha256:") || p.Differs(name, version, hash) || !p.Differs(name, version, "sha256:other") {
		t.Errorf("Differs does not compare the content hash %q", hash)
	}
	if changed, err := p.Refresh(ctx, cl, nil); changed || err != nil {
		t.Errorf("second Refresh = %v, %v; want unchanged", changed, err)
	}
	// Offline: the cache alone gives the same policy.
	c.Stop()
	again := report.LoadPolicy(dir, nil)
	if again.Current() == nil || again.Current().Name != name || again.Current().Version != version || again.Hash() != hash {
		t.Fatalf("cached policy = %v (hash %q), want %s v%d (hash %q)", again.Current(), again.Hash(), name, version, hash)
	}
}

// policyServer serves a fixed GetPolicy answer over mutual TLS.
type policyServer struct {
	wardv1grpc.UnimplementedAgentServiceServer
	resp *wardv1.GetPolicyResponse
}

func (s *policyServer) GetPolicy(context.Context, *wardv1.GetPolicyRequest) (*wardv1.GetPolicyResponse, error) {
	return s.resp, nil
}

func TestInvalidPolicyKeepsOld(t *testing.T) {
	ctx := context.Background()
	baseline, err := os.ReadFile("../../policies/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good, err := policies.Parse("baseline.yaml", baseline)
	if err != nil {
		t.Fatal(err)
	}
	srv := &policyServer{resp: &wardv1.GetPolicyResponse{Changed: true, Name: good.Name, Version: int32(good.Version), Document: baseline}}
	id := startServer(t, srv)
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dir := t.TempDir()
	p := report.LoadPolicy(dir, nil)
	if changed, err := p.Refresh(ctx, cl, nil); !changed || err != nil {
		t.Fatalf("Refresh = %v, %v", changed, err)
	}

	srv.resp = &wardv1.GetPolicyResponse{Changed: true, Name: good.Name, Version: int32(good.Version + 1),
		Document: []byte("name: baseline\nversion: 99\nrules: [ {id: x, require: 'nope(' } ]\n")}
	if !p.Differs(good.Name, good.Version+1, "") {
		t.Fatal("a newer version does not differ")
	}
	if changed, err := p.Refresh(ctx, cl, nil); changed || err != nil {
		t.Fatalf("Refresh with an invalid document = %v, %v; want refused quietly", changed, err)
	}
	if cur := p.Current(); cur.Version != good.Version {
		t.Errorf("current policy v%d, want the old v%d kept", cur.Version, good.Version)
	}
	if p.Differs(good.Name, good.Version+1, "") {
		t.Error("the refused version is asked for again")
	}
	cached, _ := os.ReadFile(filepath.Join(dir, report.PolicyFile))
	if string(cached) != string(baseline) {
		t.Error("the cache was overwritten by the invalid document")
	}
}
