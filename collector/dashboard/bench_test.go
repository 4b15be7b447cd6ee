package dashboard_test

import (
	"context"
	"crypto/sha256"
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
	"github.com/wardhq/ward/collector/store/storetest"
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

// benchNow is the time the benchmark fleet is built and served at.
var benchNow = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// benchFleet builds a database of n devices through the store's own
// Enroll and SaveReport (storetest.BuildFleet; no bulk load, no ANALYZE,
// so the benchmark reads what a real collector has) and returns the
// dashboard's handler and a signed-in admin's cookie. Fleets of 10,000
// devices or more are built once and cached in the temporary directory
// by schema version and size (the store's own benchmark shares the
// cache); each benchmark works on a copy.
func benchFleet(b *testing.B, n int, cacheFor time.Duration) (http.Handler, *http.Cookie) {
	h, c, _ := benchFleetStore(b, n, cacheFor)
	return h, c
}

func benchFleetStore(b testing.TB, n int, cacheFor time.Duration) (http.Handler, *http.Cookie, store.Dashboard) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "ward.db")
	build := func(path string) {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		if err := storetest.BuildFleet(ctx, st, n, benchNow, nil); err != nil {
			b.Fatal(err)
		}
	}
	if n < 10_000 {
		build(path)
	} else {
		cached := filepath.Join(os.TempDir(), fmt.Sprintf("ward-bench-dashboard-v%d-%d.db", sqlite.SchemaVersion(), n))
		if _, err := os.Stat(cached); err != nil {
			build(cached + ".building")
			if err := os.Rename(cached+".building", cached); err != nil {
				b.Fatal(err)
			}
		}
		if err := copyFile(path, cached); err != nil {
			b.Fatal(err)
		}
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	// The session outlives both benchNow and the wall clock, which the
	// fuzz tests' dashboard uses.
	now := benchNow
	hash, _ := dashboard.HashPassword("benchmark-password")
	if err := st.CreateUser(ctx, store.User{Name: "bench", Role: store.RoleAdmin, Hash: hash, CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	sid := "benchmark-session-id"
	h := sha256.Sum256([]byte(sid))
	if err := st.CreateSession(ctx, store.Session{IDHash: h[:], User: "bench", CSRF: "x", CreatedAt: now, ExpiresAt: now.AddDate(100, 0, 0)}); err != nil {
		b.Fatal(err)
	}
	handler, err := dashboard.New(dashboard.Config{Store: st, StaleAfter: storetest.FleetStaleAfter, CacheFor: cacheFor, Now: func() time.Time { return benchNow },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return handler, &http.Cookie{Name: "__Host-ward_session", Value: sid}, st
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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
	h, c, st := benchFleetStore(b, benchDevices(b), 0)
	// Page 101 of a rule's devices, reached by cursor as the Next links
	// do (the cursor is found once, by offset).
	p, err := st.ListDevices(context.Background(), store.DeviceQuery{Now: benchNow, StaleAfter: storetest.FleetStaleAfter, RuleID: "disk-encrypted", Limit: 1, Offset: 5049})
	if err != nil || p.Next == "" {
		b.Fatalf("cursor of page 101: %+v, %v", p, err)
	}
	for _, tc := range []struct{ name, query string }{
		{"first-page", ""},
		{"failing-sorted-by-last-seen", "status=failing&sort=-last_seen"},
		{"group-os-search", "group=hq&os=" + url.QueryEscape("macOS") + "&q=host-0001"},
		{"rule-page-101-by-cursor", "rule=disk-encrypted&after=" + p.Next},
		{"rule-failing", "rule=disk-encrypted&status=failing"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				render(b, h, c, "/devices?"+tc.query)
			}
		})
	}
}
