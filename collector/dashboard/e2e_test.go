package dashboard_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

const staleAfter = 3 * time.Hour

// fleet is a collector with the dashboard, seeded through the real
// enrolment and report path with facts replayed from captured bundles.
type fleet struct {
	c       *servertest.Collector
	st      store.Dashboard
	base    string
	devices map[string]string // hostname → device id
}

var seed = []struct {
	host, group, bundle, platform, osName string
}{
	{"win-ok", "field", "windows-compliant", "windows", "Windows 11 Pro"},
	{"win-bad", "field", "windows-bitlocker-suspended-firewall-public-off", "windows", "Windows 11 Pro"},
	{"mac-ok", "field", "darwin-filevault-on-compliant", "darwin", "macOS"},
	{"mac-bad", "hq", "darwin-encrypting-firewall-off-updates-pending", "darwin", "macOS"},
	{"lin-ok", "hq", "linux-luks2-nft-drop", "linux", "Debian GNU/Linux"},
	{"lin-bad", "hq", "linux-plain-nft-empty", "linux", "Debian GNU/Linux"},
}

func startFleet(t *testing.T, opts ...func(*dashboard.Config)) *fleet {
	t.Helper()
	return startFleetServer(t, nil, opts...)
}

// startFleetServer is startFleet with the collector's configuration
// changed by so (when not nil) as well.
func startFleetServer(t *testing.T, so func(*server.Config), opts ...func(*dashboard.Config)) *fleet {
	t.Helper()
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) {
		if so != nil {
			so(cfg)
		}
		cfg.Web = func(st store.Store) (http.Handler, error) {
			dc := dashboard.Config{Store: st, StaleAfter: staleAfter, Logger: cfg.Logger}
			for _, o := range opts {
				o(&dc)
			}
			return dashboard.New(dc)
		}
	})
	f := &fleet{c: c, st: c.Store().(store.Dashboard), base: "http://" + c.HTTPAddr, devices: map[string]string{}}
	for _, s := range seed {
		m, rec, err := source.OpenBundle(filepath.Join("..", "..", "agent", "testdata", "bundles", s.bundle))
		if err != nil {
			t.Fatal(err)
		}
		facts := collect.All(ctx, rec, m.CreatedAt)
		id, cert := c.Enroll(ctx, c.Token(s.group, 1, time.Hour), &wardv1.DeviceInfo{
			Hostname: s.host, Platform: s.platform, OsName: s.osName, OsVersion: "1", Architecture: "amd64", AgentVersion: "test", MachineId: s.host,
		})
		_, err = wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
			Sequence: 1, CollectedAt: timestamppb.Now(), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 1, Facts: facts,
		}})
		if err != nil {
			t.Fatalf("report %s: %v", s.host, err)
		}
		f.devices[s.host] = id
	}
	for _, u := range []struct{ name, role string }{{"amina", store.RoleAdmin}, {"victor", store.RoleViewer}} {
		hash, err := dashboard.HashPassword(u.name + "-correct-horse")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.CreateUser(ctx, store.User{Name: u.name, Role: u.role, Hash: hash, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// browser starts headless Chromium. Under CI=true a missing browser fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (apt-get install chromium); CI must run the browser tests")
		}
		t.Skip("chromium is not installed; apt-get install chromium to run the browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no timeout on this one
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func number(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	s := text(t, ctx, sel)
	n, err := strconv.Atoi(strings.Fields(s)[0])
	if err != nil {
		t.Fatalf("%s = %q, not a number", sel, s)
	}
	return n
}

const badPolicy = `name: field-strict
version: 2
rules:
  - id: never-passes
    title: A rule nothing passes
    family: os
    platforms: [windows, darwin, linux]
    require: "false"
    expected: Never.
    severity: dreadful
    remediation:
      en:
        windows: Nothing.
        darwin: Nothing.
        linux: Nothing.
`

func TestDashboardInBrowser(t *testing.T) {
	ctx := browser(t)
	f := startFleet(t)
	bg := context.Background()

	// Sign in as the admin; the overview's numbers are the store's.
	run(t, ctx, "sign in",
		chromedp.Navigate(f.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "amina"),
		chromedp.SendKeys(chromedp.CSS("#password"), "amina-correct-horse"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#counts")),
	)
	want, err := f.st.FleetCounts(bg, time.Now(), staleAfter)
	if err != nil {
		t.Fatal(err)
	}
	got := store.FleetCounts{
		Devices: number(t, ctx, "#n-devices"), Compliant: number(t, ctx, "#n-compliant"), Failing: number(t, ctx, "#n-failing"),
		Unknown: number(t, ctx, "#n-unknown"), Stale: number(t, ctx, "#n-stale"),
	}
	if got != want || want.Devices != len(seed) || want.Failing == 0 {
		t.Errorf("overview shows %+v, store has %+v", got, want)
	}
	if s := text(t, ctx, "#policy-1"); !strings.Contains(s, "disk-encrypted") {
		t.Errorf("failing per rule does not list disk-encrypted:\n%s", s)
	}

	// Filter devices: failing in group hq, then open one.
	run(t, ctx, "filter devices",
		chromedp.Navigate(f.base+"/devices"),
		chromedp.SetValue(chromedp.CSS("#f-status"), "failing"),
		chromedp.SetValue(chromedp.CSS("#f-group"), "hq"),
		chromedp.Click(chromedp.CSS("#apply")),
		chromedp.WaitVisible(chromedp.CSS("#filtered")),
	)
	p, err := f.st.ListDevices(bg, store.DeviceQuery{Now: time.Now(), StaleAfter: staleAfter, Status: store.StatusFailing, Group: "hq"})
	if err != nil {
		t.Fatal(err)
	}
	page, total := p.Devices, p.Total
	if n := number(t, ctx, "#total"); n != total || total == 0 {
		t.Fatalf("device list shows %d, store has %d", n, total)
	}
	listed := text(t, ctx, "#devices tbody")
	for _, d := range page {
		if !strings.Contains(listed, d.Hostname) {
			t.Errorf("failing hq device %s not listed:\n%s", d.Hostname, listed)
		}
	}
	if strings.Contains(listed, "win-bad") || strings.Contains(listed, "lin-ok") {
		t.Errorf("filtered list has devices of another group or status:\n%s", listed)
	}
	run(t, ctx, "open lin-bad",
		chromedp.Click(chromedp.Search(`//a[text()="lin-bad"]`)),
		chromedp.WaitVisible(chromedp.CSS("#rules")),
	)
	if s := text(t, ctx, "#rule-disk-encrypted"); !strings.Contains(s, "FAIL") {
		t.Errorf("lin-bad disk-encrypted row = %q, want FAIL", s)
	}

	// Upload a policy with an error: the problem is shown with its line.
	run(t, ctx, "upload a bad policy",
		chromedp.Navigate(f.base+"/policies"),
		chromedp.SetValue(chromedp.CSS("#p-group"), "field"),
		chromedp.SetValue(chromedp.CSS("#p-document"), badPolicy),
		chromedp.Click(chromedp.CSS("#p-apply")),
		chromedp.WaitVisible(chromedp.CSS("#problems")),
	)
	if s := text(t, ctx, "#problems"); !strings.Contains(s, "draft.yaml:10:") {
		t.Errorf("problems = %q, want draft.yaml:10 (the severity line)", s)
	}

	// What-if: the fixed draft would newly fail every field device.
	good := strings.Replace(badPolicy, "dreadful", "high", 1)
	run(t, ctx, "what-if",
		chromedp.SetValue(chromedp.CSS("#p-group"), "field"),
		chromedp.SetValue(chromedp.CSS("#p-document"), good),
		chromedp.Click(chromedp.CSS("#p-whatif")),
		chromedp.WaitVisible(chromedp.CSS("#whatif")),
	)
	if n, e := number(t, ctx, "#whatif-newly"), number(t, ctx, "#whatif-evaluated"); n != 3 || e != 3 {
		t.Errorf("what-if: %d of %d newly failing, want 3 of 3 (the field group)", n, e)
	}
	if ps, _ := f.st.Policies(bg); len(ps) != 0 {
		t.Errorf("what-if changed the stored policies: %+v", ps)
	}

	// Grant a waiver for lin-bad's disk encryption: shown as WAIVED.
	expires := time.Now().AddDate(0, 1, 0).Format("2006-01-02")
	run(t, ctx, "grant a waiver",
		chromedp.Navigate(f.base+"/waivers?device="+f.devices["lin-bad"]+"&rule=disk-encrypted"),
		chromedp.SendKeys(chromedp.CSS("#w-reason"), "replacement laptop ordered"),
		chromedp.SetValue(chromedp.CSS("#w-expires"), expires),
		chromedp.Click(chromedp.CSS("#w-submit")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	if s := text(t, ctx, "#waivers"); !strings.Contains(s, "replacement laptop ordered") || !strings.Contains(s, "active") {
		t.Errorf("waivers = %q", s)
	}
	run(t, ctx, "device page after waiver",
		chromedp.Navigate(f.base+"/devices/"+f.devices["lin-bad"]),
		chromedp.WaitVisible(chromedp.CSS("#rules")),
	)
	if s := text(t, ctx, "#rule-disk-encrypted"); !strings.Contains(s, "WAIVED") || strings.Contains(s, "PASS") {
		t.Errorf("waived rule row = %q, want WAIVED", s)
	}
	run(t, ctx, "audit log", chromedp.Navigate(f.base+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	if s := text(t, ctx, "#audit"); !strings.Contains(s, "waiver.create") || !strings.Contains(s, "policy.what-if") {
		t.Errorf("audit log = %q", s)
	}

	// Download the CSV with the browser's session.
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('/export?format=csv').then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("download CSV: %v", err)
	}
	checkCSV(t, f, body)
}

func checkCSV(t *testing.T, f *fleet, body string) {
	t.Helper()
	cr := csv.NewReader(strings.NewReader(body))
	cr.Comment = '#' // the metadata lines
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, body)
	}
	if len(recs) < 2 || strings.Join(recs[0], ",") != strings.Join(dashboard.ExportHeader, ",") {
		t.Fatalf("CSV header/rows: %v", recs)
	}
	want := 0
	for _, id := range f.devices {
		states, _ := f.st.RuleStates(context.Background(), id)
		for _, s := range states {
			if s.Collector != "" {
				want++
			}
		}
	}
	if len(recs)-1 != want {
		t.Errorf("CSV has %d rows, the store %d rule states", len(recs)-1, want)
	}
	waived := 0
	for _, r := range recs[1:] {
		row := map[string]string{}
		for i, h := range recs[0] {
			row[h] = r[i]
		}
		for _, k := range []string{"device_id", "hostname", "rule_id", "rule_title", "policy_name", "policy_version", "status", "expected"} {
			if row[k] == "" {
				t.Errorf("row %v: empty %s", r, k)
			}
		}
		if row["status"] == "WAIVED" {
			waived++
			if row["hostname"] != "lin-bad" || row["rule_id"] != "disk-encrypted" || row["verdict"] != "FAIL" || !strings.Contains(row["waiver_reason"], "replacement laptop") || row["waiver_expires"] == "" {
				t.Errorf("waived row = %v", row)
			}
		}
	}
	if waived != 1 {
		t.Errorf("%d WAIVED rows, want 1", waived)
	}
}

// client is a plain HTTP client that keeps the dashboard's cookies itself
// (net/http/cookiejar never sends Secure cookies over http://).
type client struct {
	t       *testing.T
	base    string
	cookies map[string]string
	// header is added to every request (X-Forwarded-For, Host).
	header http.Header
	hc     *http.Client
	// last is the latest response.
	last *http.Response
}

func newClient(t *testing.T, base string) *client {
	return newClientFrom(t, base, "")
}

// newClientFrom is a client whose connections come from the local
// address ip (any of 127.0.0.0/8 on Linux), or from any when "".
func newClientFrom(t *testing.T, base, ip string) *client {
	d := &net.Dialer{}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	hc := &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &client{t: t, base: base, cookies: map[string]string{}, header: http.Header{}, hc: hc}
}

func (c *client) do(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	for k, vs := range c.header {
		if k == "Host" {
			req.Host = vs[0]
			continue
		}
		req.Header[k] = vs
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	c.last = resp
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			c.t.Errorf("cookie %s: Secure %v HttpOnly %v SameSite %v", ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite)
		}
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return resp, string(b)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

// login signs in and returns the session's CSRF token.
func (c *client) login(user, password string) (int, string) {
	c.t.Helper()
	_, page := c.do("GET", "/login", nil)
	resp, _ := c.do("POST", "/login", url.Values{"csrf": {csrfOf(c.t, page)}, "user": {user}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, ""
	}
	_, home := c.do("GET", "/", nil)
	return resp.StatusCode, csrfOf(c.t, home)
}

func TestRolesCSRFAndThrottling(t *testing.T) {
	f := startFleet(t)

	viewer := newClient(t, f.base)
	code, csrf := viewer.login("victor", "victor-correct-horse")
	if code != http.StatusSeeOther {
		t.Fatalf("viewer sign-in: %d", code)
	}
	if resp, _ := viewer.do("GET", "/devices", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("viewer GET /devices: %d", resp.StatusCode)
	}
	for _, p := range []string{"/tokens", "/audit"} {
		if resp, _ := viewer.do("GET", p, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer GET %s: %d, want 403", p, resp.StatusCode)
		}
	}
	posts := map[string]url.Values{
		"/policies":                   {"group": {"field"}, "document": {"x"}, "action": {"apply"}},
		"/waivers":                    {"device": {f.devices["win-bad"]}, "rule": {"disk-encrypted"}, "reason": {"r"}, "expires": {"2099-01-01"}},
		"/waivers/wvr_x/revoke":       {},
		"/tokens":                     {"group": {"field"}, "uses": {"5"}, "ttl": {"1h"}},
		"/tokens/tok_anything/revoke": {},
	}
	for p, form := range posts {
		form.Set("csrf", csrf)
		if resp, _ := viewer.do("POST", p, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", p, resp.StatusCode)
		}
	}
	if ws, _ := f.st.Waivers(context.Background()); len(ws) != 0 {
		t.Errorf("a viewer's POST created waivers: %+v", ws)
	}
	if ts, _ := f.st.Tokens(context.Background()); len(ts) != len(seed) {
		t.Errorf("a viewer's POST changed tokens: %d", len(ts))
	}

	admin := newClient(t, f.base)
	code, csrf = admin.login("amina", "amina-correct-horse")
	if code != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %d", code)
	}
	form := url.Values{"group": {"field"}, "uses": {"2"}, "ttl": {"1h"}}
	if resp, _ := admin.do("POST", "/tokens", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d, want 403", resp.StatusCode)
	}
	form.Set("csrf", "forged")
	if resp, _ := admin.do("POST", "/tokens", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	form.Set("csrf", csrf)
	resp, page := admin.do("POST", "/tokens", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "wrd_") && !strings.Contains(page, "shown once") {
		t.Errorf("POST with the CSRF token: %d", resp.StatusCode)
	}
	if ts, _ := f.st.Tokens(context.Background()); len(ts) != len(seed)+1 {
		t.Errorf("tokens = %d, want one more", len(ts))
	}
	good := strings.Replace(badPolicy, "dreadful", "high", 1)
	resp, page = admin.do("POST", "/policies", url.Values{"csrf": {csrf}, "group": {"field"}, "document": {good}, "action": {"apply"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "now uses policy field-strict version 2") {
		t.Errorf("apply a valid policy: %d", resp.StatusCode)
	}
	if p, err := f.st.Policy(context.Background(), "field"); err != nil || p.Name != "field-strict" || p.Version != 2 {
		t.Errorf("stored policy of field = %+v, %v", p, err)
	}
	// The CLI's rule: the same content again is no change; other content
	// under the same version, or an older version, is refused.
	if resp, page := admin.do("POST", "/policies", url.Values{"csrf": {csrf}, "group": {"field"}, "document": {good}, "action": {"apply"}}); resp.StatusCode != http.StatusOK || !strings.Contains(page, "nothing changed") {
		t.Errorf("re-applying the same document: %d", resp.StatusCode)
	}
	changed := strings.Replace(good, "severity: high", "severity: low", 1)
	if changed == good {
		t.Fatal("test policy has no 'severity: high' to change")
	}
	if resp, page := admin.do("POST", "/policies", url.Values{"csrf": {csrf}, "group": {"field"}, "document": {changed}, "action": {"apply"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "raise the version") {
		t.Errorf("other content under the same version: %d", resp.StatusCode)
	}
	older := strings.Replace(good, "version: 2", "version: 1", 1)
	if resp, page := admin.do("POST", "/policies", url.Values{"csrf": {csrf}, "group": {"field"}, "document": {older}, "action": {"apply"}}); older == good || resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "is older") {
		t.Errorf("an older version: %d", resp.StatusCode)
	}
	if p, _ := f.st.Policy(context.Background(), "field"); string(p.Document) != good {
		t.Error("a refused upload changed the stored policy")
	}
	if es, _ := f.st.Audit(context.Background(), 50); !hasAction(es, "policy.apply") || !hasAction(es, "token.create") {
		t.Errorf("audit log lacks policy.apply or token.create: %+v", es)
	}
	anon := newClient(t, f.base)
	if resp, _ := anon.do("POST", "/login", url.Values{"user": {"amina"}, "password": {"amina-correct-horse"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without CSRF token: %d, want 403", resp.StatusCode)
	}

	// Five wrong passwords lock the user out, even with the right one.
	for i := range 5 {
		if code, _ := anon.login("victor", fmt.Sprintf("wrong-%d", i)); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i, code)
		}
	}
	if code, _ := anon.login("victor", "victor-correct-horse"); code != http.StatusTooManyRequests {
		t.Errorf("right password after five wrong ones: %d, want 429", code)
	}
}

func hasAction(es []store.AuditEntry, action string) bool {
	for _, e := range es {
		if e.Action == action {
			return true
		}
	}
	return false
}
