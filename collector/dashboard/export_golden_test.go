package dashboard_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden exports in testdata/")

// The golden fleet's clock: every time in it is fixed, so the exports are
// byte for byte the same on every run.
var (
	gT0    = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	gAsOf  = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	gStale = 3 * time.Hour
)

// goldenFleet is a real SQLite store with one device of each kind an
// export must tell apart:
//   - lin-ok (staff): every rule passes, reporting: fresh;
//   - lin-bad (staff): disk unencrypted since 2026-03-02 (grace 72h: overdue
//     by the as-of), firewall off but waived (WAIVED, FAIL underneath);
//   - mac-quiet (staff): failing the firewall, silent for two days: stale,
//     failing since within its grace at its last report but overdue now;
//   - win-gone (staff): revoked on 2026-03-05: its last state, revoked;
//   - field-old (field): silent since its agent ran policy field v1 (the
//     group is on v2 now): deadlines by v2; one rule v2 no longer has:
//     deadline and overdue unknown;
//   - new-one (staff): enrolled, never reported: one UNKNOWN row saying so;
//   - upd-offline and upd-online (staff): security updates pending since
//     2026-03-02 under a connected grace (docs/connectivity.md), 340 of
//     its 336 connected hours used by their last report: upd-offline's
//     round found no connection, so its deadline is paused, not overdue;
//     upd-online's is overdue from that report on (by failing_since alone
//     it would be due on 2026-03-16).
func goldenFleet(t *testing.T) store.Dashboard {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	for _, tk := range []store.Token{
		{ID: "tok_staff", Hash: hash("staff-secret"), Group: "staff", Uses: 10, UsesLeft: 10, CreatedAt: gT0, ExpiresAt: gT0.Add(time.Hour)},
		{ID: "tok_field", Hash: hash("field-secret"), Group: "field", Uses: 10, UsesLeft: 10, CreatedAt: gT0, ExpiresAt: gT0.Add(time.Hour)},
	} {
		if err := st.CreateToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	serial := 0
	enrol := func(id, host, secret, platform string) {
		t.Helper()
		_, err := st.Enroll(ctx, store.EnrollParams{TokenHash: hash(secret), Now: gT0.Add(time.Minute), NewID: id,
			Info: store.DeviceInfo{Hostname: host, Platform: platform, OSName: platform, OSVersion: "1", AgentVersion: "1.0.0"}},
			func(string) (store.Issued, error) {
				serial++
				return store.Issued{Serial: fmt.Sprint(serial), NotAfter: gT0.AddDate(0, 3, 0), DER: []byte("cert-" + id)}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	enrol("dev_a", "lin-ok", "staff-secret", "linux")
	enrol("dev_b", "lin-bad", "staff-secret", "linux")
	enrol("dev_c", "mac-quiet", "staff-secret", "darwin")
	enrol("dev_d", "win-gone", "staff-secret", "windows")
	enrol("dev_e", "field-old", "field-secret", "linux")
	enrol("dev_f", "new-one", "staff-secret", "linux")
	enrol("dev_g", "upd-offline", "staff-secret", "linux")
	enrol("dev_h", "upd-online", "staff-secret", "linux")

	res := func(rule, sev string, v store.Verdict, observed string) store.RuleResult {
		return store.RuleResult{RuleID: rule, Title: "Title of " + rule, Family: "f", Severity: sev, Collector: v, Agent: v, Observed: observed, Expected: "what " + rule + " wants"}
	}
	seqs := map[string]uint64{}
	report := func(dev string, at time.Time, policy string, version int, results ...store.RuleResult) {
		t.Helper()
		seqs[dev]++
		r := store.Report{DeviceID: dev, Sequence: seqs[dev], ReceivedAt: at, CollectedAt: at.Add(-time.Second), ObservedAt: at.Add(-time.Second),
			AgentVersion: "1.0.0", PolicyName: policy, PolicyVersion: version, Facts: []byte{0x0a, 0x00}, Results: results}
		if _, err := st.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	pass := func(rule string) store.RuleResult { return res(rule, "high", store.Pass, rule+" ok") }
	d2 := gT0.Add(24 * time.Hour)
	report("dev_a", d2, "baseline", 1, res("disk-encrypted", "critical", store.Pass, "LUKS2 on /"), pass("firewall-on"))
	report("dev_a", gAsOf.Add(-time.Hour), "baseline", 1, res("disk-encrypted", "critical", store.Pass, "LUKS2 on /"), pass("firewall-on"))
	report("dev_b", d2, "baseline", 1, res("disk-encrypted", "critical", store.Fail, "/ not encrypted"), res("firewall-on", "high", store.Fail, "=cmd|' /C calc'!A0"))
	report("dev_b", gAsOf.Add(-30*time.Minute), "baseline", 1, res("disk-encrypted", "critical", store.Fail, "/ not encrypted"), res("firewall-on", "high", store.Fail, "=cmd|' /C calc'!A0"))
	report("dev_c", gAsOf.Add(-3*24*time.Hour), "baseline", 1, pass("disk-encrypted"), pass("firewall-on"))
	report("dev_c", gAsOf.Add(-2*24*time.Hour), "baseline", 1, pass("disk-encrypted"), res("firewall-on", "high", store.Fail, "application firewall off"))
	unknown := res("disk-encrypted", "critical", store.Unknown, "")
	unknown.Reason = "manage-bde: access denied"
	report("dev_d", d2, "baseline", 1, unknown, pass("firewall-on"))
	report("dev_e", d2, "field", 1, res("disk-encrypted", "critical", store.Fail, "/ not encrypted"), res("legacy-rule", "low", store.Fail, "gone"))
	connected := func(used time.Duration, paused bool) store.RuleResult {
		r := res("security-updates", "high", store.Fail, "3 security updates pending")
		r.GraceConnected, r.GraceUsed, r.DeadlinePaused = true, used, paused
		return r
	}
	report("dev_g", d2, "baseline", 1, connected(0, false))
	report("dev_g", gAsOf.Add(-time.Hour), "baseline", 1, connected(340*time.Hour, true))
	report("dev_h", d2, "baseline", 1, connected(0, false))
	report("dev_h", gAsOf.Add(-time.Hour), "baseline", 1, connected(340*time.Hour, false))
	if err := st.RevokeDevice(ctx, "dev_d", gT0.Add(4*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("../../policies/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	field := strings.Replace(string(base), "name: baseline\nversion: 3\n", "name: field\nversion: 2\n", 1)
	if err := st.SetPolicy(ctx, store.GroupPolicy{Group: "field", Name: "field", Version: 2, Document: []byte(field), UpdatedAt: gT0.Add(5 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWaiver(ctx, store.Waiver{ID: "wvr_golden", DeviceID: "dev_b", RuleID: "firewall-on", Reason: "replacement laptop ordered",
		CreatedBy: "amina", CreatedAt: gT0.Add(2 * 24 * time.Hour), ExpiresAt: gT0.Add(20 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return st
}

func goldenExport(t *testing.T, st store.Dashboard) *dashboard.Export {
	t.Helper()
	e, err := dashboard.BuildExport(context.Background(), st, dashboard.ExportOptions{
		Now: gAsOf.Add(48 * time.Hour), AsOf: gAsOf, StaleAfter: gStale,
		Collector: dashboard.ExportCollector{Host: "ward.example.org", Version: "1.2.3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -run %s -update rewrites it after review):\n--- got\n%s\n--- want\n%s", name, t.Name(), got, want)
	}
}

func TestExportGolden(t *testing.T) {
	st := goldenFleet(t)
	e := goldenExport(t, st)
	for _, format := range []string{"csv", "json"} {
		var b bytes.Buffer
		if err := e.Write(&b, format); err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "export.golden."+format, b.Bytes())
	}
	if got, want := e.FileName("csv"), "ward-export-2026-03-12-as-of-2026-03-10T120000Z.csv"; got != want {
		t.Errorf("file name %q, want %q", got, want)
	}
}

// TestExportRowsStandAlone asserts what the golden files show, so a
// wrong golden file cannot be accepted with -update unnoticed.
func TestExportRowsStandAlone(t *testing.T) {
	e := goldenExport(t, goldenFleet(t))
	m := e.Metadata
	if m.Format != dashboard.ExportFormat || !m.AsOf.Equal(gAsOf) || !m.GeneratedAt.Equal(gAsOf.Add(48*time.Hour)) || m.Collector.Host != "ward.example.org" ||
		m.StaleAfterSeconds != int64(gStale/time.Second) || m.Devices != 8 || m.Rows != 13 || len(m.DeadlinePolicies) != 2 || m.DeadlinePolicies[0].String() != "field: field v2" || m.DeadlinePolicies[1].String() != "staff: baseline v3 (embedded)" {
		t.Errorf("metadata = %+v", m)
	}
	rows := map[string]dashboard.ExportRow{}
	for _, r := range e.Rows {
		rows[r.Hostname+"/"+r.RuleID] = r
	}
	yes, no := true, false
	for key, want := range map[string]struct {
		status, verdict, device string
		deadline                *time.Time
		overdue                 *bool
		waiver                  bool
	}{
		"lin-ok/disk-encrypted":    {"PASS", "PASS", "fresh", nil, &no, false},
		"lin-bad/disk-encrypted":   {"FAIL", "FAIL", "fresh", ptr(gT0.Add(24*time.Hour - time.Second + 72*time.Hour)), &yes, false},
		"lin-bad/firewall-on":      {"WAIVED", "FAIL", "fresh", ptr(gT0.Add(24*time.Hour - time.Second + 24*time.Hour)), &no, true},
		"mac-quiet/firewall-on":    {"FAIL", "FAIL", "stale", ptr(gAsOf.Add(-2*24*time.Hour - time.Second + 24*time.Hour)), &yes, false},
		"win-gone/disk-encrypted":  {"UNKNOWN", "UNKNOWN", "revoked", nil, &no, false},
		"field-old/disk-encrypted": {"FAIL", "FAIL", "stale", ptr(gT0.Add(24*time.Hour - time.Second + 72*time.Hour)), &yes, false},
		"field-old/legacy-rule":    {"FAIL", "FAIL", "stale", nil, nil, false},
		// Connected grace: 4 connected hours more than the grace were
		// used by the report, collected a second before it arrived an
		// hour before the as-of.
		"upd-offline/security-updates": {"FAIL", "FAIL", "fresh", ptr(gAsOf.Add(-5*time.Hour - time.Second)), &no, false},
		"upd-online/security-updates":  {"FAIL", "FAIL", "fresh", ptr(gAsOf.Add(-5*time.Hour - time.Second)), &yes, false},
	} {
		r, ok := rows[key]
		if !ok {
			t.Errorf("%s: no row", key)
			continue
		}
		if string(r.Status) != want.status || string(r.Verdict) != want.verdict || r.DeviceStatus != want.device || (r.Waiver != nil) != want.waiver ||
			!eqTime(r.Deadline, want.deadline) || !eqBool(r.Overdue, want.overdue) {
			t.Errorf("%s = status %s verdict %s device %s deadline %v overdue %v waiver %v, want %+v", key, r.Status, r.Verdict, r.DeviceStatus, r.Deadline, deref(r.Overdue), r.Waiver, want)
		}
	}
	for key, r := range rows {
		if want := key == "upd-offline/security-updates"; r.DeadlinePaused != want {
			t.Errorf("%s: deadline_paused %v, want %v", key, r.DeadlinePaused, want)
		}
	}
	if r := rows["win-gone/disk-encrypted"]; r.RevokedAt == nil || !r.RevokedAt.Equal(gT0.Add(4*24*time.Hour)) || r.Reason != "manage-bde: access denied" {
		t.Errorf("revoked device's row = %+v", r)
	}
	if r := rows["lin-bad/firewall-on"]; r.Waiver == nil || r.Waiver.ID != "wvr_golden" || !r.Waiver.ExpiresAt.Equal(gT0.Add(20*24*time.Hour)) || r.Severity != "high" {
		t.Errorf("waived row = %+v", r)
	}
	// last_report is when the report was collected (its observed time),
	// received_at when it arrived.
	if r := rows["lin-ok/disk-encrypted"]; !eqTime(r.LastReport, ptr(gAsOf.Add(-time.Hour-time.Second))) || !eqTime(r.ReceivedAt, ptr(gAsOf.Add(-time.Hour))) {
		t.Errorf("lin-ok: last_report %v, received_at %v; want collected %v, received %v", r.LastReport, r.ReceivedAt, gAsOf.Add(-time.Hour-time.Second), gAsOf.Add(-time.Hour))
	}
	if r, ok := rows["new-one/"]; ok && r.ReceivedAt != nil {
		t.Errorf("the device that never reported has received_at %v", r.ReceivedAt)
	}
	if r, ok := rows["new-one/"]; !ok || r.Verdict != store.Unknown || r.Status != store.Unknown || r.Reason != dashboard.NoReportReason ||
		r.LastReport != nil || r.DeviceStatus != dashboard.ExportStale || r.PolicyName != "" {
		t.Errorf("the device that never reported = %+v (present %v), want one UNKNOWN row saying so", r, ok)
	}

	// The CSV says the same: the metadata lines, then a header and 11 rows.
	var b bytes.Buffer
	if err := e.Write(&b, "csv"); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(b.String(), "\n", dashboard.CSVMetaLines+1)
	for _, l := range lines[:dashboard.CSVMetaLines] {
		if !strings.HasPrefix(l, "# ") {
			t.Errorf("metadata line %q does not start with #", l)
		}
	}
	recs, err := csv.NewReader(strings.NewReader(lines[dashboard.CSVMetaLines])).ReadAll()
	if err != nil || len(recs) != 14 || strings.Join(recs[0], ",") != strings.Join(dashboard.ExportHeader, ",") {
		t.Fatalf("CSV after the metadata: %v, %d records", err, len(recs))
	}
	var j struct {
		Metadata map[string]any   `json:"metadata"`
		Rows     []map[string]any `json:"rows"`
	}
	b.Reset()
	if err := e.Write(&b, "json"); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), &j); err != nil || len(j.Rows) != 13 || j.Metadata["as_of"] != "2026-03-10T12:00:00Z" {
		t.Errorf("JSON: %v, %d rows, metadata %v", err, len(j.Rows), j.Metadata)
	}
	for _, k := range []string{"deadline", "overdue", "deadline_paused", "waiver", "revoked_at", "since", "received_at"} {
		if _, ok := j.Rows[0][k]; !ok {
			t.Errorf("JSON row has no %q key (every key is always there, null when empty)", k)
		}
	}
}

func TestExportAsOfBeforeFirstReport(t *testing.T) {
	st := goldenFleet(t)
	_, err := dashboard.BuildExport(context.Background(), st, dashboard.ExportOptions{Now: gAsOf, AsOf: gT0.Add(time.Hour), StaleAfter: gStale})
	if !errors.Is(err, dashboard.ErrBeforeFirstReport) {
		t.Errorf("as of before the first report: %v, want ErrBeforeFirstReport", err)
	}
	_, err = dashboard.BuildExport(context.Background(), st, dashboard.ExportOptions{Now: gAsOf, AsOf: gAsOf.Add(time.Hour), StaleAfter: gStale})
	if !errors.Is(err, dashboard.ErrFutureAsOf) {
		t.Errorf("as of the future: %v, want ErrFutureAsOf", err)
	}
	// Now, on an empty fleet, is an empty export, not an error.
	empty, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	e, err := dashboard.BuildExport(context.Background(), empty, dashboard.ExportOptions{Now: gAsOf, StaleAfter: gStale})
	if err != nil || len(e.Rows) != 0 || e.FileName("json") != "ward-export-2026-03-10.json" {
		t.Errorf("current export of an empty fleet: %v, %+v", err, e)
	}
}

func ptr(t time.Time) *time.Time { return &t }

func eqTime(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }

func eqBool(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}
