package dashboard_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
)

// clock is a settable clock for the dashboard.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(c *clock) func(*dashboard.Config) {
	return func(dc *dashboard.Config) { dc.Now = c.now }
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStaticDirectoriesAreNotListed(t *testing.T) {
	f := startFleet(t)
	anon := newClient(t, f.base)
	admin := newClient(t, f.base)
	if code, _ := admin.login("amina", "amina-correct-horse"); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	for _, c := range []*client{anon, admin} {
		for _, p := range []string{"/static/", "/static", "/static/.", "/static//", "/static/../static/"} {
			resp, body := c.do("GET", p, nil)
			for i := 0; i < 3 && resp.StatusCode/100 == 3; i++ { // the mux cleans paths
				resp, body = c.do("GET", resp.Header.Get("Location"), nil)
			}
			if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "style.css") {
				t.Errorf("GET %s: %d, want 404 without a listing:\n%s", p, resp.StatusCode, body)
			}
		}
		if resp, body := c.do("GET", "/static/style.css", nil); resp.StatusCode != http.StatusOK || body == "" {
			t.Errorf("GET /static/style.css: %d", resp.StatusCode)
		}
	}
}

func TestDashboardRefusesOtherHosts(t *testing.T) {
	f := startFleet(t)
	c := newClient(t, f.base)
	c.header.Set("Host", "rebound.attacker.example")
	for _, p := range []string{"/", "/login", "/static/style.css", "/export?format=csv"} {
		if resp, _ := c.do("GET", p, nil); resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("GET %s with Host rebound.attacker.example: %d, want 421", p, resp.StatusCode)
		}
	}
	if resp, _ := c.do("POST", "/login", url.Values{"user": {"amina"}}); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("POST /login with another Host: %d, want 421", resp.StatusCode)
	}
}

// TestSignInThrottleIsPerAddress: five wrong passwords from one address
// hold back that address (for a while), not the user everywhere.
func TestSignInThrottleIsPerAddress(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	f := startFleet(t, withClock(clk))
	attacker := newClientFrom(t, f.base, "127.0.0.2")
	for i := range 5 {
		if code, _ := attacker.login("victor", fmt.Sprintf("wrong-%d", i)); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i, code)
		}
	}
	if code, _ := attacker.login("victor", "victor-correct-horse"); code != http.StatusTooManyRequests {
		t.Errorf("right password from the guessing address: %d, want 429", code)
	}
	if ra, err := strconv.Atoi(attacker.last.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want 1..60 s", attacker.last.Header.Get("Retry-After"))
	}
	victor := newClientFrom(t, f.base, "127.0.0.3")
	if code, _ := victor.login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Errorf("right password from another address: %d, want 303", code)
	}
	// The wait ends: after it, the guessing address may try again.
	clk.advance(61 * time.Second)
	if code, _ := attacker.login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Errorf("right password after the wait: %d, want 303", code)
	}
}

