package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store/sqlite"
)

// TestOIDCInBrowser signs in through the provider in Chromium, with the
// provider on another site (localhost) than the dashboard (127.0.0.1):
// the flow's Lax cookie must come back with the cross-site redirect, and
// the Strict session cookie must be sent once the callback's page
// refreshes to the overview.
func TestOIDCInBrowser(t *testing.T) {
	ctx := browser(t)
	p := startIDP(t)
	p.AtLocalhost()
	p.AskConsent()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	h, err = dashboard.New(dashboard.Config{Store: st, OIDC: &dashboard.OIDC{
		Issuer: p.URL(), ClientID: idpClientID, ClientSecret: idpClientSecret, RedirectURL: srv.URL + dashboard.OIDCCallbackPath, Label: "Sign in with Example ID",
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.Next(map[string]any{"email": "amina@example.com", "email_verified": true, "groups": []string{"ward-viewers"}}, "")
	run(t, ctx, "sign in through the provider",
		chromedp.Navigate(srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#oidc")),
		chromedp.Click(chromedp.CSS("#oidc")),
		chromedp.WaitVisible(chromedp.CSS("#consent")),
		chromedp.Click(chromedp.CSS("#consent")),
		chromedp.WaitVisible(chromedp.CSS("#whoami")),
	)
	if s := text(t, ctx, "#whoami"); s != "amina@example.com (viewer)" {
		t.Fatalf("signed in as %q", s)
	}
	if !strings.HasPrefix(p.LastAuthorize().Get("redirect_uri"), srv.URL) {
		t.Fatalf("the provider was not asked: %v", p.LastAuthorize())
	}
	// Unmapped: the refusal page, then back to sign-in.
	p.Next(map[string]any{"email": "bo@example.com", "groups": []string{"staff"}}, "")
	run(t, ctx, "refused sign-in",
		chromedp.Click(chromedp.CSS(".logout button")),
		chromedp.WaitVisible(chromedp.CSS("#oidc")),
		chromedp.Click(chromedp.CSS("#oidc")),
		chromedp.WaitVisible(chromedp.CSS("#consent")),
		chromedp.Click(chromedp.CSS("#consent")),
		chromedp.WaitVisible(chromedp.CSS("#error")),
	)
	if s := text(t, ctx, "#error"); !strings.Contains(s, "not in a group that may use Ward") {
		t.Fatalf("refusal says %q", s)
	}
}
