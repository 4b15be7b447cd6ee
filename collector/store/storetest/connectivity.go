package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunConnectivityConformance runs the suite for connected-grace
// deadlines (docs/connectivity.md): the agent's accounting kept per rule
// state, paused states left out of PastDeadline and listed apart, and
// each device's connectivity.
func RunConnectivityConformance(t *testing.T, newStore func() store.Dashboard) {
	s := newStore()
	t.Cleanup(func() { s.Close() })
	cs, ok := s.(store.Connectivities)
	if !ok {
		t.Fatalf("%T does not implement store.Connectivities", s)
	}
	testConnectedDeadlines(t, s, cs)
}

// connReport is a report of rule-0 failing on dev, observed at at, with
// the agent's connected-grace accounting (connected false: a plain
// grace) and the round's connectivity (nil: none sent).
func connReport(dev string, seq uint64, at time.Time, connected bool, used time.Duration, paused bool, c *store.Connectivity) store.Report {
	r := store.Report{DeviceID: dev, Sequence: seq, ReceivedAt: at, CollectedAt: at, ObservedAt: at, AgentVersion: "1.0",
		PolicyName: "baseline", PolicyVersion: 1, Facts: []byte{0x0a, 0x00}, Connectivity: c}
	r.Results = []store.RuleResult{{RuleID: "rule-0", Title: "Patches", Family: "patch", Severity: "high", Collector: store.Fail, Agent: store.Fail,
		Observed: "o", Expected: "e", GraceConnected: connected, GraceUsed: used, DeadlinePaused: paused}}
	return r
}