// TestSignInBehindProxy: with --trusted-proxy the client is the address
// X-Forwarded-For names, so one client's guesses do not hold back the
// others behind the same proxy; without it X-Forwarded-For is ignored.
func TestSignInBehindProxy(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	f := startFleet(t, withClock(clk), func(dc *dashboard.Config) {
		dc.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	attacker := newClient(t, f.base)
	attacker.header.Set("X-Forwarded-For", "203.0.113.5")
	for i := range 5 {
		if code, _ := attacker.login("amina", fmt.Sprintf("wrong-%d", i)); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i, code)
		}
	}
	if code, _ := attacker.login("amina", "amina-correct-horse"); code != http.StatusTooManyRequests {
		t.Errorf("the guessing client: %d, want 429", code)
	}
	// Spoofing a left-hand entry does not help: the proxy appended the
	// real address on the right.
	attacker.header.Set("X-Forwarded-For", "198.51.100.9, 203.0.113.5")
	if code, _ := attacker.login("amina", "amina-correct-horse"); code != http.StatusTooManyRequests {
		t.Errorf("the guessing client with a spoofed X-Forwarded-For: %d, want 429", code)
	}
	amina := newClient(t, f.base)
	amina.header.Set("X-Forwarded-For", "198.51.100.7, 10.1.2.3") // a second trusted proxy
	if code, _ := amina.login("amina", "amina-correct-horse"); code != http.StatusSeeOther {
		t.Errorf("another client behind the same proxy: %d, want 303", code)
	}
	es, _ := f.st.Audit(context.Background(), 10)
	found := false
	for _, e := range es {
		found = found || e.Action == "sign-in" && e.Detail == "from 198.51.100.7"
	}
	if !found {
		t.Errorf("audit log has no sign-in from 198.51.100.7: %+v", es)
	}

	// Without trusted proxies, X-Forwarded-For is the client's word only.
	g := startFleet(t, withClock(clk))
	for i := range 5 {
		c := newClient(t, g.base)
		c.header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		if code, _ := c.login("victor", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, code)
		}
	}
	c := newClient(t, g.base)
	c.header.Set("X-Forwarded-For", "203.0.113.99")
	if code, _ := c.login("victor", "victor-correct-horse"); code != http.StatusTooManyRequests {
		t.Errorf("untrusted X-Forwarded-For picked a fresh address: %d, want 429", code)
	}
}

// TestSignInPerUserRateSlowsButNeverLocksOut: guesses spread over many
// addresses are slowed per user; an address that signed in before still
// gets in, and the rest wait seconds, not forever.
func TestSignInPerUserRateSlowsButNeverLocksOut(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	f := startFleet(t, withClock(clk), func(dc *dashboard.Config) {
		dc.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	from := func(addr string) *client {
		c := newClient(t, f.base)
		c.header.Set("X-Forwarded-For", addr)
		return c
	}
	if code, _ := from("198.51.100.7").login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Fatalf("victor's first sign-in: %d", code)
	}
	limited := -1
	for i := range 40 {
		code, _ := from(fmt.Sprintf("203.0.113.%d", i+1)).login("victor", "guess")
		if code == http.StatusTooManyRequests {
			limited = i
			break
		}
		if code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if limited < 5 || limited > 20 {
		t.Fatalf("guesses from fresh addresses were slowed after %d, want between 5 and 20", limited)
	}
	if code, _ := from("198.51.100.7").login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Errorf("victor from the address he signed in from: %d, want 303", code)
	}
	fresh := from("192.0.2.44")
	if code, _ := fresh.login("victor", "victor-correct-horse"); code != http.StatusTooManyRequests {
		t.Errorf("victor from a new address during the attack: %d, want 429 (slowed)", code)
	}
	ra, err := strconv.Atoi(fresh.last.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After = %q, want seconds (1..60)", fresh.last.Header.Get("Retry-After"))
	}
	clk.advance(time.Duration(ra) * time.Second)
	if code, _ := fresh.login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Errorf("victor from a new address after Retry-After: %d, want 303", code)
	}
}

