package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	pathpkg "path"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store"
)

// The fuzz targets post to the dashboard's real handler, over a real
// SQLite store with a few devices, as a signed-in admin with the session's
// CSRF token. Every answer must be one the handler means to give (never a
// 5xx, never a panic), carry the security headers, and the same form with
// a wrong CSRF token must be refused (403).
//
//	go test -run XXX -fuzz FuzzTokenCreate -fuzztime 10m ./collector/dashboard

type fuzzDash struct {
	h      http.Handler
	cookie *http.Cookie
	st     store.Dashboard
}

func newFuzzDash(f *testing.F) *fuzzDash {
	_, cookie, st := benchFleetStore(f, 3, -1)
	h, err := dashboard.New(dashboard.Config{
		Store: st, CacheFor: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzDash{h: h, cookie: cookie, st: st}
}

// post sends form to path as the admin and checks the invariants; want
// lists the statuses allowed.
func (d *fuzzDash) post(t *testing.T, path string, form url.Values, want ...int) *httptest.ResponseRecorder {
	t.Helper()
	send := func(csrf string) *httptest.ResponseRecorder {
		form.Set("csrf", csrf)
		req := httptest.NewRequest("POST", "/", strings.NewReader(form.Encode()))
		req.URL.Path = path
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(d.cookie)
		w := httptest.NewRecorder()
		d.h.ServeHTTP(w, req)
		return w
	}
	if pathpkg.Clean(path) != path {
		// The mux sends an unclean path to its clean form before any
		// handler runs.
		want = []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
		checkAnswer(t, "POST "+path, send("not-the-token"), want)
	} else if w := send("not-the-token"); w.Code != http.StatusForbidden {
		t.Fatalf("POST %s with a wrong CSRF token: %d, want 403", path, w.Code)
	}
	w := send("x")
	checkAnswer(t, "POST "+path, w, want)
	return w
}

func checkAnswer(t *testing.T, what string, w *httptest.ResponseRecorder, want []int) {
	t.Helper()
	ok := false
	for _, c := range want {
		ok = ok || w.Code == c
	}
	if !ok {
		t.Fatalf("%s: %d, want one of %v\n%.2000s", what, w.Code, want, w.Body.String())
	}
	if !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'self'") || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Fatalf("%s: security headers missing: %v", what, w.Header())
	}
}

func FuzzTokenCreate(f *testing.F) {
	d := newFuzzDash(f)
	f.Add("field", "5", "24h")
	f.Add("", "0", "-1h")
	f.Add("hq", "99999999999999999999", "1ns")
	f.Add("a\x00b", "1", "8760h1m")
	f.Fuzz(func(t *testing.T, group, uses, ttl string) {
		d.post(t, "/tokens", url.Values{"group": {group}, "uses": {uses}, "ttl": {ttl}}, http.StatusOK, http.StatusUnprocessableEntity)
	})
}

func FuzzTokenRevoke(f *testing.F) {
	d := newFuzzDash(f)
	f.Add("tok_anything")
	f.Add("")
	f.Add("../../waivers")
	f.Fuzz(func(t *testing.T, id string) {
		d.post(t, "/tokens/"+url.PathEscape(id)+"/revoke", url.Values{}, http.StatusSeeOther, http.StatusNotFound, http.StatusUnprocessableEntity)
	})
}

const fuzzPolicy = `name: field-strict
version: 2
rules:
  - id: never-passes
    title: A rule nothing passes
    family: os
    platforms: [windows, darwin, linux]
    require: "false"
    expected: Never.
    severity: high
    remediation:
      en:
        windows: Nothing.
        darwin: Nothing.
        linux: Nothing.
`

func FuzzPolicyUpload(f *testing.F) {
	d := newFuzzDash(f)
	f.Add("field", fuzzPolicy, "apply")
	f.Add("field", fuzzPolicy, "whatif")
	f.Add("hq", strings.Replace(fuzzPolicy, "high", "dreadful", 1), "apply")
	f.Add("", "", "")
	f.Add("field", "name: [", "whatif")
	f.Fuzz(func(t *testing.T, group, document, action string) {
		d.post(t, "/policies", url.Values{"group": {group}, "document": {document}, "action": {action}}, http.StatusOK, http.StatusUnprocessableEntity, http.StatusBadRequest, http.StatusSeeOther)
	})
}

func FuzzWaiverCreate(f *testing.F) {
	d := newFuzzDash(f)
	f.Add("dev_00000001", "", "disk-encrypted", "replacement ordered", "2099-01-01")
	f.Add("", "field", "firewall-on", "r", "2026-12-31")
	f.Add("dev_00000001", "field", "", "", "tomorrow")
	f.Add("nope", "", "x", "y", "2000-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, device, group, rule, reason, expires string) {
		d.post(t, "/waivers", url.Values{"device": {device}, "group": {group}, "rule": {rule}, "reason": {reason}, "expires": {expires}}, http.StatusSeeOther, http.StatusUnprocessableEntity)
	})
}

