package service

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// timelinePolicy has a patch rule and a firewall rule on connected grace
// and one on wall-clock grace; all fail while fail is true.
const timelinePolicy = `name: timeline
version: 1
description: Connected grace over a timeline.
params: { fail: true }
rules:
  - id: updates
    title: { en: Updates }
    family: patch_level
    platforms: [linux]
    require: '!params.fail'
    expected: { en: none pending }
    severity: high
    grace: 3d connected
    remediation: { en: { linux: update } }
  - id: fw
    title: { en: Firewall }
    family: firewall
    platforms: [linux]
    require: '!params.fail'
    expected: { en: on }
    severity: high
    grace: 2h connected
    remediation: { en: { linux: turn it on } }
  - id: wall
    title: { en: Wall clock }
    family: patch_level
    platforms: [linux]
    require: '!params.fail'
    expected: { en: done }
    severity: low
    grace: 3d
    remediation: { en: { linux: do it } }
`

func timelineFacts() *wardv1.Facts {
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	return &wardv1.Facts{
		Os:         &wardv1.OSFacts{Collection: ok, Platform: "linux"},
		PatchLevel: &wardv1.PatchFacts{Collection: ok},
		Firewall:   &wardv1.FirewallFacts{Collection: ok},
	}
}

// agentRounds drives the ledger and the engine the way Service.collect
// does, round by round, with a fake clock and injected reachability,
// persisting both records in dir.
type agentRounds struct {
	t      *testing.T
	dir    string
	pol    *policies.Policy
	ledger *Ledger
	since  map[string]time.Time
	log    *bytes.Buffer
}

const interval = time.Hour

func newAgentRounds(t *testing.T, fail bool) *agentRounds {
	t.Helper()
	pol, err := policies.Parse("timeline.yaml", []byte(timelinePolicy))
	if err != nil {
		t.Fatal(err)
	}
	pol.Params["fail"] = fail
	a := &agentRounds{t: t, dir: t.TempDir(), pol: pol, since: map[string]time.Time{}, log: &bytes.Buffer{}}
	a.restart()
	return a
}

// restart is the agent starting again: the ledger is read back from disk.
func (a *agentRounds) restart() {
	a.ledger = LoadLedger(filepath.Join(a.dir, LedgerFile), slog.New(slog.NewTextHandler(a.log, nil)))
}

// delivered is a delivery attempt at time at.
func (a *agentRounds) delivered(at time.Time, reached bool) {
	a.ledger.Delivered(at, reached)
	if err := a.ledger.Save(filepath.Join(a.dir, LedgerFile)); err != nil {
		a.t.Fatal(err)
	}
}

// round runs a collecting round at now whose update-source probe gave
// update, and returns the results by rule and the round's connectivity.
func (a *agentRounds) round(now time.Time, update wardv1.Reach) (map[string]policies.Result, *wardv1.Connectivity) {
	conn := &wardv1.Connectivity{UpdateSource: update, Collector: a.ledger.CollectorReach()}
	grace := a.ledger.Begin(a.pol, a.since, now, 2*interval, conn)
	results := policies.Evaluate(context.Background(), a.pol, timelineFacts(), policies.Options{Now: now,
		FailingSince: a.since, GraceUsed: grace.Used, Paused: grace.Paused})
	a.ledger.End(results, grace)
	if err := a.ledger.Save(filepath.Join(a.dir, LedgerFile)); err != nil {
		a.t.Fatal(err)
	}
	a.since = nextFailingSince(a.since, results)
	out := map[string]policies.Result{}
	for _, r := range results {
		out[r.RuleID] = r
	}
	return out, conn
}

// want is what one rule's result must say.
type want struct {
	used        time.Duration
	paused      bool
	pausedSince time.Time // zero: none
	overdue     bool
}

