package cli_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestExportAsOfUnchangedByPruning: reports a day apart over 30 days,
// 10 days' retention; export --as-of anywhere inside the window says the
// same before and after pruning, and the reports before it are gone.
func TestExportAsOfUnchangedByPruning(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now().UTC()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	c := servertest.Start(t, func(cfg *server.Config) { cfg.Now, cfg.Retention = clock, 10*24*time.Hour })
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := wardv1grpc.NewAgentServiceClient(c.Dial(&cert))
	start := clock()
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	for i := range 30 {
		set(start.Add(time.Duration(i)*24*time.Hour + time.Minute))
		encrypted := i/3%2 == 0
		facts := &wardv1.Facts{
			CollectedAt:    timestamppb.New(clock()),
			Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
			DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &encrypted}}},
		}
		if _, err := client.Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
			Sequence: uint64(i + 1), CollectedAt: timestamppb.New(clock()), PolicyName: "baseline", PolicyVersion: 1, Facts: facts}}); err != nil {
			t.Fatal(err)
		}
	}
	end := start.Add(30 * 24 * time.Hour)
	set(end)
	export := func(at time.Time) string {
		t.Helper()
		out, errs, code := runIn(t, "", "export", "--data", c.DataDir, "--format", "csv", "--as-of", at.Format(time.RFC3339Nano), "--now", end.Format(time.RFC3339Nano))
		if code != 0 {
			t.Fatalf("export --as-of %s: %s", at, errs)
		}
		return out
	}
	var probes []time.Time
	for at := end.Add(-10 * 24 * time.Hour); !at.After(end); at = at.Add(11 * time.Hour) {
		probes = append(probes, at)
	}
	want := map[time.Time]string{}
	for _, at := range probes {
		want[at] = export(at)
	}
	n, err := c.Server().Prune(ctx)
	if err != nil || n != 19 {
		t.Fatalf("pruned %d (%v), want 19", n, err)
	}
	if reps := c.Reports(id); len(reps) != 11 {
		t.Errorf("%d reports left, want 11", len(reps))
	}
	for _, at := range probes {
		if got := export(at); got != want[at] {
			t.Errorf("export --as-of %s after pruning:\n%s\nbefore:\n%s", at, got, want[at])
		}
	}
	if s := fmt.Sprint(want[probes[0]]); len(s) < 50 {
		t.Errorf("export at the window start is empty: %q", s)
	}
}