func testConnectedDeadlines(t *testing.T, s store.Dashboard, cs store.Connectivities) {
	ctx := context.Background()
	const grace = 72 * time.Hour
	rules := []store.DeadlineRule{{Group: "field", RuleID: "rule-0", Grace: grace}}
	mkToken(t, s, "tk-field", "secret-field", "field", 10, 24*time.Hour)
	for _, id := range []string{"c-overdue", "c-paused", "c-plain", "c-revoked", "c-running"} {
		mustEnroll(t, s, "secret-field", id, "")
	}
	start := t0.Add(time.Hour)
	online := &store.Connectivity{Collector: store.Reached, UpdateSource: store.Reached, UpdateSourceName: "mirror.example.org"}
	offline := &store.Connectivity{Collector: store.Unreachable, UpdateSource: store.Unreachable, UpdateSourceName: "mirror.example.org"}
	at := start.Add(100 * time.Hour)
	for _, r := range []store.Report{
		connReport("c-overdue", 1, start, true, 0, false, online),
		connReport("c-paused", 1, start, true, 0, false, online),
		connReport("c-plain", 1, start, false, 0, false, nil),
		connReport("c-revoked", 1, start, true, 0, false, online),
		connReport("c-running", 1, start, true, 0, false, online),
		// 100 hours on: c-overdue has used 75 of its 72 connected
		// hours; c-paused 80, but its round found no connection;
		// c-running 50; c-plain's grace is plain.
		connReport("c-overdue", 2, at, true, 75*time.Hour, false, online),
		connReport("c-paused", 2, at, true, 80*time.Hour, true, offline),
		connReport("c-plain", 2, at, false, 0, false, nil),
		connReport("c-revoked", 2, at, true, 80*time.Hour, true, offline),
		connReport("c-running", 2, at, true, 50*time.Hour, false, online),
	} {
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatalf("SaveReport(%s, %d): %v", r.DeviceID, r.Sequence, err)
		}
	}
	if err := s.RevokeDevice(ctx, "c-revoked", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	// The agent's accounting is kept, and the deadline follows it.
	sts, err := s.RuleStates(ctx, "c-running")
	if err != nil || len(sts) != 1 {
		t.Fatalf("RuleStates(c-running) = %+v, %v", sts, err)
	}
	st := sts[0]
	if !st.GraceConnected || st.GraceUsed != 50*time.Hour || st.DeadlinePaused || !st.UpdatedAt.Equal(at) || st.FailingSince == nil || !st.FailingSince.Equal(start) {
		t.Fatalf("RuleStates(c-running) = %+v", st)
	}
	if d, paused := st.Deadline(grace); !d.Equal(at.Add(22*time.Hour)) || paused {
		t.Fatalf("c-running Deadline = %v, %v; want %v, false", d, paused, at.Add(22*time.Hour))
	}
	if st.Overdue(grace, at.Add(22*time.Hour-time.Second)) || !st.Overdue(grace, at.Add(22*time.Hour)) {
		t.Fatal("c-running must be overdue from its connected deadline on, not before")
	}
	sts, err = s.RuleStates(ctx, "c-paused")
	if err != nil || len(sts) != 1 || !sts[0].DeadlinePaused || sts[0].GraceUsed != 80*time.Hour || sts[0].Overdue(grace, at.Add(1000*time.Hour)) {
		t.Fatalf("RuleStates(c-paused) = %+v, %v (paused: never overdue)", sts, err)
	}

	now := at.Add(time.Hour)
	checkOverdue := func(when string, now time.Time, limit int, wantTotal int, want ...store.Overdue) {
		t.Helper()
		od, total, err := s.PastDeadline(ctx, rules, now, limit)
		if err != nil || total != wantTotal || len(od) != len(want) {
			t.Fatalf("%s: PastDeadline = %+v, %d, %v; want %d rows of %d", when, od, total, err, len(want), wantTotal)
		}
		for i, w := range want {
			g := od[i]
			if g.DeviceID != w.DeviceID || g.Hostname != "h-"+w.DeviceID || g.RuleID != "rule-0" || g.Title != "Patches" ||
				!g.FailingSince.Equal(w.FailingSince) || !g.Deadline.Equal(w.Deadline) {
				t.Fatalf("%s: PastDeadline[%d] = %+v, want %s since %v due %v", when, i, g, w.DeviceID, w.FailingSince, w.Deadline)
			}
		}
	}
	// c-plain is due 72 h after it began failing; c-overdue 3 h before
	// its report (75 of 72 connected hours used); c-running in 22 h;
	// c-paused is paused, c-revoked revoked.
	overdue := store.Overdue{DeviceID: "c-overdue", FailingSince: start, Deadline: at.Add(-3 * time.Hour)}
	plain := store.Overdue{DeviceID: "c-plain", FailingSince: start, Deadline: start.Add(grace)}
	checkOverdue("paused", now, 10, 2, overdue, plain)
	checkOverdue("paused, limit 1", now, 1, 2, overdue)
	checkOverdue("before c-running's deadline", at.Add(22*time.Hour-time.Second), 10, 2, overdue, plain)
	checkOverdue("at c-running's deadline", at.Add(22*time.Hour), 10, 3, overdue, plain,
		store.Overdue{DeviceID: "c-running", FailingSince: start, Deadline: at.Add(22 * time.Hour)})

	// The overview's failing-now table counts and dates them alike.
	fp, err := s.FailingNow(ctx, store.FailingQuery{Rules: rules, Now: now})
	if err != nil || fp.Total != 4 || fp.Overdue != 2 || len(fp.Rows) != 4 {
		t.Fatalf("FailingNow = total %d overdue %d rows %+v, %v; want 4 failing, 2 overdue (c-paused is paused)", fp.Total, fp.Overdue, fp.Rows, err)
	}
	want := map[string]struct {
		due             time.Time
		paused, overdue bool
	}{
		"c-overdue": {at.Add(-3 * time.Hour), false, true},
		"c-plain":   {start.Add(grace), false, true},
		"c-paused":  {at.Add(-8 * time.Hour), true, false},
		"c-running": {at.Add(22 * time.Hour), false, false},
	}
	for _, f := range fp.Rows {
		w, ok := want[f.DeviceID]
		if !ok || f.Deadline == nil || !f.Deadline.Equal(w.due) || f.Paused != w.paused || f.Overdue(now) != w.overdue {
			t.Errorf("FailingNow row %s: deadline %v paused %v overdue %v; want %+v", f.DeviceID, f.Deadline, f.Paused, f.Overdue(now), w)
		}
	}

	// The device list's listing of each device dates them alike, and
	// its overdue filter, total and deadline sort agree.
	lq := store.DeviceQuery{Now: now, StaleAfter: 1000 * time.Hour, DeviceFilters: store.DeviceFilters{Deadlines: rules}, Limit: 10}
	dp, err := s.ListDevices(ctx, lq)
	if err != nil {
		t.Fatalf("ListDevices: %v", err)
	}
	listed := func(p store.DevicePage) string {
		var ids []string
		for _, d := range p.Devices {
			ids = append(ids, d.ID)
		}
		return strings.Join(ids, ",")
	}
	oq := lq
	oq.Overdue = true
	if op, err := s.ListDevices(ctx, oq); err != nil || listed(op) != "c-overdue,c-plain" || op.Total != 2 || !op.TotalExact {
		t.Errorf("ListDevices(overdue) = %s, total %d (exact %v), %v; want c-overdue,c-plain of 2 (c-paused paused, c-running not due)", listed(op), op.Total, op.TotalExact, err)
	}
	oq.Sort = store.SortDeadline
	if op, err := s.ListDevices(ctx, oq); err != nil || listed(op) != "c-plain,c-overdue" {
		t.Errorf("ListDevices(overdue, by deadline) = %s, %v; want c-plain,c-overdue", listed(op), err)
	}
	oq.Overdue = false
	if op, err := s.ListDevices(ctx, oq); err != nil || listed(op) != "c-plain,c-paused,c-overdue,c-running,c-revoked" {
		t.Errorf("ListDevices(by deadline) = %s, %v; want c-plain,c-paused,c-overdue,c-running,c-revoked", listed(op), err)
	}
	for dev, w := range want {
		l, ok := dp.Listing[dev]
		if !ok || len(l.Failing) != 1 || l.Failing[0].Deadline == nil || !l.Failing[0].Deadline.Equal(w.due) || l.Failing[0].Paused != w.paused || l.Overdue != w.overdue {
			t.Errorf("ListDevices listing of %s = %+v, want %+v", dev, l, w)
		}
	}

	// The "overdue" events: a deadline passed in (from, to].
	if el, ok := s.(store.EventLog); ok {
		passed := func(from, to time.Time) string {
			t.Helper()
			od, err := el.PassedDeadlines(ctx, rules, from, to, 10)
			if err != nil {
				t.Fatalf("PassedDeadlines: %v", err)
			}
			var ids []string
			for _, o := range od {
				ids = append(ids, o.DeviceID+"@"+o.Deadline.Sub(start).String())
			}
			return strings.Join(ids, ",")
		}
		if got, want := passed(start, now), "c-plain@72h0m0s,c-overdue@97h0m0s"; got != want {
			t.Errorf("PassedDeadlines(start, now) = %s, want %s (c-paused paused, c-running not yet due)", got, want)
		}
		if got, want := passed(now, at.Add(22*time.Hour)), "c-running@122h0m0s"; got != want {
			t.Errorf("PassedDeadlines(now, c-running's deadline) = %s, want %s", got, want)
		}
	} else {
		t.Fatalf("%T has no event log", s)
	}

	ps, total, err := cs.PausedDeadlines(ctx, 10)
	if err != nil || total != 1 || len(ps) != 1 {
		t.Fatalf("PausedDeadlines = %+v, %d, %v; want c-paused alone (c-revoked is revoked)", ps, total, err)
	}
	p := ps[0]
	if p.DeviceID != "c-paused" || p.Hostname != "h-c-paused" || p.Group != "field" || p.RuleID != "rule-0" || p.Title != "Patches" ||
		!p.FailingSince.Equal(start) || p.GraceUsed != 80*time.Hour || !p.ReportAt.Equal(at) || p.NoConnectionSince == nil || !p.NoConnectionSince.Equal(start) {
		t.Fatalf("PausedDeadlines[0] = %+v", p)
	}
	c, ok, err := cs.DeviceConnectivity(ctx, "c-paused")
	if err != nil || !ok || c.Collector != store.Unreachable || c.UpdateSource != store.Unreachable || c.UpdateSourceName != "mirror.example.org" ||
		!c.At.Equal(at) || c.CollectorAt == nil || !c.CollectorAt.Equal(start) || c.UpdateSourceAt == nil || !c.UpdateSourceAt.Equal(start) {
		t.Fatalf("DeviceConnectivity(c-paused) = %+v, %v, %v", c, ok, err)
	}
	if _, ok, err := cs.DeviceConnectivity(ctx, "c-plain"); ok || err != nil {
		t.Fatalf("DeviceConnectivity(c-plain) = %v, %v; want none", ok, err)
	}

	// c-paused connects again with its 80 hours used: due 8 h before
	// that report, so overdue, and no longer paused. Its connectivity
	// says reached from then on.
	back := at.Add(10 * time.Hour)
	if _, err := s.SaveReport(ctx, connReport("c-paused", 3, back, true, 80*time.Hour, false, online)); err != nil {
		t.Fatal(err)
	}
	if ps, total, err := cs.PausedDeadlines(ctx, 10); err != nil || total != 0 || len(ps) != 0 {
		t.Fatalf("PausedDeadlines after reconnecting = %+v, %d, %v; want none", ps, total, err)
	}
	checkOverdue("reconnected", back, 10, 3, overdue,
		store.Overdue{DeviceID: "c-paused", FailingSince: start, Deadline: back.Add(-8 * time.Hour)}, plain)
	if c, _, err := cs.DeviceConnectivity(ctx, "c-paused"); err != nil || c.Collector != store.Reached || !c.CollectorAt.Equal(back) || !c.At.Equal(back) {
		t.Fatalf("DeviceConnectivity(c-paused) after reconnecting = %+v, %v", c, err)
	}
}
