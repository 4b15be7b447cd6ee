package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
)

// bundle is a replayed machine: a captured Debian 12 sandbox.
func bundle(t *testing.T, name string) *source.Recorded {
	t.Helper()
	_, rec, err := source.OpenBundle(filepath.Join("..", "testdata", "bundles", name))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func fastCollector(t *testing.T) *servertest.Collector {
	return servertest.Start(t, func(cfg *server.Config) {
		cfg.RateLimit, cfg.RateBurst = rate.Inf, 1<<20
	})
}

func TestOnceReportsRealVerdicts(t *testing.T) {
	ctx := context.Background()
	c := fastCollector(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	s, err := New(Config{StateDir: dir, Source: bundle(t, "linux-plain-nft-empty"), AgentVersion: "1.0.0", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	out, err := s.Once(ctx)
	if err != nil {
		t.Fatalf("Once: %v", err)
	}
	if out.Sequence != 1 || out.Delivered != 1 || out.Waiting != 0 || out.DeliveryErr != nil {
		t.Fatalf("outcome %+v, want report 1 delivered", out)
	}
	reps := c.Reports(id.DeviceID)
	if len(reps) != 1 || reps[0].Sequence != 1 || reps[0].AgentVersion != "1.0.0" || reps[0].PolicyName != "baseline" {
		t.Fatalf("collector stored %+v", reps)
	}
	// The agent's verdicts and the collector's agree on a replayed
	// unencrypted disk with an empty firewall: both fail.
	var failing []string
	for _, r := range reps[0].Results {
		if r.Agent != r.Collector {
			t.Errorf("rule %s: agent %s, collector %s", r.RuleID, r.Agent, r.Collector)
		}
		if r.Agent == store.Fail {
			failing = append(failing, r.RuleID)
		}
	}
	if len(failing) == 0 {
		t.Fatalf("no failing rule on an unencrypted, unfiltered machine: %+v", reps[0].Results)
	}

	// A second round an hour later: deadlines still count from the first
	// failure, recorded in the state directory.
	clk.Add(time.Hour)
	s2, err := New(Config{StateDir: dir, Source: bundle(t, "linux-plain-nft-empty"), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if out, err := s2.Once(ctx); err != nil || out.Sequence != 2 {
		t.Fatalf("second Once = %+v, %v; want sequence 2", out, err)
	}
	since, err := s2.loadFailingSince()
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for _, rule := range failing {
		if !since[rule].Equal(first) {
			t.Errorf("failing_since[%s] = %v, want %v", rule, since[rule], first)
		}
	}
}

func TestNotEnrolled(t *testing.T) {
	_, err := New(Config{StateDir: t.TempDir(), Source: source.NewLive()})
	if !errors.Is(err, enroll.ErrNotEnrolled) {
		t.Fatalf("New on an empty state dir: %v, want ErrNotEnrolled", err)
	}
}

func TestOnceOfflineQueues(t *testing.T) {
	c := fastCollector(t)
	_, dir := reporttest.Enrolled(t, c, "staff")
	c.Stop()
	s, err := New(Config{StateDir: dir, Source: bundle(t, "linux-plain-nft-empty"), CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Once(context.Background())
	if err != nil || out.Sequence != 1 || out.Delivered != 0 || out.Waiting != 1 || out.DeliveryErr == nil {
		t.Fatalf("Once offline = %+v, %v; want report 1 queued", out, err)
	}
	// The embedded baseline was used before any fetch.
	r, err := s.ob.Read(1)
	if err != nil || r.PolicyName != "baseline" {
		t.Fatalf("queued report %v, %v", r, err)
	}
}

func TestNextFailingSince(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	prev := map[string]time.Time{"a": t0, "b": t0, "c": t0, "gone": t0}
	got := nextFailingSince(prev, []policies.Result{
		{RuleID: "a", Status: policies.StatusFail, FailingSince: &t0},
		{RuleID: "b", Status: policies.StatusPass},
		{RuleID: "c", Status: policies.StatusUnknown},
		{RuleID: "d", Status: policies.StatusFail, FailingSince: &t1},
	})
	want := map[string]time.Time{"a": t0, "c": t0, "d": t1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if !got[k].Equal(v) {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
}

func TestIntervalJitter(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.5, 0.999} {
		s := &Service{cfg: Config{Interval: time.Hour, Rand: func() float64 { return r }}}
		got := s.nextInterval()
		if got < 54*time.Minute || got > 66*time.Minute {
			t.Errorf("r=%v: interval %v outside 1h ±10%%", r, got)
		}
	}
	s := &Service{cfg: Config{Interval: time.Hour, Rand: func() float64 { return 0.5 }}}
	if got := s.nextInterval(); got != time.Hour {
		t.Errorf("r=0.5: %v, want 1h", got)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCollectorRestartsWhileReporting(t *testing.T) {
	c := fastCollector(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	s, err := New(Config{
		StateDir: dir, Source: bundle(t, "linux-plain-nft-empty"),
		Interval: 20 * time.Millisecond, CallTimeout: 2 * time.Second, RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := func() int { return len(c.Reports(id.DeviceID)) }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	for round := range 3 {
		before := stored()
		waitFor(t, "reports to arrive", func() bool { return stored() >= before+3 })
		c.Stop()
		waitFor(t, "reports to queue while the collector is down", func() bool { return s.ob.Len() >= 3 })
		c.Restart()
		t.Logf("round %d: restarted with %d reports queued", round, s.ob.Len())
	}
	before := stored()
	waitFor(t, "reports after the last restart", func() bool { return stored() >= before+3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Drain what the loop had not sent yet.
	if _, err := s.client.Deliver(context.Background(), s.ob, nil); err != nil {
		t.Fatalf("final delivery: %v", err)
	}
	last := s.ob.NextSequence() - 1
	var seqs []uint64
	for _, r := range c.Reports(id.DeviceID) {
		seqs = append(seqs, r.Sequence)
	}
	slices.Sort(seqs)
	if uint64(len(seqs)) != last || len(slices.Compact(slices.Clone(seqs))) != len(seqs) || seqs[0] != 1 || seqs[len(seqs)-1] != last {
		t.Fatalf("collector holds %d reports %v; want each of 1..%d exactly once", len(seqs), seqs, last)
	}
	q, _ := os.ReadDir(filepath.Join(dir, OutboxDir, "quarantine"))
	if len(q) != 0 {
		t.Errorf("%d reports quarantined", len(q))
	}
	t.Logf("%d reports, each stored once, across 3 collector restarts", last)
}

// A round stopped mid-way (the service stopping) queues nothing: the rules
// left would be UNKNOWN for a reason that says nothing about the laptop.
func TestStoppedRoundQueuesNothing(t *testing.T) {
	c := fastCollector(t)
	_, dir := reporttest.Enrolled(t, c, "staff")
	s, err := New(Config{StateDir: dir, Source: bundle(t, "linux-plain-nft-empty")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if seq, err := s.collect(ctx); err == nil || seq != 0 {
		t.Fatalf("collect with a stopped context: sequence %d, %v; want an error and nothing queued", seq, err)
	}
	if n := s.ob.Len(); n != 0 {
		t.Errorf("outbox holds %d reports, want 0", n)
	}
}
