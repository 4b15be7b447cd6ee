package dashboard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/dashboard/oidctest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
)

const (
	idpClientID     = "ward-dashboard"
	idpClientSecret = "s3cret-never-in-a-log"
)

func startIDP(t *testing.T) *oidctest.Provider {
	return oidctest.Start(t, idpClientID, idpClientSecret)
}

// oidcDash is a dashboard on a fresh SQLite store, over real HTTP, that
// signs in through p.
type oidcDash struct {
	url string
	st  store.Dashboard
	log *syncBuffer
}

func startOIDCDash(t *testing.T, p *oidctest.Provider, domains ...string) *oidcDash {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := &oidcDash{st: st, log: &syncBuffer{}}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	d.url = srv.URL
	h, err = dashboard.New(dashboard.Config{
		Store: st, InsecureCookies: true, Logger: slog.New(slog.NewJSONHandler(d.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OIDC: &dashboard.OIDC{Issuer: p.URL(), ClientID: idpClientID, ClientSecret: idpClientSecret, RedirectURL: srv.URL + dashboard.OIDCCallbackPath, AllowedDomains: domains, Label: "Sign in with Example ID"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// browserless is a cookie-keeping HTTP client that follows redirects.
func browserless(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestOIDCSignIn(t *testing.T) {
	p := startIDP(t)
	d := startOIDCDash(t, p, "example.com")
	ctx := context.Background()

	// The sign-in page offers the provider beside the password form.
	c := browserless(t)
	_, page := get(t, c, d.url+"/login")
	if !strings.Contains(page, `href="/login/oidc"`) || !strings.Contains(page, "Sign in with Example ID") || !strings.Contains(page, `id="password"`) {
		t.Fatalf("sign-in page lacks the provider's button or the password form:\n%s", page)
	}

	// An admin signs in: the whole flow over HTTP, ending on a page
	// that refreshes to the overview (the Strict session cookie).
	p.Next(map[string]any{"email": "amina@example.com", "email_verified": true, "groups": []string{"staff", "ward-admins"}}, "")
	resp, page := get(t, c, d.url+"/login/oidc")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="signedin"`) || resp.Header.Get("Refresh") != "0; url=/" {
		t.Fatalf("after the provider: %d %q\n%s", resp.StatusCode, resp.Header.Get("Refresh"), page)
	}
	q := p.LastAuthorize()
	if q.Get("nonce") == "" || q.Get("state") == "" || q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256" ||
		!strings.Contains(q.Get("scope"), "openid") || q.Get("redirect_uri") != d.url+dashboard.OIDCCallbackPath {
		t.Errorf("authorization request = %v", q)
	}
	_, home := get(t, c, d.url+"/")
	if !strings.Contains(home, `<span id="whoami">amina@example.com (admin)</span>`) {
		t.Fatalf("overview after OIDC sign-in does not show the admin:\n%s", home)
	}
	// The session is a local one's: same cookie, its CSRF token guards
	// POSTs, and it ends with sign-out.
	u, _ := url.Parse(d.url)
	var session *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "ward_session" {
			session = ck
		}
		if ck.Name == "ward_oidc" {
			t.Errorf("the flow's cookie outlived the callback")
		}
	}
	if session == nil {
		t.Fatal("no session cookie after OIDC sign-in")
	}
	resp, _ = postForm(t, c, d.url+"/logout", url.Values{"csrf": {"wrong"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	us, err := d.st.User(ctx, "amina@example.com")
	if err != nil || us.Role != store.RoleAdmin || len(us.Hash) != 0 {
		t.Fatalf("stored user = %+v, %v", us, err)
	}
	es, _ := d.st.Audit(ctx, 10)
	if len(es) == 0 || es[0].Action != "sign-in" || es[0].Actor != "amina@example.com" || !strings.Contains(es[0].Detail, "OpenID Connect ("+p.URL()+") as admin") {
		t.Fatalf("audit = %+v", es)
	}
	// No password signs an OIDC user in locally.
	lc := browserless(t)
	_, lp := get(t, lc, d.url+"/login")
	if resp, _ := postForm(t, lc, d.url+"/login", url.Values{"csrf": {csrfOf(t, lp)}, "user": {"amina@example.com"}, "password": {""}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("password sign-in of an OIDC user: %d, want 401", resp.StatusCode)
	}

	// Moved to the viewers at the provider: the next sign-in is a viewer,
	// and the server refuses it admin pages.
	p.Next(map[string]any{"email": "amina@example.com", "email_verified": "true", "groups": "ward-viewers"}, "")
	c2 := browserless(t)
	if resp, page := get(t, c2, d.url+"/login/oidc"); resp.StatusCode != http.StatusOK {
		t.Fatalf("viewer sign-in: %d\n%s", resp.StatusCode, page)
	}
	_, home = get(t, c2, d.url+"/")
	if !strings.Contains(home, "amina@example.com (viewer)") {
		t.Fatalf("after the move the user is not a viewer:\n%s", home)
	}
	if resp, _ := get(t, c2, d.url+"/tokens"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer from OIDC got /tokens: %d", resp.StatusCode)
	}

	// Every refusal: a clear page, no session.
	if err := d.st.CreateUser(ctx, store.User{Name: "dana@example.com", Role: store.RoleViewer, Hash: []byte("$2a$local"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	good := map[string]any{"email": "bo@example.com", "email_verified": true, "groups": []string{"ward-admins"}}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		tweak  string
		status int
		says   string
	}{
		{"bad signature", good, "badsig", http.StatusUnauthorized, "not valid for this dashboard"},
		{"wrong audience", good, "audience", http.StatusUnauthorized, "not valid for this dashboard"},
		{"expired token", good, "expired", http.StatusUnauthorized, "not valid for this dashboard"},
		{"wrong nonce", good, "nonce", http.StatusUnauthorized, "not for this sign-in"},
		{"unmapped role", map[string]any{"email": "bo@example.com", "groups": []string{"staff"}}, "", http.StatusForbidden, "not in a group that may use Ward: ask to be added to ward-admins (admin) or ward-viewers (viewer)"},
		{"no role claim", map[string]any{"email": "bo@example.com"}, "", http.StatusForbidden, "not in a group that may use Ward"},
		{"other domain", map[string]any{"email": "bo@evil.example", "groups": []string{"ward-admins"}}, "", http.StatusForbidden, "Accounts of evil.example may not sign in"},
		{"unverified e-mail", map[string]any{"email": "bo@example.com", "email_verified": false, "groups": []string{"ward-admins"}}, "", http.StatusForbidden, "not verified your e-mail address"},
		{"local account's name", map[string]any{"email": "dana@example.com", "groups": []string{"ward-admins"}}, "", http.StatusConflict, "already named dana@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Next(tc.claims, tc.tweak)
			c := browserless(t)
			resp, page := get(t, c, d.url+"/login/oidc")
			if resp.StatusCode != tc.status || !strings.Contains(page, tc.says) || !strings.Contains(page, `href="/login"`) {
				t.Fatalf("%d, want %d saying %q:\n%s", resp.StatusCode, tc.status, tc.says, page)
			}
			if _, home := get(t, c, d.url+"/"); !strings.Contains(home, `id="login"`) {
				t.Fatalf("refused sign-in has a session:\n%s", home)
			}
		})
	}
	if u, err := d.st.User(ctx, "dana@example.com"); err != nil || u.Role != store.RoleViewer || string(u.Hash) != "$2a$local" {
		t.Fatalf("the local account changed: %+v, %v", u, err)
	}
	if _, err := d.st.User(ctx, "bo@example.com"); err == nil {
		t.Fatal("a refused sign-in created its user")
	}

	// A callback that is not for this browser's sign-in: no cookie, or
	// another state.
	p.Next(good, "")
	c3 := browserless(t)
	if resp, page := get(t, c3, d.url+dashboard.OIDCCallbackPath+"?code=x&state=y"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Start it again") {
		t.Fatalf("callback without the flow's cookie: %d\n%s", resp.StatusCode, page)
	}
	c3.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), d.url+dashboard.OIDCCallbackPath) {
			q := req.URL.Query()
			q.Set("state", "forged")
			req.URL.RawQuery = q.Encode()
		}
		return nil
	}
	if resp, page := get(t, c3, d.url+"/login/oidc"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "not for this sign-in") {
		t.Fatalf("callback with another state: %d\n%s", resp.StatusCode, page)
	}
	// The provider says no.
	c4 := browserless(t)
	c4.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), d.url+dashboard.OIDCCallbackPath) {
			q := req.URL.Query()
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", "user <b>cancelled</b>")
			req.URL.RawQuery = q.Encode()
		}
		return nil
	}
	if resp, page := get(t, c4, d.url+"/login/oidc"); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "did not sign you in: access_denied user &lt;b&gt;cancelled&lt;/b&gt;") {
		t.Fatalf("provider's error: %d\n%s", resp.StatusCode, page)
	}

	if strings.Contains(d.log.String(), idpClientSecret) {
		t.Error("the client secret is in the log")
	}
	// Each token was refused for its own fault, not another.
	for _, want := range []string{"failed to verify signature", "expected audience", "token is expired", `"reason":"nonce does not match"`, `"reason":"no role"`, `"reason":"state does not match"`} {
		if !strings.Contains(d.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, d.log.String())
		}
	}
}

// The provider cannot be reached: the sign-in page still works and the
// button says so rather than failing the collector.
func TestOIDCProviderDown(t *testing.T) {
	p := startIDP(t)
	d := startOIDCDash(t, p)
	p.Close()
	resp, page := get(t, browserless(t), d.url+"/login/oidc")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "cannot be reached") {
		t.Fatalf("%d\n%s", resp.StatusCode, page)
	}
	if resp, page := get(t, browserless(t), d.url+"/login"); resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="password"`) {
		t.Fatalf("sign-in page with the provider down: %d", resp.StatusCode)
	}
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestOIDCConfigRefused(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, o := range []dashboard.OIDC{
		{ClientID: "c", RedirectURL: "https://w.example/login/oidc/callback"},
		{Issuer: "https://idp.example", RedirectURL: "https://w.example/login/oidc/callback"},
		{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://w.example/callback"},
	} {
		if _, err := dashboard.New(dashboard.Config{Store: st, OIDC: &o}); err == nil {
			t.Errorf("New accepted %+v", o)
		}
	}
}
