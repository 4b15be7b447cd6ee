package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// The collected time is the evidence time (docs/exports.md, "Time"): a
// device offline for ten days collects a FAIL report each day and
// delivers them all on day 11. The state as of any of those days is the
// FAIL collected then, with its late receipt alongside, never the PASS
// received before the device went offline.

// offlineDays stores, for a new device dev, a PASS report collected and
// received at start (day 0), then FAIL reports 2 to 11 collected on days
// 1 to 10 and all received on day 11 (in order, as an outbox delivers
// them), and returns day 11.
func offlineDays(t *testing.T, s store.Store, secret, dev string, start time.Time) time.Time {
	t.Helper()
	ctx := context.Background()
	mkToken(t, s, "tok_"+dev, secret, "staff", 1, time.Hour)
	mustEnroll(t, s, secret, dev, "m-"+dev)
	day := func(n int) time.Time { return start.Add(time.Duration(n) * 24 * time.Hour) }
	first := report(dev, 1, start, store.Pass, store.Pass)
	first.ObservedAt = first.CollectedAt
	if _, err := s.SaveReport(ctx, first); err != nil {
		t.Fatal(err)
	}
	back := day(11)
	for n := 1; n <= 10; n++ {
		r := report(dev, uint64(n+1), back, store.Pass, store.Fail)
		r.CollectedAt, r.ObservedAt = day(n), day(n)
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return back
}

func testLateReportsAsOf(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	start := t0.Add(time.Hour)
	back := offlineDays(t, s, "late", "dev_late", start)
	day := func(n int) time.Time { return start.Add(time.Duration(n) * 24 * time.Hour) }
	rowsAt := func(at time.Time) map[string]store.StateRow {
		rows := map[string]store.StateRow{}
		if err := s.StateAsOf(ctx, at, func(r store.StateRow) error {
			if r.DeviceID == "dev_late" {
				rows[r.RuleID] = r
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	// Day 5, before the reports arrived: the FAIL collected on day 5.
	r := rowsAt(day(5).Add(time.Hour))["rule-1"]
	if r.Status != store.Fail || !r.ReportedAt.Equal(day(5)) || !r.ReceivedAt.Equal(back) {
		t.Errorf("as of day 5: %s reported %v received %v, want FAIL collected %v, received %v (day 11)", r.Status, r.ReportedAt, r.ReceivedAt, day(5), back)
	}
	if r.Since == nil || !r.Since.Equal(day(1)) {
		t.Errorf("as of day 5: failing since %v, want day 1 (%v), when the first FAIL was collected", r.Since, day(1))
	}
	// Day 0, before the device went offline: its PASS.
	if r := rowsAt(start.Add(time.Hour))["rule-1"]; r.Status != store.Pass || !r.ReceivedAt.Equal(start) {
		t.Errorf("as of day 0: %s received %v, want PASS received %v", r.Status, r.ReceivedAt, start)
	}
	// Between day 10 and day 11: still the last FAIL collected.
	if r := rowsAt(back.Add(-time.Hour))["rule-1"]; r.Status != store.Fail || !r.ReportedAt.Equal(day(10)) {
		t.Errorf("as of day 10: %s reported %v, want FAIL collected %v", r.Status, r.ReportedAt, day(10))
	}
	// The history: the change to FAIL at its collected time, received on day 11.
	trans, err := s.Transitions(ctx, "dev_late")
	if err != nil {
		t.Fatal(err)
	}
	var fail *store.Transition
	for i, tr := range trans {
		if tr.RuleID == "rule-1" && tr.To == store.Fail {
			fail = &trans[i]
		}
	}
	switch {
	case fail == nil:
		t.Fatalf("no transition of rule-1 to FAIL in %+v", trans)
	case !fail.At.Equal(day(1)) || fail.Sequence != 2 || fail.ReceivedAt == nil || !fail.ReceivedAt.Equal(back):
		t.Errorf("transition to FAIL = %+v (received %v), want at day 1 (%v), report 2, received day 11 (%v)", *fail, fail.ReceivedAt, day(1), back)
	case store.ReceivedLate(*fail) == nil:
		t.Errorf("ReceivedLate(%+v) = nil, want day 11", *fail)
	}
	if len(trans) > 0 && trans[0].ReceivedAt != nil && store.ReceivedLate(trans[0]) != nil {
		t.Errorf("the first verdict, received a second after it was collected, reads as late: %+v", trans[0])
	}
	// The trend counts the device failing from day 1.
	tr, err := s.Trend(ctx, back, 12)
	if err != nil || len(tr) != 12 {
		t.Fatalf("Trend = %+v, %v", tr, err)
	}
	if p := tr[0]; p.Compliant != 1 || p.Failing != 0 {
		t.Errorf("trend day 0 = %+v, want compliant", p)
	}
	if p := tr[5]; p.Compliant != 0 || p.Failing != 1 {
		t.Errorf("trend day 5 = %+v, want failing", p)
	}
}

// testPruneByObserved prunes the offline device's history at day 5: the
// reports collected before then go, however late they were received,
// except the newest of them (the state as of day 5 until the next
// report), and the state as of every later time is as before.
func testPruneByObserved(t *testing.T, s store.Dashboard) {
	p, ok := s.(store.Pruner)
	if !ok {
		t.Skip("the store does not prune")
	}
	ctx := context.Background()
	start := t0.Add(time.Hour)
	back := offlineDays(t, s, "prl", "dev_prl", start)
	cut := start.Add(5*24*time.Hour + time.Hour) // after report 6, collected on day 5
	var probes []time.Time
	for at := cut; !at.After(back.Add(24 * time.Hour)); at = at.Add(5 * time.Hour) {
		probes = append(probes, at)
	}
	before := map[time.Time]string{}
	for _, at := range probes {
		before[at] = asOf(t, s, "dev_prl", at)
	}
	n, err := p.PruneReports(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("pruned %d reports, want 5 (1 to 5, collected before the window; 6 is the newest collected before it)", n)
	}
	reps, err := s.Reports(ctx, "dev_prl", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) == 0 || reps[len(reps)-1].Sequence != 6 {
		t.Fatalf("%d reports left, want 6 to 11", len(reps))
	}
	for _, at := range probes {
		if got := asOf(t, s, "dev_prl", at); got != before[at] {
			t.Errorf("as of %s: %q after pruning, %q before", at, got, before[at])
		}
	}
	if got := asOf(t, s, "dev_prl", cut); got != "rule-0=PASS@"+start.Add(5*24*time.Hour).Format(time.RFC3339)+" rule-1=FAIL@"+start.Add(5*24*time.Hour).Format(time.RFC3339)+" " {
		t.Errorf("as of the window's start: %q, want report 6's FAIL", got)
	}
}