func (a *agentRounds) check(step string, now time.Time, got policies.Result, grace time.Duration, w want) {
	a.t.Helper()
	if got.Status != policies.StatusFail || !got.GraceConnected || got.Deadline == nil {
		a.t.Fatalf("%s: %s: %+v; want a connected-grace FAIL", step, got.RuleID, got)
	}
	wantDeadline := now.Add(grace - w.used)
	if got.GraceUsed != w.used || !got.Deadline.Equal(wantDeadline) || got.DeadlinePaused != w.paused || got.Overdue != w.overdue {
		a.t.Errorf("%s: %s: used %v deadline %v paused %v overdue %v; want %v, %v, %v, %v", step, got.RuleID,
			got.GraceUsed, got.Deadline.Format(time.RFC3339), got.DeadlinePaused, got.Overdue,
			w.used, wantDeadline.Format(time.RFC3339), w.paused, w.overdue)
	}
	switch {
	case w.pausedSince.IsZero() && got.PausedSince != nil:
		a.t.Errorf("%s: %s: paused since %v; want none", step, got.RuleID, got.PausedSince)
	case !w.pausedSince.IsZero() && (got.PausedSince == nil || !got.PausedSince.Equal(w.pausedSince)):
		a.t.Errorf("%s: %s: paused since %v; want %v", step, got.RuleID, got.PausedSince, w.pausedSince)
	}
}