// TestSignInLongUserName: a 1.9 MiB user name is refused like a wrong
// one, and neither the log nor the page repeats it.
func TestSignInLongUserName(t *testing.T) {
	var logs syncBuffer
	f := startFleet(t, func(dc *dashboard.Config) { dc.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	c := newClient(t, f.base)
	name := strings.Repeat("n", 1900<<10)
	before := logs.Len()
	_, form := c.do("GET", "/login", nil)
	resp, page := c.do("POST", "/login", url.Values{"csrf": {csrfOf(t, form)}, "user": {name}, "password": {"whatever-password"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("1.9 MiB user name: %d, want 401", resp.StatusCode)
	}
	if n := logs.Len() - before; n > 4<<10 {
		t.Errorf("one sign-in with a long name logged %d bytes", n)
	}
	if len(page) > 64<<10 {
		t.Errorf("the page echoes the name: %d bytes", len(page))
	}
	if !strings.Contains(logs.String(), `"user_truncated":true`) {
		t.Errorf("log does not say the name was cut:\n%s", logs.String())
	}
}

func TestCSVExportNeutralisesFormulas(t *testing.T) {
	since := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	evil := []string{"=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", " =1", "\x00=1", "\u200b=cmd", "\ufeff@x", "\u3000+1", "＝1+1"}
	e := &dashboard.Export{Metadata: dashboard.ExportMeta{GeneratedAt: since, AsOf: since}}
	for i, v := range evil {
		e.Rows = append(e.Rows, dashboard.ExportRow{DeviceID: v, Hostname: v, Group: v, DeviceStatus: v, LastReport: &since, PolicyName: v, PolicyVersion: -i - 1,
			RuleID: v, RuleTitle: v, Severity: v, Verdict: store.Verdict(v), Status: store.Verdict(v), Since: &since,
			Waiver: &dashboard.ExportWaiver{ID: v, By: v, ExpiresAt: since, Reason: v}, Observed: v, Expected: v, Reason: v})
	}
	e.Rows = append(e.Rows, dashboard.ExportRow{DeviceID: "dev_1", Hostname: "lin-ok", DeviceStatus: "fresh", LastReport: &since, PolicyName: "baseline", PolicyVersion: 3,
		Verdict: store.Pass, Status: store.Pass, Observed: "a - b", Expected: "x = y"})
	var b bytes.Buffer
	if err := e.Write(&b, "csv"); err != nil {
		t.Fatal(err)
	}
	r := csv.NewReader(&b)
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[1 : len(recs)-1] {
		for i, cell := range r {
			switch dashboard.ExportHeader[i] {
			case "last_report", "revoked_at", "since", "deadline", "overdue", "waiver_expires", "deadline_paused", "received_at":
				continue // written by the collector, never from input
			}
			if !strings.HasPrefix(cell, "'") {
				t.Errorf("column %s: %q reaches the spreadsheet as a formula", dashboard.ExportHeader[i], cell)
			}
		}
	}
	last := recs[len(recs)-1]
	if strings.Join(last[:8], ",") != "dev_1,lin-ok,,fresh,2026-03-01T00:00:00Z,,baseline,3" || last[20] != "a - b" || last[21] != "x = y" {
		t.Errorf("a harmless row was changed: %q", last)
	}
}

// TestExportOutlivesThePageWriteTimeout: with a write timeout no page can
// meet, a page fails but the export (and a what-if) set their own
// deadline and arrive whole.
func TestExportOutlivesThePageWriteTimeout(t *testing.T) {
	f := startFleetServer(t, func(cfg *server.Config) { cfg.HTTP.WriteTimeout = time.Nanosecond })
	// The sign-in page is a page too: a session straight in the store.
	sid := "write-timeout-session"
	sum := sha256.Sum256([]byte(sid))
	now := time.Now().UTC()
	if err := f.st.CreateSession(context.Background(), store.Session{IDHash: sum[:], User: "amina", CSRF: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	admin := newClient(t, f.base)
	admin.cookies["__Host-ward_session"] = sid
	req, _ := http.NewRequest("GET", f.base+"/devices", nil)
	for k, v := range admin.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	if res, err := http.DefaultClient.Do(req); err == nil {
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil && strings.Contains(string(b), "lin-bad") {
			t.Errorf("a page arrived whole past its 1 ns write timeout")
		}
	}
	resp, body := admin.do("GET", "/export?format=csv", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	cr := csv.NewReader(strings.NewReader(body))
	cr.Comment = '#'
	recs, err := cr.ReadAll()
	if err != nil || len(recs) < 2 || !strings.Contains(body, "lin-bad") {
		t.Errorf("export past the page write timeout: %d records, %v", len(recs), err)
	}
}
