package dashboard_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
)

// benchDevices is the fleet size of the benchmarks: 100k by default,
// WARD_BENCH_DEVICES=1000000 for a million.
func benchDevices(b *testing.B) int {
	if s := os.Getenv("WARD_BENCH_DEVICES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 100_000
}

var benchRules = []string{"disk-encrypted", "firewall-on", "os-supported", "patches-recent", "screen-lock"}

// benchFleet builds a database of n devices in bulk (one transaction of
// plain INSERTs into the store's own schema: enrolling 100k devices one by
// one through the gRPC path would take longer than the benchmark) and
// returns the dashboard's handler and a signed-in admin's cookie.
func benchFleet(b *testing.B, n int, cacheFor time.Duration) (http.Handler, *http.Cookie) {
	h, c, _ := benchFleetStore(b, n, cacheFor)
	return h, c
}

func benchFleetStore(b testing.TB, n int, cacheFor time.Duration) (http.Handler, *http.Cookie, store.Dashboard) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "ward.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	insDev, _ := tx.Prepare(`INSERT INTO devices (id, grp, hostname, platform, os_name, os_version, architecture, machine_id, agent_version, enrolled_at, last_seen, cert_serial, cert_not_after, last_sequence, pass_n, fail_n, unknown_n)
		VALUES (?, ?, ?, 'linux', ?, '12', 'amd64', '', '1.0', ?, ?, ?, ?, 1, ?, ?, ?)`)
	insRule, _ := tx.Prepare(`INSERT INTO rule_states (device_id, rule_id, title, family, severity, collector, agent, observed, expected, reason, failing_since, updated_at, sequence)
		VALUES (?, ?, ?, 'os', 'high', ?, ?, 'observed', 'expected', '', ?, ?, 1)`)
	insTrans, _ := tx.Prepare(`INSERT INTO transitions (device_id, rule_id, from_v, to_v, at, sequence) VALUES (?, ?, '', ?, ?, 1)`)
	insRep, _ := tx.Prepare(`INSERT INTO reports (device_id, sequence, received_at, collected_at, agent_version, policy_name, policy_version, dropped_reports, facts, results)
		VALUES (?, 1, ?, ?, '1.0', 'baseline', 1, 0, x'', '[]')`)
	groups := []string{"field", "hq", "partners", "board"}
	oses := []string{"Debian GNU/Linux", "Windows 11 Pro", "macOS"}
	for i := range n {
		id := fmt.Sprintf("dev_%08d", i)
		seen := now.Add(-time.Duration(i%240) * time.Minute) // some stale
		enrolled := now.AddDate(0, 0, -(i % 90))
		var pass, fail, unknown int
		for j, r := range benchRules {
			v := "PASS"
			var since any
			switch {
			case (i+j)%17 == 0:
				v, since = "FAIL", enrolled.UnixNano()
				fail++
			case (i+j)%23 == 0:
				v = "UNKNOWN"
				unknown++
			default:
				pass++
			}
			if _, err := insRule.Exec(id, r, r, v, v, since, seen.UnixNano()); err != nil {
				b.Fatal(err)
			}
			if _, err := insTrans.Exec(id, r, v, enrolled.UnixNano()); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := insDev.Exec(id, groups[i%len(groups)], fmt.Sprintf("host-%06d", i), oses[i%len(oses)], enrolled.UnixNano(), seen.UnixNano(),
			fmt.Sprint(i), now.AddDate(1, 0, 0).UnixNano(), pass, fail, unknown); err != nil {
			b.Fatal(err)
		}
		if _, err := insRep.Exec(id, seen.UnixNano(), seen.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	hash, _ := dashboard.HashPassword("benchmark-password")
	if err := st.CreateUser(ctx, store.User{Name: "bench", Role: store.RoleAdmin, Hash: hash, CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	sid := "benchmark-session-id"
	h := sha256.Sum256([]byte(sid))
	if err := st.CreateSession(ctx, store.Session{IDHash: h[:], User: "bench", CSRF: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	handler, err := dashboard.New(dashboard.Config{Store: st, StaleAfter: 3 * time.Hour, CacheFor: cacheFor, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return handler, &http.Cookie{Name: "__Host-ward_session", Value: sid}, st
}

func render(b *testing.B, h http.Handler, c *http.Cookie, target string) {
	req := httptest.NewRequest("GET", target, nil)
	req.AddCookie(c)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", target, w.Code, w.Body.String())
	}
}

func BenchmarkOverview(b *testing.B) {
	n := benchDevices(b)
	// cold: nothing reused, every part computed for every render;
	// cached: the default, failing-per-rule and deadlines reused for 30s
	// and the trend for 5 minutes (the counts are always fresh).
	for _, tc := range []struct {
		name     string
		cacheFor time.Duration
	}{{"cold", -1}, {"cached", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			h, c := benchFleet(b, n, tc.cacheFor)
			render(b, h, c, "/")
			for b.Loop() {
				render(b, h, c, "/")
			}
		})
	}
}

func BenchmarkDeviceList(b *testing.B) {
	h, c := benchFleet(b, benchDevices(b), 0)
	for _, tc := range []struct{ name, query string }{
		{"first-page", ""},
		{"failing-sorted-by-last-seen", "status=failing&sort=-last_seen"},
		{"group-os-search", "group=hq&os=" + url.QueryEscape("macOS") + "&q=host-0001"},
		{"rule-page-100", "rule=disk-encrypted&offset=5000"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				render(b, h, c, "/devices?"+tc.query)
			}
		})
	}
}