// TestConnectedGraceTimeline scripts online and offline rounds: the time
// between two rounds counts when the later one found the rule's endpoint
// reached (the update source for the patch rule, the collector for the
// firewall rule), at most twice the interval; offline rounds pause the
// deadline; the record survives a restart, a corrupt one restarts the
// count from zero with a log line, and the grace once used up is overdue.
func TestConnectedGraceTimeline(t *testing.T) {
	const (
		up   = wardv1.Reach_REACH_REACHED
		down = wardv1.Reach_REACH_UNREACHABLE
	)
	day := 24 * time.Hour
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	a := newAgentRounds(t, true)

	// 08:00 first round: nothing counted yet; no delivery attempt yet, so
	// the collector is not known either way and the firewall rule is not
	// paused.
	res, conn := a.round(t0, up)
	if conn.GetCollector() != wardv1.Reach_REACH_NOT_PROBED {
		t.Errorf("first round: collector %v; want NOT_PROBED", conn.GetCollector())
	}
	a.check("08:00", t0, res["updates"], 3*day, want{})
	a.check("08:00", t0, res["fw"], 2*time.Hour, want{})
	if w := res["wall"]; w.GraceConnected || !w.Deadline.Equal(t0.Add(3*day)) {
		t.Errorf("wall-clock rule: %+v", w)
	}
	a.delivered(t0.Add(time.Minute), true)

	// 09:00 online: an hour counts for both.
	t1 := t0.Add(time.Hour)
	res, conn = a.round(t1, up)
	if conn.GetCollector() != up {
		t.Errorf("09:00: collector %v; want REACHED", conn.GetCollector())
	}
	a.check("09:00", t1, res["updates"], 3*day, want{used: time.Hour})
	a.check("09:00", t1, res["fw"], 2*time.Hour, want{used: time.Hour})
	a.delivered(t1.Add(time.Minute), false)

	// 10:00 offline: nothing counts, both deadlines paused since each
	// endpoint was last reached.
	t2 := t1.Add(time.Hour)
	res, _ = a.round(t2, down)
	a.check("10:00", t2, res["updates"], 3*day, want{used: time.Hour, paused: true, pausedSince: t1})
	a.check("10:00", t2, res["fw"], 2*time.Hour, want{used: time.Hour, paused: true, pausedSince: t0.Add(time.Minute)})
	a.delivered(t2.Add(time.Minute), false)

	// Ten days offline and asleep, then the agent restarts (the record is
	// read back from disk) and a round finds the update source but not
	// the collector: the patch rule gains the cap, two hours, not ten days.
	t3 := t2.Add(10 * day)
	a.restart()
	res, _ = a.round(t3, up)
	a.check("restart", t3, res["updates"], 3*day, want{used: 3 * time.Hour})
	a.check("restart", t3, res["fw"], 2*time.Hour, want{used: time.Hour, paused: true, pausedSince: t0.Add(time.Minute)})
	if strings.Contains(a.log.String(), "unreadable") {
		t.Errorf("a good record was logged as unreadable: %s", a.log)
	}
	a.delivered(t3.Add(time.Minute), true)

	// Online again: the firewall rule uses up its two hours: overdue.
	t4 := t3.Add(time.Hour)
	res, _ = a.round(t4, up)
	a.check("overdue", t4, res["updates"], 3*day, want{used: 4 * time.Hour})
	a.check("overdue", t4, res["fw"], 2*time.Hour, want{used: 2 * time.Hour, overdue: true})
	// An offline round keeps it overdue (paused, but the grace is used up).
	a.delivered(t4.Add(time.Minute), false)
	t5 := t4.Add(time.Hour)
	res, _ = a.round(t5, down)
	a.check("overdue offline", t5, res["fw"], 2*time.Hour, want{used: 2 * time.Hour, paused: true, pausedSince: t3.Add(time.Minute), overdue: true})
	a.check("overdue offline", t5, res["updates"], 3*day, want{used: 4 * time.Hour, paused: true, pausedSince: t4})

	// A corrupt record: a log line, the count restarts from zero (not a
	// crash, and not a pass: the rule still fails, failing since t0).
	if err := os.WriteFile(filepath.Join(a.dir, LedgerFile), []byte(`{"format":1,"rules":{"updates":`), 0o600); err != nil {
		t.Fatal(err)
	}
	a.restart()
	if !strings.Contains(a.log.String(), "connectivity record unreadable") {
		t.Errorf("no log line for the corrupt record: %q", a.log)
	}
	t6 := t5.Add(time.Hour)
	res, _ = a.round(t6, up)
	a.check("corrupt", t6, res["updates"], 3*day, want{})
	if !res["updates"].FailingSince.Equal(t0) {
		t.Errorf("corrupt: failing since %v; want %v", res["updates"].FailingSince, t0)
	}
	t7 := t6.Add(90 * time.Minute)
	res, _ = a.round(t7, up)
	a.check("after corrupt", t7, res["updates"], 3*day, want{used: 90 * time.Minute})

	// The rule passes: forgotten. Failing again starts from zero.
	a.pol.Params["fail"] = false
	t8 := t7.Add(time.Hour)
	res, _ = a.round(t8, up)
	if res["updates"].Status != policies.StatusPass || len(a.ledger.Rules) != 0 {
		t.Errorf("pass: %+v, ledger keeps %v", res["updates"], a.ledger.Rules)
	}
	a.pol.Params["fail"] = true
	t9 := t8.Add(time.Hour)
	res, _ = a.round(t9, up)
	a.check("fails again", t9, res["updates"], 3*day, want{})
	t10 := t9.Add(time.Hour)
	res, _ = a.round(t10, up)
	a.check("fails again, an hour on", t10, res["updates"], 3*day, want{used: time.Hour})
}

// TestConnectedGraceUsedUp: 72 connected hours, in hourly rounds, use up
// a 3-day connected grace, however many offline days lie between them.
func TestConnectedGraceUsedUp(t *testing.T) {
	a := newAgentRounds(t, true)
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	a.round(now, wardv1.Reach_REACH_REACHED)
	for h := 1; h <= 73; h++ {
		now = now.Add(time.Hour)
		if h%10 == 0 {
			// A day offline now and then: it does not count.
			now = now.Add(24 * time.Hour)
			a.round(now, wardv1.Reach_REACH_UNREACHABLE)
			now = now.Add(time.Hour)
		}
		got := a.mustRound(now)["updates"]
		if used := time.Duration(h) * time.Hour; got.GraceUsed != used || got.Overdue != (h >= 72) {
			t.Fatalf("hour %d: used %v overdue %v; want %v, %v", h, got.GraceUsed, got.Overdue, used, h >= 72)
		}
	}
}

func (a *agentRounds) mustRound(now time.Time) map[string]policies.Result {
	res, _ := a.round(now, wardv1.Reach_REACH_REACHED)
	return res
}
