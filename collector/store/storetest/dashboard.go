package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunDashboardConformance runs the suite for store.Dashboard backends.
func RunDashboardConformance(t *testing.T, newStore func() store.Dashboard) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Dashboard)
	}{
		{"UsersAndSessions", testUsersSessions},
		{"AuditNewestFirst", testAudit},
		{"WaiversExpireOnTheirOwn", testWaivers},
		{"FleetViewsMatchDeviceStatus", testFleetViews},
		{"TrendAndStateAsOf", testHistory},
		{"LateReportsStandAtTheirCollectedTime", testLateReportsAsOf},
		{"AggregatesMatchBruteForce", testAggregates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func testUsersSessions(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	u := store.User{Name: "amina", Role: store.RoleAdmin, Hash: []byte("$2a$hash"), CreatedAt: t0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, u); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateUser: %v, want ErrExists", err)
	}
	got, err := s.User(ctx, "amina")
	if err != nil || got.Role != store.RoleAdmin || string(got.Hash) != "$2a$hash" {
		t.Fatalf("User = %+v, %v", got, err)
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("User(nobody): %v", err)
	}
	se := store.Session{IDHash: hash("sid"), User: "amina", CSRF: "tok", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	g, err := s.Session(ctx, hash("sid"), t0.Add(time.Minute))
	if err != nil || g.User != "amina" || g.Role != store.RoleAdmin || g.CSRF != "tok" {
		t.Fatalf("Session = %+v, %v", g, err)
	}
	if _, err := s.Session(ctx, hash("sid"), t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, hash("sid")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, hash("sid"), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: %v, want ErrNotFound", err)
	}
}

func testAudit(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	for i, a := range []string{"first", "second", "third"} {
		if err := s.AddAudit(ctx, store.AuditEntry{At: t0.Add(time.Duration(i) * time.Minute), Actor: "amina", Action: a, Target: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.Audit(ctx, 2)
	if err != nil || len(es) != 2 || es[0].Action != "third" || es[1].Action != "second" {
		t.Fatalf("Audit = %+v, %v", es, err)
	}
}

func testWaivers(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	w := store.Waiver{ID: "w1", DeviceID: "d1", RuleID: "r", Reason: "travel", CreatedBy: "amina", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := s.CreateWaiver(ctx, w); err != nil {
		t.Fatal(err)
	}
	g := store.Waiver{ID: "w2", Group: "field", RuleID: "r", Reason: "rollout", CreatedBy: "amina", CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(48 * time.Hour)}
	if err := s.CreateWaiver(ctx, g); err != nil {
		t.Fatal(err)
	}
	ws, err := s.Waivers(ctx)
	if err != nil || len(ws) != 2 || ws[0].ID != "w2" {
		t.Fatalf("Waivers = %+v, %v", ws, err)
	}
	if store.FindWaiver(ws, t0.Add(time.Hour), "d1", "other", "r") == nil {
		t.Error("device waiver does not apply within its time")
	}
	if store.FindWaiver(ws, t0.Add(25*time.Hour), "d1", "other", "r") != nil {
		t.Error("expired device waiver still applies")
	}
	if store.FindWaiver(ws, t0.Add(25*time.Hour), "d9", "field", "r") == nil {
		t.Error("group waiver does not apply to a device of the group")
	}
	if store.FindWaiver(ws, t0.Add(time.Hour), "d1", "other", "r2") != nil {
		t.Error("waiver applies to another rule")
	}
	if err := s.RevokeWaiver(ctx, "w2", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	ws, _ = s.Waivers(ctx)
	if store.FindWaiver(ws, t0.Add(3*time.Hour), "d9", "field", "r") != nil {
		t.Error("revoked waiver still applies")
	}
	if err := s.RevokeWaiver(ctx, "nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RevokeWaiver(nope): %v", err)
	}
}

// fleet enrols five devices: compliant, failing (rule-1), unknown,
// silent since enrolment, and revoked.
func fleet(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	mkToken(t, s, "tk", "secret", "field", 10, 24*time.Hour)
	for _, id := range []string{"a-ok", "b-fail", "c-unknown", "d-silent", "e-revoked"} {
		mustEnroll(t, s, "secret", id, "")
	}
	at := t0.Add(2 * time.Minute)
	for _, r := range []store.Report{
		report("a-ok", 1, at, store.Pass, store.Pass),
		report("b-fail", 1, at, store.Pass, store.Pass),
		report("b-fail", 2, at.Add(24*time.Hour), store.Pass, store.Fail),
		report("c-unknown", 1, at, store.Pass, store.Unknown),
		report("e-revoked", 1, at, store.Fail, store.Fail),
	} {
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeDevice(ctx, "e-revoked", at.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func testFleetViews(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	fleet(t, s)
	now, stale := t0.Add(25*time.Hour), 2*time.Hour
	// a-ok and c-unknown last reported at t0+2m: with a 2h threshold at
	// t0+25h they are stale; with 48h they are not.
	for _, staleAfter := range []time.Duration{stale, 48 * time.Hour} {
		c, err := s.FleetCounts(ctx, now, staleAfter)
		if err != nil {
			t.Fatal(err)
		}
		ds, _ := s.Devices(ctx)
		var want store.FleetCounts
		for _, d := range ds {
			switch d.Status(now, staleAfter) {
			case store.StatusCompliant:
				want.Compliant++
			case store.StatusFailing:
				want.Failing++
			case store.StatusUnknown:
				want.Unknown++
			case store.StatusStale:
				want.Stale++
			case store.StatusRevoked:
				want.Revoked++
			}
		}
		want.Devices = len(ds) - want.Revoked
		if c != want {
			t.Errorf("stale after %s: FleetCounts = %+v, want %+v", staleAfter, c, want)
		}
		for _, st := range []store.DeviceStatus{store.StatusCompliant, store.StatusFailing, store.StatusUnknown, store.StatusStale, store.StatusRevoked} {
			p, err := s.ListDevices(ctx, store.DeviceQuery{Now: now, StaleAfter: staleAfter, Status: st})
			if err != nil {
				t.Fatal(err)
			}
			page, total := p.Devices, p.Total
			for _, d := range page {
				if got := d.Status(now, staleAfter); got != st {
					t.Errorf("ListDevices(status %s) returned %s with status %s", st, d.ID, got)
				}
			}
			if total != len(page) {
				t.Errorf("ListDevices(status %s): total %d, page %d", st, total, len(page))
			}
		}
	}
	rc, err := s.FailingByRule(ctx, now, 48*time.Hour)
	if err != nil || len(rc) != 1 || rc[0].RuleID != "rule-1" || rc[0].Devices != 1 {
		t.Fatalf("FailingByRule = %+v, %v (the revoked device must not count)", rc, err)
	}
	p, err := s.ListDevices(ctx, store.DeviceQuery{Now: now, StaleAfter: stale, RuleID: "rule-1", Status: store.StatusFailing})
	page, total := p.Devices, p.Total
	if err != nil || total != 1 || page[0].ID != "b-fail" || page[0].Fail != 1 || page[0].Pass != 1 {
		t.Fatalf("ListDevices(rule-1) = %+v, %d, %v", page, total, err)
	}
	p, err = s.ListDevices(ctx, store.DeviceQuery{Now: now, StaleAfter: stale, Search: "UNKNOWN", Group: "field", OS: "Debian"})
	page, total = p.Devices, p.Total
	if err != nil || total != 1 || page[0].ID != "c-unknown" {
		t.Fatalf("ListDevices(search) = %+v, %d, %v", page, total, err)
	}
	p, err = s.ListDevices(ctx, store.DeviceQuery{Now: now, StaleAfter: stale, Sort: "-" + store.SortHostname, Limit: 2, Offset: 1})
	page, total = p.Devices, p.Total
	if err != nil || total != 5 || len(page) != 2 || page[0].ID != "d-silent" || page[1].ID != "c-unknown" {
		t.Fatalf("ListDevices(sort, page) = %+v, %d, %v", page, total, err)
	}
	od, n, err := s.PastDeadline(ctx, []store.DeadlineRule{{Group: "field", RuleID: "rule-1", Grace: 30 * time.Minute}}, now, 10)
	if err != nil || n != 1 || od[0].DeviceID != "b-fail" || !od[0].Deadline.Equal(od[0].FailingSince.Add(30*time.Minute)) {
		t.Fatalf("PastDeadline = %+v, %d, %v", od, n, err)
	}
	if _, n, _ := s.PastDeadline(ctx, []store.DeadlineRule{{Group: "field", RuleID: "rule-1", Grace: 48 * time.Hour}}, now, 10); n != 0 {
		t.Fatalf("PastDeadline within grace = %d, want 0", n)
	}
	var seen []string
	err = s.LatestFacts(ctx, "field", func(lf store.LatestFacts) error {
		seen = append(seen, lf.DeviceID)
		if lf.DeviceID == "b-fail" && !lf.Failing["rule-1"] {
			t.Errorf("b-fail failing = %v", lf.Failing)
		}
		return nil
	})
	if err != nil || len(seen) != 3 {
		t.Fatalf("LatestFacts devices = %v, %v (want the three reporting, non-revoked ones)", seen, err)
	}
}

func testHistory(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	fleet(t, s)
	tr, err := s.Trend(ctx, t0.Add(24*time.Hour+3*time.Minute), 3)
	if err != nil || len(tr) != 3 {
		t.Fatalf("Trend = %+v, %v", tr, err)
	}
	if p := tr[0]; p.Compliant+p.Failing+p.Unknown != 0 {
		t.Errorf("day before the first report: %+v", p)
	}
	if p := tr[1]; p.Compliant != 2 || p.Failing != 0 || p.Unknown != 1 {
		t.Errorf("first day = %+v, want 2 compliant (a-ok, b-fail), 1 unknown", p)
	}
	if p := tr[2]; p.Compliant != 1 || p.Failing != 1 || p.Unknown != 1 {
		t.Errorf("second day = %+v, want b-fail failing", p)
	}
	rows := map[string]store.StateRow{}
	collect := func(r store.StateRow) error { rows[r.DeviceID+"/"+r.RuleID] = r; return nil }
	if err := s.StateAsOf(ctx, t0.Add(time.Hour), collect); err != nil {
		t.Fatal(err)
	}
	if r := rows["b-fail/rule-1"]; r.Status != store.Pass || r.PolicyName != "baseline" || r.Observed != "o" || r.Since == nil {
		t.Errorf("as of the first day, b-fail/rule-1 = %+v", r)
	}
	if _, ok := rows["e-revoked/rule-0"]; !ok {
		t.Error("a device revoked later is missing from the earlier state")
	}
	clear(rows)
	if err := s.StateAsOf(ctx, t0.Add(30*time.Hour), collect); err != nil {
		t.Fatal(err)
	}
	if r := rows["b-fail/rule-1"]; r.Status != store.Fail || r.Since == nil || !r.Since.After(t0.Add(time.Hour)) {
		t.Errorf("as of the second day, b-fail/rule-1 = %+v", r)
	}
	if r, ok := rows["e-revoked/rule-0"]; !ok || r.RevokedAt == nil || !r.RevokedAt.Equal(t0.Add(2*time.Minute+3*time.Hour)) {
		t.Errorf("a device revoked by then = %+v (present %v), want its last state with its revocation time", r, ok)
	}
	if r := rows["b-fail/rule-1"]; r.RevokedAt != nil || r.Severity != "high" {
		t.Errorf("b-fail/rule-1 = %+v, want no revocation and the rule's severity", r)
	}
	if len(rows) != 8 {
		t.Errorf("rows = %d, want 8 (3 devices × 2 rules, and the revoked one's 2)", len(rows))
	}
}
