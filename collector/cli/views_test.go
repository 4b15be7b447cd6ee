package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// serve runs ward-collector serve with args until the test ends (or stop
// is called) and returns the dashboard's address once it is up.
func serve(t *testing.T, data string, args ...string) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, append([]string{"serve", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--insecure-cookies", "--log-level", "error"}, args...), &out, &errb)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	re := regexp.MustCompile(`HTTP on (127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1], stop
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s%s", code, out.String(), errb.String())
		default:
		}
	}
	t.Fatalf("serve did not start: %s%s", out.String(), errb.String())
	return "", nil
}

func staleAfterOf(t *testing.T, args ...string) int64 {
	t.Helper()
	out, code := run(t, args...)
	var s struct {
		StaleAfter int64 `json:"stale_after_seconds"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("%v: exit %d: %s", args, code, out)
	}
	return s.StaleAfter
}

// TestStalenessFromServeSettings: serve stores its report interval in the
// data directory; the admin commands and the dashboard judge staleness by
// it, the same, unless --interval overrides it explicitly.
func TestStalenessFromServeSettings(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	_, stop := serve(t, data, "--interval", "10m")
	stop()
	b, err := os.ReadFile(filepath.Join(data, "settings.json"))
	if err != nil || !strings.Contains(string(b), `"interval": "10m0s"`) {
		t.Fatalf("settings.json = %s (%v)", b, err)
	}
	if got := staleAfterOf(t, "fleet", "summary", "--data", data, "--json"); got != 1800 {
		t.Errorf("fleet summary stale_after_seconds = %d, want 1800 (3 × the 10m serve stored)", got)
	}
	if got := staleAfterOf(t, "fleet", "summary", "--data", data, "--json", "--interval", "1h"); got != 3*3600 {
		t.Errorf("with --interval 1h: %d, want 10800", got)
	}
	if got := staleAfterOf(t, "fleet", "failing", "--data", data, "--json"); got != 1800 {
		t.Errorf("fleet failing stale_after_seconds = %d, want 1800", got)
	}

	// Started again without --interval, serve keeps the stored one, and
	// its dashboard agrees with the CLI.
	if _, _, code := runIn(t, "a-long-enough-password\n", "user", "add", "--data", data, "--role", "viewer", "victor"); code != 0 {
		t.Fatal("user add failed")
	}
	addr, _ := serve(t, data)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + addr
	res, err := hc.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the login page: %s", page)
	}
	res, err = hc.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "user": {"victor"}, "password": {"a-long-enough-password"}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	res, err = hc.Get(base + "/export?format=json")
	if err != nil {
		t.Fatal(err)
	}
	var e dashboard.Export
	if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if e.Metadata.StaleAfterSeconds != 1800 {
		t.Errorf("the dashboard's export judges stale after %ds, want 1800 as the CLI", e.Metadata.StaleAfterSeconds)
	}
	out, _ := run(t, "export", "--data", data, "--format", "json")
	var ce dashboard.Export
	if err := json.Unmarshal([]byte(out), &ce); err != nil || ce.Metadata.StaleAfterSeconds != 1800 {
		t.Errorf("the CLI's export: %v, stale after %d", err, ce.Metadata.StaleAfterSeconds)
	}
	if code := cli.Run(context.Background(), []string{"fleet", "summary", "--data", data, "--interval", "-5m"}, io.Discard, io.Discard); code != 3 {
		t.Errorf("--interval -5m: exit %d, want 3", code)
	}
}

// failingFleet is a collector with one device failing disk encryption and
// the firewall (reported now), one compliant-ish silent one.
func failingFleet(t *testing.T) (c *servertest.Collector, failing string) {
	t.Helper()
	ctx := context.Background()
	c = servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 2, time.Hour), &wardv1.DeviceInfo{Hostname: "lin-bad", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: "m1"})
	f := false
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	facts := &wardv1.Facts{
		CollectedAt:    timestamppb.Now(),
		Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &f}}},
		Firewall:       &wardv1.FirewallFacts{Collection: ok},
	}
	if _, err := wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: 1, CollectedAt: timestamppb.Now(), PolicyName: "baseline", PolicyVersion: 1, Facts: facts}}); err != nil {
		t.Fatal(err)
	}
	return c, id
}

func TestFleetFailingAndOverdue(t *testing.T) {
	c, id := failingFleet(t)
	var rep cli.FailingReport
	out, code := run(t, "fleet", "failing", "--data", c.DataDir, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("fleet failing: %d %s", code, out)
	}
	rules := map[string]dashboard.ExportRow{}
	for _, r := range rep.Rows {
		if r.DeviceID != id || r.Verdict != store.Fail {
			t.Errorf("failing row %+v", r)
		}
		rules[r.RuleID] = r
	}
	disk, ok := rules["disk-encrypted"]
	if !ok || disk.Since == nil || disk.Deadline == nil || !disk.Deadline.Equal(disk.Since.Add(72*time.Hour)) || *disk.Overdue || disk.Severity != "critical" || disk.DeviceStatus != "fresh" {
		t.Fatalf("disk-encrypted = %+v (rows %v)", disk, rep.Rows)
	}
	if out, _ := run(t, "fleet", "overdue", "--data", c.DataDir); !strings.Contains(out, "no overdue rules") {
		t.Errorf("fleet overdue now = %q", out)
	}

	// Four days on, silent: disk encryption (72h) is overdue; the device
	// is stale but its failures are not forgotten.
	later := time.Now().Add(4 * 24 * time.Hour).UTC().Format(time.RFC3339)
	out, code = run(t, "fleet", "overdue", "--data", c.DataDir, "--json", "--now", later)
	rep = cli.FailingReport{}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("fleet overdue: %d %s", code, out)
	}
	var overdue []string
	for _, r := range rep.Rows {
		overdue = append(overdue, r.RuleID)
		if r.DeviceStatus != "stale" || r.Overdue == nil || !*r.Overdue {
			t.Errorf("overdue row %+v", r)
		}
	}
	// Every failing rule whose deadline has passed by then, and no other.
	var want []string
	for _, r := range sortedFailing(rules) {
		if r.Deadline != nil && !r.Deadline.After(time.Now().Add(4*24*time.Hour).Truncate(time.Second)) {
			want = append(want, r.RuleID)
		}
	}
	if got := strings.Join(sorted(overdue), ","); got != strings.Join(want, ",") || !strings.Contains(got, "disk-encrypted") {
		t.Errorf("overdue four days on = %v, want %v (disk-encrypted among them)", got, want)
	}
	out, _ = run(t, "fleet", "failing", "--data", c.DataDir, "--now", later)
	if lines := strings.Split(out, "\n"); len(lines) < 2 || !strings.HasPrefix(lines[0], "HOSTNAME") || !strings.Contains(lines[1], "OVERDUE") || !strings.Contains(out, "stale: last report") {
		t.Errorf("fleet failing table (overdue first, stale marked):\n%s", out)
	}

	// A waiver takes a failure out of overdue (and out of failing unless
	// --waived), keeping its verdict.
	if _, code := run(t, "waiver", "grant", "--data", c.DataDir, "--device", id, "--rule", "disk-encrypted", "--for", "720h", "--reason", "laptop replaced next week"); code != 0 {
		t.Fatal("waiver grant failed")
	}
	out, _ = run(t, "fleet", "failing", "--data", c.DataDir, "--json", "--waived", "--now", later)
	rep = cli.FailingReport{}
	json.Unmarshal([]byte(out), &rep)
	for _, r := range rep.Rows {
		if r.RuleID == "disk-encrypted" && (r.Status != store.Waived || r.Verdict != store.Fail || *r.Overdue) {
			t.Errorf("waived failure = %+v", r)
		}
	}
}

func TestDeviceShowReasonsAndDeadlines(t *testing.T) {
	c, id := failingFleet(t)
	out, code := run(t, "device", "show", id, "--data", c.DataDir)
	if code != 0 {
		t.Fatal("device show failed")
	}
	lines := strings.Split(out, "\n")
	var table []string
	for i, l := range lines {
		if strings.HasPrefix(l, "RULE") {
			for _, r := range lines[i+1:] {
				if r == "" || strings.HasPrefix(r, "  ") {
					break
				}
				table = append(table, r)
			}
		}
	}
	if len(table) < 3 {
		t.Fatalf("device show:\n%s", out)
	}
	// Failing first, each with its deadline; then unknown; passing last.
	seenPass := false
	for i, r := range table {
		switch {
		case strings.Contains(r, " FAIL "):
			if seenPass || !strings.Contains(r, "(in ") {
				t.Errorf("row %d %q: a FAIL after a PASS, or without its deadline", i, r)
			}
		case strings.Contains(r, " PASS "):
			seenPass = true
		case seenPass:
			t.Errorf("row %d %q after a PASS", i, r)
		}
	}
	var show struct {
		Rules []struct {
			RuleID   string     `json:"rule_id"`
			Status   string     `json:"status"`
			Severity string     `json:"severity"`
			Deadline *time.Time `json:"deadline"`
			Overdue  *bool      `json:"overdue"`
			Reason   string     `json:"reason"`
		} `json:"rules"`
		StaleAfter int64 `json:"stale_after_seconds"`
	}
	out, _ = run(t, "device", "show", id, "--data", c.DataDir, "--json")
	if err := json.Unmarshal([]byte(out), &show); err != nil || len(show.Rules) == 0 || show.Rules[0].Status != "FAIL" || show.Rules[0].Deadline == nil || show.StaleAfter != 3*3600 {
		t.Fatalf("device show --json: %v\n%s", err, out)
	}
	// The firewall facts were sent without their state: UNKNOWN, and why.
	text, _ := run(t, "device", "show", id, "--data", c.DataDir)
	reasons := 0
	for _, r := range show.Rules {
		if r.Status == "UNKNOWN" {
			if r.Reason == "" || !strings.Contains(text, r.RuleID+" UNKNOWN: "+r.Reason) {
				t.Errorf("UNKNOWN %s: reason %q not printed:\n%s", r.RuleID, r.Reason, text)
			}
			reasons++
		}
	}
	if reasons == 0 {
		t.Errorf("no UNKNOWN rule in the fleet's device:\n%s", text)
	}
	// Silent for four days: stale, its failures kept, their deadlines
	// running on (the "stale device without deadlines").
	later, _ := run(t, "device", "show", id, "--data", c.DataDir, "--now", time.Now().Add(4*24*time.Hour).UTC().Format(time.RFC3339))
	if !strings.Contains(later, "STALE: no report for 4d") || !regexp.MustCompile(`disk-encrypted +critical +FAIL .*OVERDUE 1d`).MatchString(later) {
		t.Errorf("device show of a stale device:\n%s", later)
	}
	if code := cli.Run(context.Background(), []string{"device", "show", "dev_nope", "--data", c.DataDir}, io.Discard, io.Discard); code != 3 {
		t.Errorf("device show of an unknown id: exit %d, want 3", code)
	}
}

func TestPolicyWhatIf(t *testing.T) {
	c, id := failingFleet(t)
	base, err := os.ReadFile("../../policies/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Drop the disk rule's requirement: disk-encrypted would now pass;
	// the firewall still fails, so nothing is newly failing.
	p := filepath.Join(t.TempDir(), "draft.yaml")
	os.WriteFile(p, []byte(strings.Replace(string(base), "name: baseline\nversion: 3\n", "name: draft\nversion: 2\n", 1)), 0o644)
	out, code := run(t, "policy", "what-if", "--group", "staff", p, "--data", c.DataDir, "--json")
	var wi dashboard.WhatIfResult
	if code != 0 || json.Unmarshal([]byte(out), &wi) != nil {
		t.Fatalf("what-if: %d %s", code, out)
	}
	if wi.Group != "staff" || wi.Name != "draft" || wi.Version != 2 || wi.Total != 1 || wi.Evaluated != 1 || wi.Partial || len(wi.Newly) != 0 {
		t.Errorf("what-if the same rules = %+v", wi)
	}
	// A stricter draft: a rule every device fails.
	strict := strings.Replace(string(base), "name: baseline\nversion: 3\n", "name: strict\nversion: 3\n", 1) + `
  - id: never-passes
    title: A rule no device passes
    family: os
    platforms: [linux]
    require: os.id == "no-such-distribution"
    expected: A distribution no one runs
    severity: low
    remediation:
      en:
        linux: Nothing to do.
`
	os.WriteFile(p, []byte(strict), 0o644)
	var errb bytes.Buffer
	out, code = run(t, "policy", "what-if", "--group", "staff", p, "--data", c.DataDir, "--json")
	wi = dashboard.WhatIfResult{}
	if code != 0 {
		// The document may not validate as written: say so.
		cli.Run(context.Background(), []string{"policy", "what-if", "--group", "staff", p, "--data", c.DataDir}, io.Discard, &errb)
		t.Fatalf("strict what-if: exit %d: %s", code, errb.String())
	}
	if json.Unmarshal([]byte(out), &wi) != nil || len(wi.Newly) != 1 || wi.Newly[0].DeviceID != id || strings.Join(wi.Newly[0].Rules, ",") != "never-passes" {
		t.Errorf("strict what-if = %s", out)
	}
	text, _ := run(t, "policy", "what-if", "--group", "staff", p, "--data", c.DataDir)
	if !strings.Contains(text, "1 of 1 evaluated devices would newly fail") || !strings.Contains(text, "never-passes") {
		t.Errorf("what-if text:\n%s", text)
	}
	// Bad input exits 3 and changes nothing.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("rules: [oops\n"), 0o644)
	for _, args := range [][]string{
		{"policy", "what-if", "--group", "staff", bad, "--data", c.DataDir},
		{"policy", "what-if", p, "--data", c.DataDir},
		{"policy", "what-if", "--group", "staff", filepath.Join(t.TempDir(), "missing.yaml"), "--data", c.DataDir},
	} {
		if code := cli.Run(context.Background(), args, io.Discard, io.Discard); code != 3 {
			t.Errorf("%v: exit %d, want 3", args, code)
		}
	}
	entries, err := c.Store().(store.Dashboard).Audit(context.Background(), 10)
	if err != nil || len(entries) == 0 || entries[0].Action != "policy.what-if" || entries[0].Target != "staff" {
		t.Errorf("audit after what-if: %+v %v", entries, err)
	}
}

func TestFleetTrend(t *testing.T) {
	c, _ := failingFleet(t)
	out, code := run(t, "fleet", "trend", "--data", c.DataDir, "--days", "3", "--json")
	var points []store.TrendPoint
	if code != 0 || json.Unmarshal([]byte(out), &points) != nil || len(points) != 3 || points[2].Failing != 1 {
		t.Errorf("fleet trend: %d %s", code, out)
	}
	if code := cli.Run(context.Background(), []string{"fleet", "trend", "--data", c.DataDir, "--days", "0"}, io.Discard, io.Discard); code != 3 {
		t.Errorf("--days 0: exit %d, want 3", code)
	}
}

// Typos exit 3 and suggest what was meant.
func TestSuggestions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fleet", "summry"}, "did you mean summary?"},
		{[]string{"fleet", "overdeu"}, "did you mean overdue?"},
		{[]string{"usr", "list"}, "did you mean user?"},
		{[]string{"polcy", "what-if"}, "did you mean policy?"},
		{[]string{"fleet", "summary", "--jsn"}, "did you mean --json?"},
		{[]string{"export", "--as-off", "2026-01-01"}, "did you mean --as-of?"},
		{[]string{"device", "show"}, "accepts 1 arg(s), received 0 (usage: ward-collector device show ID"},
		{[]string{"export", "now"}, "unknown command \"now\""},
		{[]string{"policy", "what-if", "--group", "g"}, "usage: ward-collector policy what-if --group G FILE"},
	} {
		var out, errb bytes.Buffer
		if code := cli.Run(context.Background(), tc.args, &out, &errb); code != 3 || !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 3 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

func sortedFailing(m map[string]dashboard.ExportRow) []dashboard.ExportRow {
	var out []dashboard.ExportRow
	for _, k := range sorted(keys(m)) {
		out = append(out, m[k])
	}
	return out
}

func keys(m map[string]dashboard.ExportRow) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
