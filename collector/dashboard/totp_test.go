package dashboard_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
)

// totpDash is a dashboard with a TOTP key on a fresh SQLite store, over
// real HTTP, with two local users (amina, admin; victor, viewer).
type totpDash struct {
	url string
	st  *sqlite.Store
	clk *clock
	key []byte
}

func newTOTPKey(t *testing.T) []byte {
	k := make([]byte, dashboard.TOTPKeySize)
	rand.Read(k)
	return k
}

func startTOTPDash(t *testing.T, st *sqlite.Store, clk *clock, key []byte) *totpDash {
	t.Helper()
	if st == nil {
		var err error
		if st, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		for _, u := range []struct{ name, role string }{{"amina", store.RoleAdmin}, {"victor", store.RoleViewer}} {
			hash, err := dashboard.HashPassword(u.name + "-correct-horse")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CreateUser(context.Background(), store.User{Name: u.name, Role: u.role, Hash: hash, CreatedAt: clk.now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h, err := dashboard.New(dashboard.Config{Store: st, TOTPKey: key, Now: clk.now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &totpDash{url: srv.URL, st: st, clk: clk, key: key}
}

var secretRe = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)

// enrol turns amina's second factor on through the account page and
// returns its secret.
func enrol(t *testing.T, d *totpDash, c *client, csrf, user string) string {
	t.Helper()
	_, page := c.do("GET", "/account", nil)
	if !strings.Contains(page, "Second factor: <strong>off</strong>") {
		t.Fatalf("account page before enrolment:\n%s", page)
	}
	if resp, page := c.do("POST", "/account/totp", url.Values{"csrf": {csrf}, "password": {"wrong-password"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong password") {
		t.Fatalf("enrol with a wrong password: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/account/totp", url.Values{"password": {user + "-correct-horse"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("enrol without CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/account/totp", url.Values{"csrf": {csrf}, "password": {user + "-correct-horse"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("enrol: %d, want 303", resp.StatusCode)
	}
	_, page = c.do("GET", "/account", nil)
	m := secretRe.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "otpauth://totp/Ward:"+user+"?") || !strings.Contains(page, "secret="+m[1]) {
		t.Fatalf("account page does not show the new secret as URI and text:\n%s", page)
	}
	secret := m[1]
	// Not on until a code confirms it: the password alone still signs in.
	if got, err := d.st.TOTP(context.Background(), user); err != nil || got.ConfirmedAt != nil {
		t.Fatalf("TOTP before confirmation = %+v, %v", got, err)
	}
	if resp, page := c.do("POST", "/account/totp/confirm", url.Values{"csrf": {csrf}, "code": {"000000"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "not on yet") {
		t.Fatalf("confirm with a wrong code: %d", resp.StatusCode)
	}
	code, err := totp.GenerateCode(secret, d.clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if resp, page := c.do("POST", "/account/totp/confirm", url.Values{"csrf": {csrf}, "code": {code[:3] + " " + code[3:]}}); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Your second factor is on") {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, page)
	}
	return secret
}

// passwordStep signs in with the password and returns the second
// factor's page (or the answer to the password when it is not a 303 to
// it).
func passwordStep(t *testing.T, c *client, user string) (int, string) {
	t.Helper()
	_, page := c.do("GET", "/login", nil)
	resp, _ := c.do("POST", "/login", url.Values{"csrf": {csrfOf(t, page)}, "user": {user}, "password": {user + "-correct-horse"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login/totp" {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	_, page = c.do("GET", "/login/totp", nil)
	return resp.StatusCode, page
}

func codeStep(c *client, page, code string) (*http.Response, string) {
	return c.do("POST", "/login/totp", url.Values{"csrf": {csrfRe.FindStringSubmatch(page)[1]}, "code": {code}})
}

func TestTOTPEnrolAndSignIn(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 10, 0, time.UTC)}
	d := startTOTPDash(t, nil, clk, newTOTPKey(t))
	ctx := context.Background()

	c := newClient(t, d.url)
	if code, _ := c.login("amina", "amina-correct-horse"); code != http.StatusSeeOther {
		t.Fatalf("sign-in before enrolment: %d", code)
	}
	_, home := c.do("GET", "/", nil)
	secret := enrol(t, d, c, csrfOf(t, home), "amina")
	confirmCode, _ := totp.GenerateCode(secret, clk.now())

	// At rest the secret is sealed: the database's row does not hold it.
	got, err := d.st.TOTP(ctx, "amina")
	if err != nil || got.ConfirmedAt == nil || !got.ConfirmedAt.Equal(clk.now()) {
		t.Fatalf("TOTP after confirmation = %+v, %v", got, err)
	}
	if bytes.Contains(got.Secret, []byte(secret)) || !bytes.HasPrefix(got.Secret, []byte("ward-totp-1\x00")) {
		t.Fatalf("stored secret is not sealed: %q", got.Secret)
	}
	_, page := c.do("GET", "/account", nil)
	if !strings.Contains(page, "Second factor: <strong>on</strong>") || strings.Contains(page, secret) || !strings.Contains(page, "ward-collector user totp-reset amina") {
		t.Fatalf("account page with the second factor on:\n%s", page)
	}
	if resp, _ := c.do("POST", "/account/totp", url.Values{"csrf": {csrfOf(t, page)}, "password": {"amina-correct-horse"}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("enrolling over a confirmed second factor: %d, want 409", resp.StatusCode)
	}

	// Signing in now takes the code; the password alone gives no session.
	b := newClient(t, d.url)
	status, page := passwordStep(t, b, "amina")
	if status != http.StatusSeeOther || !strings.Contains(page, `id="totp"`) || !strings.Contains(page, `id="totp-user">amina<`) {
		t.Fatalf("password step: %d\n%s", status, page)
	}
	if resp, _ := b.do("GET", "/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("overview between password and code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The code that confirmed the enrolment is used: refused in its window.
	if resp, page := codeStep(b, page, confirmCode); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "used already") {
		t.Fatalf("replayed confirmation code: %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := b.do("POST", "/login/totp", url.Values{"csrf": {"forged"}, "code": {confirmCode}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("code without the pending sign-in's CSRF token: %d, want 403", resp.StatusCode)
	}
	clk.advance(30 * time.Second)
	if resp, page := codeStep(b, page, "123456"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong code") {
		t.Fatalf("wrong code: %d", resp.StatusCode)
	}
	code, _ := totp.GenerateCode(secret, clk.now())
	resp, _ := codeStep(b, page, code)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("right code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, home = b.do("GET", "/", nil)
	if !strings.Contains(home, `<span id="whoami">amina (admin)</span>`) {
		t.Fatalf("no session after the code:\n%s", home)
	}
	es, _ := d.st.Audit(ctx, 20)
	if es[0].Action != "sign-in" || es[0].Detail != "password and TOTP from 127.0.0.1" || !hasAction(es, "totp.enable") || !hasAction(es, "totp.enrol") {
		t.Fatalf("audit = %+v", es)
	}

	// The same code again, from another browser, still in its window.
	e := newClient(t, d.url)
	_, page = passwordStep(t, e, "amina")
	if resp, page := codeStep(e, page, code); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "used already") {
		t.Fatalf("code replayed from another browser: %d\n%s", resp.StatusCode, page)
	}
	// A code two steps ahead (not used yet) is outside the window.
	ahead, _ := totp.GenerateCode(secret, clk.now().Add(60*time.Second))
	if resp, page := codeStep(e, page, ahead); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong code") {
		t.Fatalf("a code two steps ahead: %d, want 401 Wrong code", resp.StatusCode)
	}

	// The pending sign-in lasts 5 minutes.
	clk.advance(5 * time.Minute)
	now, _ := totp.GenerateCode(secret, clk.now())
	if resp, page := codeStep(e, page, now); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "expired") {
		t.Fatalf("code after the pending sign-in expired: %d\n%s", resp.StatusCode, page)
	}

	// victor, without a second factor, signs in with the password alone.
	if code, _ := newClient(t, d.url).login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Fatalf("victor: %d", code)
	}
}

func TestTOTPThrottled(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 10, 0, time.UTC)}
	d := startTOTPDash(t, nil, clk, newTOTPKey(t))
	c := newClient(t, d.url)
	c.login("amina", "amina-correct-horse")
	_, home := c.do("GET", "/", nil)
	secret := enrol(t, d, c, csrfOf(t, home), "amina")

	g := newClientFrom(t, d.url, "127.0.0.2")
	_, page := passwordStep(t, g, "amina")
	for i := range 5 {
		if resp, _ := codeStep(g, page, strconv.Itoa(100000+i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d, want 401", i, resp.StatusCode)
		}
	}
	clk.advance(30 * time.Second)
	right, _ := totp.GenerateCode(secret, clk.now())
	resp, body := codeStep(g, page, right)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many wrong codes") {
		t.Fatalf("right code after 5 wrong ones: %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want 1..60 s", resp.Header.Get("Retry-After"))
	}
	// A right password does not give the code's attempts back.
	_, page = passwordStep(t, g, "amina")
	if resp, _ := codeStep(g, page, right); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("code after signing in with the password again: %d, want 429", resp.StatusCode)
	}
	// After the wait, the code signs in.
	clk.advance(61 * time.Second)
	right, _ = totp.GenerateCode(secret, clk.now())
	if resp, _ := codeStep(g, page, right); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right code after the wait: %d, want 303", resp.StatusCode)
	}
}

// A collector with another TOTP key (or none) on the same store refuses
// the user rather than letting the password alone through.
func TestTOTPWrongKeyRefuses(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 10, 0, time.UTC)}
	d := startTOTPDash(t, nil, clk, newTOTPKey(t))
	c := newClient(t, d.url)
	c.login("amina", "amina-correct-horse")
	_, home := c.do("GET", "/", nil)
	enrol(t, d, c, csrfOf(t, home), "amina")
	for name, key := range map[string][]byte{"other key": newTOTPKey(t), "no key": nil} {
		other := startTOTPDash(t, d.st, clk, key)
		b := newClient(t, other.url)
		_, page := b.do("GET", "/login", nil)
		resp, body := b.do("POST", "/login", url.Values{"csrf": {csrfOf(t, page)}, "user": {"amina"}, "password": {"amina-correct-horse"}})
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "cannot be checked on this collector") {
			t.Errorf("%s: %d, want 503\n%s", name, resp.StatusCode, body)
		}
	}
	if _, err := dashboard.New(dashboard.Config{Store: d.st, TOTPKey: make([]byte, dashboard.TOTPKeySize)}); err == nil {
		t.Error("New accepted an all-zero TOTP key")
	}
	if _, err := dashboard.New(dashboard.Config{Store: d.st, TOTPKey: []byte("short")}); err == nil {
		t.Error("New accepted a 5-byte TOTP key")
	}
}
