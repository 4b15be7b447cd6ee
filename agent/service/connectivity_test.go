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

	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// fakeProber answers like a network whose up hosts answer.
type fakeProber struct {
	mu    sync.Mutex
	up    bool
	asked []string
}

func (p *fakeProber) Probe(_ context.Context, host string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, host)
	if p.up {
		return nil
	}
	return errors.New("dial tcp: i/o timeout")
}

// published keeps the reports the service published.
type published struct{ reports []*wardv1.Report }

func (p *published) Publish(_ *policies.Policy, _ []policies.Result, r, _ *wardv1.Report, _ []notify.Waiver) {
	p.reports = append(p.reports, r)
}

// TestReportCarriesConnectivity: each round probes the update source the
// device is configured with and records whether the round before
// reached the collector; the patch rule on connected grace carries its
// used time.
func TestReportCarriesConnectivity(t *testing.T) {
	ctx := context.Background()
	c := fastCollector(t)
	_, dir := reporttest.Enrolled(t, c, "staff")
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	src := bundle(t, "linux-debian12-sandbox")
	src.AddFile("/etc/apt/sources.list", []byte("deb http://deb.mirror.example.org/debian bookworm main\n"))
	prober := &fakeProber{up: true}
	pub := &published{}
	s, err := New(Config{StateDir: dir, Source: src, Prober: prober, Status: pub, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		if _, err := s.Once(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour)
	}
	if len(pub.reports) != 2 {
		t.Fatalf("%d reports published", len(pub.reports))
	}
	// Once fetched the policy first each time: the collector answered.
	for i, r := range pub.reports {
		conn := r.GetConnectivity()
		if conn.GetUpdateSource() != wardv1.Reach_REACH_REACHED || conn.GetUpdateSourceName() != "deb.mirror.example.org" ||
			conn.GetCollector() != wardv1.Reach_REACH_REACHED {
			t.Errorf("report %d: connectivity %v", i+1, conn)
		}
	}
	if !slices.Equal(prober.asked, []string{"deb.mirror.example.org", "deb.mirror.example.org"}) {
		t.Errorf("probed %q", prober.asked)
	}
	for _, rr := range pub.reports[1].GetResults() {
		if rr.GetRuleId() != "security-updates" {
			continue
		}
		if !rr.GetGraceConnected() {
			t.Errorf("security-updates: grace_connected unset: %v", rr)
		}
		// The sandbox has security updates pending: a FAIL, an hour of
		// connected time used after one online hour.
		if rr.GetStatus() != wardv1.ResultStatus_RESULT_STATUS_FAIL || rr.GetGraceUsed().AsDuration() != time.Hour || rr.GetDeadlinePaused() {
			t.Errorf("security-updates: %v grace_used %v paused %v; want FAIL, 1h, not paused", rr.GetStatus(), rr.GetGraceUsed().AsDuration(), rr.GetDeadlinePaused())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, LedgerFile)); err != nil {
		t.Errorf("no connectivity record: %v", err)
	}

	// Offline: the update source does not answer and is reported so.
	prober.up = false
	if _, err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pub.reports[2].GetConnectivity().GetUpdateSource(); got != wardv1.Reach_REACH_UNREACHABLE {
		t.Errorf("offline: update source %v", got)
	}
}

// TestNoProbe: a discreet policy or the agent settings turn the probe off:
// the update source is NOT_PROBED and nothing is dialled.
func TestNoProbe(t *testing.T) {
	ctx := context.Background()
	c := fastCollector(t)
	_, dir := reporttest.Enrolled(t, c, "staff")
	src := bundle(t, "linux-debian12-sandbox")
	src.AddFile("/etc/apt/sources.list", []byte("deb http://deb.mirror.example.org/debian bookworm main\n"))
	prober := &fakeProber{up: true}
	s, err := New(Config{StateDir: dir, Source: src, Prober: prober})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.probe(ctx, &policies.Policy{Discreet: true}); got.GetUpdateSource() != wardv1.Reach_REACH_NOT_PROBED || got.GetUpdateSourceName() != "" {
		t.Errorf("discreet: %v", got)
	}
	if got := s.probe(ctx, &policies.Policy{}); got.GetUpdateSource() != wardv1.Reach_REACH_REACHED {
		t.Errorf("not discreet: %v", got)
	}
	if len(prober.asked) != 1 {
		t.Errorf("probed %q; want once, when not discreet", prober.asked)
	}
	s.Close()

	if err := os.WriteFile(filepath.Join(dir, SettingsFile), []byte(`{"update_probe": false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = New(Config{StateDir: dir, Source: src, Prober: prober})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.probe(ctx, &policies.Policy{}); got.GetUpdateSource() != wardv1.Reach_REACH_NOT_PROBED {
		t.Errorf("probe off in %s: %v", SettingsFile, got)
	}
	if len(prober.asked) != 1 {
		t.Errorf("probed %q with the probe off", prober.asked)
	}
}

// TestOfflineRoundsPauseTheDeadline: with no update-source probe (a
// replayed bundle is no Prober), the patch rule's connected time follows
// the collector: rounds that cannot reach it pause the deadline, across
// restarts of the agent (each round a new Service, as the daemon's child
// rounds are), and the first round that reaches it again counts the hour.
func TestOfflineRoundsPauseTheDeadline(t *testing.T) {
	ctx := context.Background()
	c := fastCollector(t)
	_, dir := reporttest.Enrolled(t, c, "staff")
	c.Stop()
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	round := func() *wardv1.RuleResult {
		t.Helper()
		pub := &published{}
		s, err := New(Config{StateDir: dir, Source: bundle(t, "linux-debian12-sandbox"), Status: pub, Now: clk.Now, CallTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Once(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour)
		if pub.reports[0].GetConnectivity().GetUpdateSource() != wardv1.Reach_REACH_NOT_PROBED {
			t.Errorf("a bundle was probed: %v", pub.reports[0].GetConnectivity())
		}
		for _, rr := range pub.reports[0].GetResults() {
			if rr.GetRuleId() == "security-updates" {
				return rr
			}
		}
		t.Fatal("no security-updates result")
		return nil
	}
	for i := range 2 {
		rr := round()
		if rr.GetStatus() != wardv1.ResultStatus_RESULT_STATUS_FAIL || !rr.GetDeadlinePaused() || rr.GetGraceUsed().AsDuration() != 0 {
			t.Errorf("offline round %d: %v paused %v used %v; want FAIL, paused, nothing used", i+1, rr.GetStatus(), rr.GetDeadlinePaused(), rr.GetGraceUsed().AsDuration())
		}
	}
	c.Restart()
	rr := round()
	if rr.GetDeadlinePaused() || rr.GetGraceUsed().AsDuration() != time.Hour {
		t.Errorf("online again: paused %v used %v; want running, 1h used", rr.GetDeadlinePaused(), rr.GetGraceUsed().AsDuration())
	}
	// 14d connected grace (baseline), one hour used: the deadline is the
	// round's time plus the rest.
	if got, want := rr.GetDeadline().AsTime(), clk.Now().Add(-time.Hour).Add(14*24*time.Hour-time.Hour); !got.Equal(want) {
		t.Errorf("deadline %v; want %v", got, want)
	}
}