func FuzzWaiverRevoke(f *testing.F) {
	d := newFuzzDash(f)
	f.Add("wvr_x")
	f.Add("")
	f.Fuzz(func(t *testing.T, id string) {
		d.post(t, "/waivers/"+url.PathEscape(id)+"/revoke", url.Values{}, http.StatusSeeOther, http.StatusNotFound, http.StatusUnprocessableEntity)
	})
}

func FuzzDeviceRetire(f *testing.F) {
	d := newFuzzDash(f)
	f.Add("dev_00000001", "dev_00000002")
	f.Add("nope", "")
	f.Add("dev_00000002", "../../tokens")
	f.Fuzz(func(t *testing.T, id, from string) {
		w := d.post(t, "/devices/"+url.PathEscape(id)+"/retire", url.Values{"from": {from}}, http.StatusSeeOther, http.StatusNotFound)
		if loc := w.Header().Get("Location"); w.Code == http.StatusSeeOther && (!strings.HasPrefix(loc, "/devices/") || strings.HasPrefix(loc, "//")) {
			t.Fatalf("retire redirects off the device pages: %q", loc)
		}
	})
}

// FuzzLogin signs in with fuzzed names, passwords and addresses (the
// direct peer, and X-Forwarded-For through a trusted 10.0.0.0/8 proxy):
// only the right password signs in; a name is never echoed past 64 bytes.
func FuzzLogin(f *testing.F) {
	dashboard.UseCheapHashes()
	d := newFuzzDash(f)
	// bcrypt's cheapest cost: the handler's comparison is the same, faster.
	hash, _ := bcrypt.GenerateFromPassword([]byte("fuzzing-password"), bcrypt.MinCost)
	if err := d.st.CreateUser(context.Background(), store.User{Name: "fuzzer", Role: store.RoleViewer, Hash: hash, CreatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	f.Add("fuzzer", "fuzzing-password", byte(1), "")
	f.Add("fuzzer", "wrong", byte(2), "198.51.100.7")
	f.Add(" fuzzer ", "fuzzing-password", byte(3), "198.51.100.7, 10.0.0.9")
	f.Add(strings.Repeat("é", 100), "x", byte(4), "garbage")
	f.Fuzz(func(t *testing.T, user, password string, peer byte, xff string) {
		form := url.Values{"csrf": {"tok"}, "user": {user}, "password": {password}}
		req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "__Host-ward_login", Value: "tok"})
		req.RemoteAddr = fmt.Sprintf("10.0.0.%d:4000", peer)
		if peer%2 == 1 {
			req.RemoteAddr = fmt.Sprintf("192.0.2.%d:4000", peer)
		}
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		w := httptest.NewRecorder()
		d.h.ServeHTTP(w, req)
		right := strings.TrimSpace(user) == "fuzzer" && password == "fuzzing-password"
		switch {
		case w.Code == http.StatusSeeOther && !right && !(strings.TrimSpace(user) == "bench" && password == "benchmark-password"):
			t.Fatalf("signed in as %q with %q", user, password)
		case w.Code == http.StatusSeeOther:
		case w.Code == http.StatusUnauthorized && right:
			t.Fatal("the right password was refused as wrong")
		case w.Code == http.StatusUnauthorized || w.Code == http.StatusTooManyRequests:
			if len(user) > 200 && strings.Contains(w.Body.String(), strings.TrimSpace(user)[:200]) {
				t.Fatal("the page echoes a long user name")
			}
		default:
			t.Fatalf("sign-in: %d\n%.2000s", w.Code, w.Body.String())
		}
	})
}
