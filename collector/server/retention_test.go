package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// pad appends n bytes of an unknown length-delimited field to m.
func pad(t *testing.T, m proto.Message, n int) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 9999, protowire.BytesType)
	b = protowire.AppendBytes(b, make([]byte, n))
	proto.Reset(m)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	if len(m.ProtoReflect().GetUnknown()) < n {
		t.Fatal("padding not kept as an unknown field")
	}
}

func TestUnknownFieldsDiscardedBeforeStoring(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	req := newReport(1, simpleFacts())
	// About 4 MiB in all, at three depths, within the 4 MiB limit.
	pad(t, req.Report.Facts.Os, 1<<20)
	pad(t, req.Report.Facts, 1<<20)
	pad(t, req.Report, 2<<20-64<<10)
	if n := proto.Size(req); n < 4<<20-128<<10 || n > 4<<20 {
		t.Fatalf("request is %d bytes", n)
	}
	clean := proto.Clone(req).(*wardv1.ReportRequest)
	clean.Report.Facts.Os.ProtoReflect().SetUnknown(nil)
	clean.Report.Facts.ProtoReflect().SetUnknown(nil)
	clean.Report.ProtoReflect().SetUnknown(nil)
	if _, err := agentClient(c, &cert).Report(ctx, req); err != nil {
		t.Fatal(err)
	}
	reps := c.Reports(id)
	if len(reps) != 1 {
		t.Fatalf("%d reports", len(reps))
	}
	want, _ := proto.MarshalOptions{Deterministic: true}.Marshal(clean.Report.Facts)
	if got := len(reps[0].Facts); got != len(want) || got > 4<<10 {
		t.Fatalf("stored facts are %d bytes, want %d (the padding discarded)", got, len(want))
	}
	t.Logf("request %d bytes, stored facts %d bytes", proto.Size(req), len(reps[0].Facts))
	// The same report without the padding is the same report.
	if _, err := agentClient(c, &cert).Report(ctx, clean); err != nil {
		t.Fatalf("the unpadded redelivery: %v", err)
	}
	if n := len(c.Reports(id)); n != 1 {
		t.Fatalf("%d reports after the redelivery", n)
	}
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func stateAsOf(t *testing.T, st store.Store, at time.Time) string {
	t.Helper()
	var b strings.Builder
	if err := st.(store.Dashboard).StateAsOf(context.Background(), at, func(r store.StateRow) error {
		fmt.Fprintf(&b, "%s %s %s %s %s\n", r.DeviceID, r.RuleID, r.Status, r.Observed, r.ReportedAt.UTC().Format(time.RFC3339Nano))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRetentionPrunesOutsideTheWindow(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Now().UTC()}
	const retention = 10 * 24 * time.Hour
	c := servertest.Start(t, func(cfg *server.Config) { cfg.Now, cfg.Retention = clk.Now, retention })
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	start := clk.Now()
	// 30 reports a day apart; the OS version changes every 4 days.
	for i := range 30 {
		clk.Set(start.Add(time.Duration(i)*24*time.Hour + time.Minute))
		f := simpleFacts()
		f.CollectedAt = timestamppb.New(clk.Now())
		f.Os.Version = fmt.Sprint(10 + i/4)
		req := newReport(uint64(i+1), f)
		req.Report.CollectedAt = timestamppb.New(clk.Now())
		if _, err := client.Report(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	// Unchanged reports over gRPC are heartbeats: 3 of every 4.
	db, err := sql.Open("sqlite", filepath.Join(c.DataDir, server.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var heartbeats, bytes int
	if err := db.QueryRow(`SELECT count(facts_epoch), sum(length(facts) + length(results)) FROM reports`).Scan(&heartbeats, &bytes); err != nil {
		t.Fatal(err)
	}
	t.Logf("30 reports: %d heartbeats, %d bytes of facts and results", heartbeats, bytes)
	if heartbeats != 22 {
		t.Errorf("%d heartbeats, want 22", heartbeats)
	}
	clk.Set(start.Add(30 * 24 * time.Hour))
	windowStart := clk.Now().Add(-retention)
	var probes []time.Time
	for at := windowStart; !at.After(clk.Now()); at = at.Add(5 * time.Hour) {
		probes = append(probes, at)
	}
	want := map[time.Time]string{}
	for _, at := range probes {
		want[at] = stateAsOf(t, c.Store(), at)
	}
	trBefore, err := c.Store().Transitions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Server().Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Reports 1..20 were received before the window start (day 20);
	// 20 is the newest of those and stays for the state at its start.
	if n != 19 {
		t.Errorf("pruned %d reports, want 19", n)
	}
	reps := c.Reports(id)
	if len(reps) != 11 || reps[len(reps)-1].Sequence != 20 || reps[0].Sequence != 30 {
		t.Fatalf("%d reports left, %d to %d", len(reps), reps[len(reps)-1].Sequence, reps[0].Sequence)
	}
	for _, r := range reps {
		f := &wardv1.Facts{}
		if err := proto.Unmarshal(r.Facts, f); err != nil || f.Os.GetVersion() != fmt.Sprint(10+(r.Sequence-1)/4) || !f.CollectedAt.AsTime().Equal(r.CollectedAt) {
			t.Errorf("report %d reads OS version %q collected %s, want at %s (%v)", r.Sequence, f.Os.GetVersion(), f.CollectedAt.AsTime(), r.CollectedAt, err)
		}
	}
	for _, at := range probes {
		if got := stateAsOf(t, c.Store(), at); got != want[at] || got == "" {
			t.Errorf("as of %s after pruning:\n%s\nbefore:\n%s", at, got, want[at])
		}
	}
	trAfter, err := c.Store().Transitions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(trAfter) != len(trBefore) {
		t.Errorf("%d transitions after pruning, %d before", len(trAfter), len(trBefore))
	}
	// A restart prunes at start too: a year on, only the newest remains.
	clk.Set(start.Add(400 * 24 * time.Hour))
	c.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Reports(id)) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if reps := c.Reports(id); len(reps) != 1 || reps[0].Sequence != 30 {
		t.Errorf("after a restart a year on: %d reports", len(reps))
	}
}
