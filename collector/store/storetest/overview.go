package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunOverviewConformance runs the suite for store.Overview: the
// dashboard's failing-now table and a device's audit history.
func RunOverviewConformance(t *testing.T, newStore func() store.Dashboard) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Dashboard)
	}{
		{"FailingNowMostUrgentFirst", testFailingNow},
		{"AuditForTargets", testAuditFor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// failingFleet enrols field devices a-waived, f1, f2 and f4-revoked and
// hq device h1, and has them report (rule-0, rule-1): a-waived and f1
// fail both at t0+2m; f2 passes both, then fails rule-1 at t0+3h; the
// revoked device fails both; h1 fails rule-0. a-waived's rule-0 is under
// an active device waiver; f2's rule-1 had one that expired, and h1's
// rule-0 one that was revoked.
func failingFleet(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	mkToken(t, s, "tk-field", "secret-field", "field", 10, 24*time.Hour)
	mkToken(t, s, "tk-hq", "secret-hq", "hq", 10, 24*time.Hour)
	for _, id := range []string{"a-waived", "f1", "f2", "f4-revoked"} {
		mustEnroll(t, s, "secret-field", id, "")
	}
	mustEnroll(t, s, "secret-hq", "h1", "")
	at := t0.Add(2 * time.Minute)
	for _, r := range []store.Report{
		report("a-waived", 1, at, store.Fail, store.Fail),
		report("f1", 1, at, store.Fail, store.Fail),
		report("f2", 1, at, store.Pass, store.Pass),
		report("f2", 2, t0.Add(3*time.Hour), store.Pass, store.Fail),
		report("f4-revoked", 1, at, store.Fail, store.Fail),
		report("h1", 1, at, store.Fail, store.Pass),
	} {
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeDevice(ctx, "f4-revoked", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []store.Waiver{
		{ID: "w-active", DeviceID: "a-waived", RuleID: "rule-0", Reason: "replacement ordered", CreatedBy: "amina", CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)},
		{ID: "w-expired", DeviceID: "f2", RuleID: "rule-1", Reason: "old", CreatedBy: "amina", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{ID: "w-revoked", DeviceID: "h1", RuleID: "rule-0", Reason: "mistake", CreatedBy: "amina", CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)},
	} {
		if err := s.CreateWaiver(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeWaiver(ctx, "w-revoked", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func testFailingNow(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	failingFleet(t, s)
	now := t0.Add(5 * time.Hour)
	rules := []store.DeadlineRule{
		{Group: "field", RuleID: "rule-0", Grace: time.Hour},
		{Group: "field", RuleID: "rule-1"}, // no deadline
		{Group: "hq", RuleID: "rule-0", Grace: 48 * time.Hour},
		{Group: "hq", RuleID: "rule-1", Grace: time.Hour},
		{Group: "field", RuleID: "rule-0", Grace: time.Hour}, // a duplicate counts once
	}
	// More (group, rule) pairs than one SQLite compound SELECT may join.
	for i := range 450 {
		rules = append(rules, store.DeadlineRule{Group: "field", RuleID: fmt.Sprintf("absent-%03d", i), Grace: time.Hour})
	}
	since := func(dev, rule string) time.Time {
		t.Helper()
		rs, err := s.RuleStates(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.RuleID == rule && r.FailingSince != nil {
				return *r.FailingSince
			}
		}
		t.Fatalf("%s %s is not failing", dev, rule)
		return time.Time{}
	}
	type row struct {
		dev, rule string
		grace     time.Duration
	}
	want := []row{
		{"f1", "rule-0", time.Hour},      // overdue
		{"h1", "rule-0", 48 * time.Hour}, // deadline ahead
		{"a-waived", "rule-1", 0},        // no deadline: by failing since
		{"f1", "rule-1", 0},
		{"f2", "rule-1", 0}, // its expired waiver no longer hides it
	}
	p, err := s.FailingNow(ctx, store.FailingQuery{Rules: rules, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 5 || p.Overdue != 1 || p.Waived != 1 {
		t.Errorf("totals: %d failing, %d overdue, %d waived; want 5, 1, 1", p.Total, p.Overdue, p.Waived)
	}
	if len(p.Counts) != 4+450 {
		t.Fatalf("%d counts, want one per distinct (group, rule): %d", len(p.Counts), 4+450)
	}
	wantCounts := []store.FailingCount{
		{Group: "field", RuleID: "rule-0", Failing: 1, Overdue: 1}, // a-waived's is waived
		{Group: "field", RuleID: "rule-1", Failing: 3},
		{Group: "hq", RuleID: "rule-0", Failing: 1},
		{Group: "hq", RuleID: "rule-1"},
		{Group: "field", RuleID: "absent-000"},
	}
	if !slices.Equal(p.Counts[:5], wantCounts) {
		t.Errorf("counts = %+v, want %+v", p.Counts[:5], wantCounts)
	}
	var got []string
	for _, f := range p.Rows {
		got = append(got, f.DeviceID+"/"+f.RuleID)
	}
	var wantIDs []string
	for _, w := range want {
		wantIDs = append(wantIDs, w.dev+"/"+w.rule)
	}
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("rows = %v, want %v", got, wantIDs)
	}
	for i, w := range want {
		f := p.Rows[i]
		fs := since(w.dev, w.rule)
		d, _ := s.Device(ctx, w.dev)
		if !f.FailingSince.Equal(fs) || f.Hostname != "h-"+w.dev || f.Severity != "high" || f.Title != "t" || d.LastSeen == nil || !f.Seen.Equal(*d.LastSeen) {
			t.Errorf("row %d = %+v; want failing since %v, hostname h-%s, severity high, title t, seen %v", i, f, fs, w.dev, d.LastSeen)
		}
		wantGroup := "field"
		if strings.HasPrefix(w.dev, "h") {
			wantGroup = "hq"
		}
		if f.Group != wantGroup {
			t.Errorf("row %d group %q, want %q", i, f.Group, wantGroup)
		}
		switch {
		case w.grace == 0 && f.Deadline != nil:
			t.Errorf("row %d has deadline %v, its rule has no grace", i, f.Deadline)
		case w.grace > 0 && (f.Deadline == nil || !f.Deadline.Equal(fs.Add(w.grace))):
			t.Errorf("row %d deadline %v, want %v", i, f.Deadline, fs.Add(w.grace))
		}
		if f.Overdue(now) != (i == 0) {
			t.Errorf("row %d overdue = %v", i, f.Overdue(now))
		}
	}

	// The limit bounds the rows, not the counts; the waived state that
	// sorts first does not take the only place.
	p, err = s.FailingNow(ctx, store.FailingQuery{Rules: rules, Now: now, Limit: 1})
	if err != nil || len(p.Rows) != 1 || p.Rows[0].DeviceID != "f1" || p.Rows[0].RuleID != "rule-0" || p.Total != 5 {
		t.Errorf("limit 1: %+v, %v", p, err)
	}
	// One group's rules only.
	p, err = s.FailingNow(ctx, store.FailingQuery{Rules: rules[2:4], Now: now})
	if err != nil || len(p.Rows) != 1 || p.Rows[0].DeviceID != "h1" || p.Total != 1 || p.Overdue != 0 || p.Waived != 0 {
		t.Errorf("hq only: %+v, %v", p, err)
	}
	// Past h1's deadline it is overdue too, and sorts by deadline.
	later := t0.Add(72 * time.Hour)
	p, err = s.FailingNow(ctx, store.FailingQuery{Rules: rules, Now: later})
	if err != nil || p.Overdue != 2 || len(p.Rows) != 5 || p.Rows[1].DeviceID != "h1" || !p.Rows[1].Overdue(later) {
		t.Errorf("at t0+72h: %+v, %v", p, err)
	}
	// After the waiver expires the waived state is listed, first.
	afterWaiver := t0.Add(31 * 24 * time.Hour)
	p, err = s.FailingNow(ctx, store.FailingQuery{Rules: rules, Now: afterWaiver})
	if err != nil || p.Waived != 0 || p.Total != 6 || p.Overdue != 3 || len(p.Rows) != 6 || p.Rows[0].DeviceID != "a-waived" {
		t.Errorf("after the waiver: %+v, %v", p, err)
	}
	if p, err := s.FailingNow(ctx, store.FailingQuery{Now: now}); err != nil || len(p.Rows) != 0 || p.Total != 0 {
		t.Errorf("no rules: %+v, %v", p, err)
	}
}

func testAuditFor(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	mkToken(t, s, "tk", "secret", "field", 10, 24*time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	mustEnroll(t, s, "secret", "dev_2", "")
	for i, e := range []store.AuditEntry{
		{Actor: "amina", Action: "policy.apply", Target: "field", Detail: "strict version 2"},
		{Actor: "amina", Action: "device.revoke", Target: "dev_2"},
		{Actor: "amina", Action: "policy.apply", Target: "hq", Detail: "other group"},
		{Actor: "device dev_1", Action: "device.cert.renew", Target: "dev_1"},
	} {
		e.At = t0.Add(time.Duration(i+1) * time.Hour)
		if err := s.AddAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.AuditFor(ctx, []string{"dev_1", "field"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Action+" "+e.Target)
	}
	want := []string{"device.cert.renew dev_1", "policy.apply field", "device.enrol dev_1"}
	if !slices.Equal(got, want) {
		t.Errorf("AuditFor(dev_1, field) = %v, want %v", got, want)
	}
	if es[0].Actor != "device dev_1" || !es[0].At.Equal(t0.Add(4*time.Hour)) || es[1].Detail != "strict version 2" {
		t.Errorf("entries = %+v", es)
	}
	if es, err := s.AuditFor(ctx, []string{"dev_1", "field"}, 1); err != nil || len(es) != 1 || es[0].Action != "device.cert.renew" {
		t.Errorf("limit 1: %+v, %v", es, err)
	}
	if es, err := s.AuditFor(ctx, nil, 0); err != nil || len(es) != 0 {
		t.Errorf("no targets: %+v, %v", es, err)
	}
}
