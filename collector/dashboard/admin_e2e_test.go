package dashboard_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// noOverflow checks the page at phone width (390 px) scrolls no wider
// than the screen: wide tables scroll in their own box.
func noOverflow(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	u, _ := url.Parse(path)
	name := "phone" + strings.NewReplacer("/", "-", "?", "-", "=", "-", ".", "-").Replace(u.Path)
	run(t, ctx, "phone width "+path, chromedp.EmulateViewport(390, 844), chromedp.Navigate(path), chromedp.WaitVisible(chromedp.CSS("main")))
	w, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, name)
	if w > 390 {
		t.Errorf("%s at 390 px is %d px wide", path, w)
	}
	run(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))
}

// clearMessages removes the page's notice and error, so waiting for one
// after a click waits for the next page's, not this one's.
func clearMessages() chromedp.Action[chromedp.Void] {
	return script(`document.querySelectorAll("#notice, #error").forEach(e => e.remove()); true`)
}

var shownPassword = regexp.MustCompile(`copy it now[^:]*\): (\S+)`)

func auditHas(t *testing.T, st store.Dashboard, actor, action, target, detail string) {
	t.Helper()
	es, err := st.AuditQuery(context.Background(), store.AuditFilter{Actor: actor, Action: action, Target: target, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.Contains(e.Detail, detail) {
			return
		}
	}
	t.Errorf("no audit entry by %s, %s on %s with %q: %+v", actor, action, target, detail, es)
}

// TestAdministrationInBrowser drives every admin page and action in
// Chromium as the admin, then checks the viewer sees no admin control.
func TestAdministrationInBrowser(t *testing.T) {
	ctx := browser(t)
	f := startFleet(t)
	bg := context.Background()
	run(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))
	signIn(t, ctx, f.base, "amina")

	// Users: the list is the store's.
	run(t, ctx, "users page", chromedp.Click(chromedp.Search(`//nav/a[text()="Users"]`)), chromedp.WaitVisible(chromedp.CSS("#users")))
	if s := text(t, ctx, "#user-victor"); !strings.Contains(s, "viewer") {
		t.Errorf("victor's row = %q", s)
	}
	screenshot(t, ctx, "admin-users")

	// Add a viewer with a generated password, shown once; it signs in.
	run(t, ctx, "add zoe",
		chromedp.SendKeys(chromedp.CSS("#u-name"), "zoe"),
		chromedp.SetValue(chromedp.CSS("#u-role"), "viewer"),
		chromedp.Click(chromedp.CSS("#u-submit")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	m := shownPassword.FindStringSubmatch(text(t, ctx, "#notice"))
	if m == nil {
		t.Fatalf("no generated password in %q", text(t, ctx, "#notice"))
	}
	zoe := newClient(t, f.base)
	if code, _ := zoe.login("zoe", m[1]); code != http.StatusSeeOther {
		t.Fatalf("zoe signs in with the shown password: %d", code)
	}
	if resp, _ := zoe.do("GET", "/users", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("zoe (viewer) GET /users: %d, want 403", resp.StatusCode)
	}
	auditHas(t, f.st, "amina", "user.add", "zoe", "role viewer")

	// A role change applies to zoe's open session at once.
	run(t, ctx, "make zoe admin", clearMessages(), chromedp.Click(chromedp.CSS("#role-zoe")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if u, _ := f.st.User(bg, "zoe"); u.Role != store.RoleAdmin {
		t.Errorf("zoe's role = %q, want admin", u.Role)
	}
	if resp, _ := zoe.do("GET", "/users", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("zoe (now admin) GET /users: %d", resp.StatusCode)
	}
	auditHas(t, f.st, "amina", "user.set-role", "zoe", "viewer → admin")

	// End her sessions: her browser is signed out.
	if n := number(t, ctx, "#user-zoe .sessions"); n != 1 {
		t.Errorf("zoe's live sessions shown = %d, want 1", n)
	}
	run(t, ctx, "end zoe's sessions", clearMessages(), chromedp.Click(chromedp.CSS("#end-zoe")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if s := text(t, ctx, "#notice"); !strings.Contains(s, "Ended 1 session(s) of zoe") {
		t.Errorf("notice = %q", s)
	}
	if resp, _ := zoe.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("zoe after end-sessions GET /: %d %s, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	auditHas(t, f.st, "amina", "user.end-sessions", "zoe", "")

	// Reset her password: the new one works, the old does not.
	run(t, ctx, "reset zoe's password", clearMessages(), chromedp.Click(chromedp.CSS("#password-zoe")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	m2 := shownPassword.FindStringSubmatch(text(t, ctx, "#notice"))
	if m2 == nil || m2[1] == m[1] {
		t.Fatalf("no new password in %q", text(t, ctx, "#notice"))
	}
	if u, _ := f.st.User(bg, "zoe"); bcrypt.CompareHashAndPassword(u.Hash, []byte(m2[1])) != nil {
		t.Error("the shown password is not zoe's")
	}
	if code, _ := newClient(t, f.base).login("zoe", m[1]); code != http.StatusUnauthorized {
		t.Errorf("zoe's old password: %d, want 401", code)
	}
	auditHas(t, f.st, "amina", "user.reset-password", "zoe", "")

	// The last admin stays: with zoe a viewer again, amina cannot step down.
	run(t, ctx, "make zoe viewer", clearMessages(), chromedp.Click(chromedp.CSS("#role-zoe")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	run(t, ctx, "demote amina", clearMessages(), chromedp.Click(chromedp.CSS("#role-amina")), chromedp.WaitVisible(chromedp.CSS("#error")))
	if s := text(t, ctx, "#error"); !strings.Contains(s, "only admin") {
		t.Errorf("demoting the last admin: %q", s)
	}
	screenshot(t, ctx, "admin-users-last-admin")
	if u, _ := f.st.User(bg, "amina"); u.Role != store.RoleAdmin {
		t.Errorf("amina's role = %q after the refusal", u.Role)
	}
	noOverflow(t, ctx, f.base+"/users")

	// Remove zoe, after typing her name.
	run(t, ctx, "remove zoe", chromedp.Navigate(f.base+"/users"), chromedp.Click(chromedp.CSS("#remove-zoe")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	screenshot(t, ctx, "admin-user-remove-confirm")
	run(t, ctx, "wrong word", chromedp.SendKeys(chromedp.CSS("#confirm-word"), "zo"), chromedp.Click(chromedp.CSS("#confirm-submit")), chromedp.WaitVisible(chromedp.CSS("#error")))
	if _, err := f.st.User(bg, "zoe"); err != nil {
		t.Fatalf("zoe removed without the confirmation: %v", err)
	}
	run(t, ctx, "confirm", chromedp.SendKeys(chromedp.CSS("#confirm-word"), "zoe"), chromedp.Click(chromedp.CSS("#confirm-submit")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if _, err := f.st.User(bg, "zoe"); err == nil {
		t.Error("zoe still exists")
	}
	if s := text(t, ctx, "#users"); strings.Contains(s, "zoe") {
		t.Errorf("users page still lists zoe: %q", s)
	}
	auditHas(t, f.st, "amina", "user.remove", "zoe", "was viewer")

	// Revoke a device, after typing its hostname.
	lin := f.devices["lin-ok"]
	run(t, ctx, "device page", chromedp.Navigate(f.base+"/devices/"+lin), chromedp.Click(chromedp.CSS("#revoke")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	screenshot(t, ctx, "admin-device-revoke-confirm")
	noOverflow(t, ctx, f.base+"/devices/"+lin+"/revoke")
	run(t, ctx, "revoke lin-ok",
		chromedp.Navigate(f.base+"/devices/"+lin+"/revoke"),
		chromedp.SendKeys(chromedp.CSS("#confirm-word"), "lin-ok"),
		chromedp.Click(chromedp.CSS("#confirm-submit")),
		chromedp.WaitVisible(chromedp.CSS("#revoked")),
	)
	if s := text(t, ctx, "#status"); s != "revoked" {
		t.Errorf("status after revoke = %q", s)
	}
	if d, _ := f.st.Device(bg, lin); !d.Revoked() {
		t.Error("lin-ok is not revoked in the store")
	}
	auditHas(t, f.st, "amina", "device.revoke", lin, "hostname lin-ok")

	// A token's rollout: two devices enrol with it, one reports.
	run(t, ctx, "create a token",
		chromedp.Navigate(f.base+"/tokens"),
		chromedp.SendKeys(chromedp.CSS(`#new-token input[name="group"]`), "field"),
		chromedp.SetValue(chromedp.CSS(`#new-token input[name="uses"]`), "3"),
		chromedp.Click(chromedp.CSS(`#new-token button`)),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	plain := strings.TrimSpace(text(t, ctx, "#notice")[strings.LastIndex(text(t, ctx, "#notice"), ":")+1:])
	ts, _ := f.st.Tokens(bg)
	tok := ts[0]
	_, cert := f.c.Enroll(bg, plain, &wardv1.DeviceInfo{Hostname: "new-1", Platform: "linux", AgentVersion: "8.8.8"})
	f.c.Enroll(bg, plain, &wardv1.DeviceInfo{Hostname: "new-2", Platform: "linux", AgentVersion: "8.8.8"})
	if _, err := wardv1grpc.NewAgentServiceClient(f.c.Dial(&cert)).Report(bg, &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: 1, CollectedAt: timestamppb.Now(), AgentVersion: "9.9.9", PolicyName: "baseline", PolicyVersion: 1, Facts: &wardv1.Facts{CollectedAt: timestamppb.Now()}}}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "rollout", chromedp.Navigate(f.base+"/tokens"), chromedp.Click(chromedp.CSS("#rollout-"+tok.ID)), chromedp.WaitVisible(chromedp.CSS("#rollout")))
	if e, n := number(t, ctx, "#n-enrolled"), number(t, ctx, "#n-never"); e != 2 || n != 1 {
		t.Errorf("rollout shows %d enrolled, %d never reported; want 2 and 1", e, n)
	}
	if s := text(t, ctx, "#versions"); !strings.Contains(s, "8.8.8: 1") || !strings.Contains(s, "9.9.9: 1") {
		t.Errorf("agent versions = %q", s)
	}
	if s := text(t, ctx, "#rollout"); !strings.Contains(s, "new-1") || !strings.Contains(s, "never reported") {
		t.Errorf("rollout table = %q", s)
	}
	screenshot(t, ctx, "admin-token-rollout")
	noOverflow(t, ctx, f.base+"/tokens/"+tok.ID)

	// A waiver granted by hostname lists the hostname.
	run(t, ctx, "waiver by hostname",
		chromedp.Navigate(f.base+"/waivers"),
		chromedp.SendKeys(chromedp.CSS("#w-device"), "win-bad"),
		chromedp.SendKeys(chromedp.CSS("#w-rule"), "firewall-on"),
		chromedp.SendKeys(chromedp.CSS("#w-reason"), "travel router in use"),
		chromedp.SetValue(chromedp.CSS("#w-expires"), time.Now().AddDate(0, 0, 10).Format("2006-01-02")),
		chromedp.Click(chromedp.CSS("#w-submit")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	if s := text(t, ctx, "#waivers"); !strings.Contains(s, "win-bad") || !strings.Contains(s, f.devices["win-bad"]) {
		t.Errorf("waivers = %q, want the hostname and id", s)
	}
	if ws, _ := f.st.Waivers(bg); len(ws) != 1 || ws[0].DeviceID != f.devices["win-bad"] || ws[0].CreatedBy != "amina" {
		t.Errorf("stored waivers = %+v", ws)
	}
	screenshot(t, ctx, "admin-waivers")
	noOverflow(t, ctx, f.base+"/waivers")

	// The audit log, filtered.
	run(t, ctx, "audit filter",
		chromedp.Navigate(f.base+"/audit"),
		chromedp.SendKeys(chromedp.CSS("#a-action"), "user."),
		// The unfiltered page has #audit too: wait for the next one's.
		clickLoads("#a-apply", "#audit"),
	)
	s := text(t, ctx, "#audit tbody")
	for _, want := range []string{"user.add", "user.set-role", "user.end-sessions", "user.reset-password", "user.remove"} {
		if !strings.Contains(s, want) {
			t.Errorf("audit filtered by user. lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "device.revoke") || strings.Contains(s, "sign-in") {
		t.Errorf("audit filtered by user. shows other actions:\n%s", s)
	}
	screenshot(t, ctx, "admin-audit-filtered")
	noOverflow(t, ctx, f.base+"/audit")

	// The viewer: no admin link or button, and 403 for the pages.
	run(t, ctx, "sign out", chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.CSS("#login")))
	signIn(t, ctx, f.base, "victor")
	if s := text(t, ctx, "header nav"); strings.Contains(s, "Users") || strings.Contains(s, "Tokens") || strings.Contains(s, "Audit") {
		t.Errorf("viewer's nav = %q", s)
	}
	for _, c := range []struct{ path, name, absent string }{
		// The evidence download is a viewer's too: every other button is an admin's.
		{"/devices/" + f.devices["win-bad"], "viewer-device", "#revoke, button:not(#ev-download)"},
		{"/waivers", "viewer-waivers", "#waive, #waivers button"},
	} {
		run(t, ctx, "viewer "+c.path, chromedp.Navigate(f.base+c.path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main `+strings.ReplaceAll(c.absent, ", ", `, main `)+`").length`))
		if err != nil || n != 0 {
			t.Errorf("viewer sees %d admin controls (%s) on %s (%v)", n, c.absent, c.path, err)
		}
		screenshot(t, ctx, c.name)
	}
	for _, p := range []string{"/users", "/devices/" + f.devices["win-bad"] + "/revoke", "/tokens/" + tok.ID, "/audit"} {
		run(t, ctx, "viewer "+p, chromedp.Navigate(f.base+p), chromedp.WaitVisible(chromedp.CSS("#error")))
		if s := text(t, ctx, "#error"); !strings.Contains(s, "admin role") {
			t.Errorf("viewer at %s: %q", p, s)
		}
	}
	screenshot(t, ctx, "viewer-users-403")
}

// TestAdministrationRefusedToViewers: every admin page and action
// answers a viewer 403 and changes nothing, and every POST needs the
// session's CSRF token, admin or not.
func TestAdministrationRefusedToViewers(t *testing.T) {
	f := startFleet(t)
	bg := context.Background()
	win := f.devices["win-bad"]
	ts, _ := f.st.Tokens(bg)
	viewer := newClient(t, f.base)
	code, csrf := viewer.login("victor", "victor-correct-horse")
	if code != http.StatusSeeOther {
		t.Fatalf("viewer sign-in: %d", code)
	}
	for _, p := range []string{"/users", "/users/amina/remove", "/devices/" + win + "/revoke", "/tokens/" + ts[0].ID, "/audit?action=user."} {
		if resp, body := viewer.do("GET", p, nil); resp.StatusCode != http.StatusForbidden || strings.Contains(body, "amina-correct") {
			t.Errorf("viewer GET %s: %d, want 403", p, resp.StatusCode)
		}
	}
	posts := map[string]url.Values{
		"/users":                      {"name": {"mallory"}, "role": {"admin"}, "password": {"mallory-long-password"}},
		"/users/victor/role":          {"role": {"admin"}},
		"/users/amina/role":           {"role": {"viewer"}},
		"/users/amina/password":       {},
		"/users/amina/sessions/end":   {},
		"/users/amina/remove":         {"confirm": {"amina"}},
		"/devices/" + win + "/revoke": {"confirm": {"win-bad"}},
	}
	admin := newClient(t, f.base)
	_, adminCSRF := admin.login("amina", "amina-correct-horse")
	for p, form := range posts {
		form.Set("csrf", csrf)
		if resp, _ := viewer.do("POST", p, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", p, resp.StatusCode)
		}
		// The admin, without the CSRF token or with another's: refused too.
		for _, tok := range []string{"", csrf} {
			form.Set("csrf", tok)
			if resp, _ := admin.do("POST", p, form); resp.StatusCode != http.StatusForbidden {
				t.Errorf("admin POST %s with CSRF %q: %d, want 403", p, tok, resp.StatusCode)
			}
		}
	}
	us, _ := f.st.UserList(bg, time.Now())
	if len(us) != 2 || us[0].Role != store.RoleAdmin || us[1].Role != store.RoleViewer || us[0].Sessions != 1 {
		t.Errorf("users after refused POSTs = %+v", us)
	}
	if d, _ := f.st.Device(bg, win); d.Revoked() {
		t.Error("a refused POST revoked win-bad")
	}
	if es, _ := f.st.AuditQuery(bg, store.AuditFilter{Action: "user."}); len(es) != 0 {
		t.Errorf("refused POSTs wrote audit entries: %+v", es)
	}
	// The admin's own requests with the token go through.
	if resp, _ := admin.do("POST", "/devices/"+win+"/revoke", url.Values{"csrf": {adminCSRF}, "confirm": {"WIN-BAD"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("revoke with the wrong confirmation: %d, want 422", resp.StatusCode)
	}
	if resp, _ := admin.do("POST", "/devices/"+win+"/revoke", url.Values{"csrf": {adminCSRF}, "confirm": {"win-bad"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("revoke confirmed: %d, want 303", resp.StatusCode)
	}
	if d, _ := f.st.Device(bg, win); !d.Revoked() {
		t.Error("the confirmed revoke did not revoke")
	}
	if resp, _ := admin.do("POST", "/users/nobody/role", url.Values{"csrf": {adminCSRF}, "role": {"admin"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("role of a missing user: %d, want 404", resp.StatusCode)
	}
	if resp, _ := admin.do("POST", "/users", url.Values{"csrf": {adminCSRF}, "name": {"cli:root"}, "role": {"admin"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a user named like the CLI's actor: %d, want 422", resp.StatusCode)
	}
	if resp, _ := admin.do("POST", "/users/amina/remove", url.Values{"csrf": {adminCSRF}, "confirm": {"amina"}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("removing the last admin: %d, want 409", resp.StatusCode)
	}
}
