package sqlite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

// benchNow is the time a benchmark fleet is built and queried at, fixed
// so that a cached database gives the same answers on every run.
var benchNow = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// benchFleetPath returns a database of n devices built by
// storetest.BuildFleetParallel through this store's Enroll, SaveReport
// and RevokeDevice (with synchronous(OFF): the build is not what is
// measured; no ANALYZE), cached under the temporary directory by schema
// version and size, so a rerun starts at once. When only an older
// schema's file is there, a copy of it is opened, which migrates it as a
// collector's upgrade would. WARD_BENCH_DEVICES sets n (default
// 100,000), WARD_BENCH_WORKERS the devices built at once (default 8, as
// a collector serving many devices fills it).
func benchFleetPath(b *testing.B) (string, int) {
	b.Helper()
	n, workers := 100_000, 8
	for env, p := range map[string]*int{"WARD_BENCH_DEVICES": &n, "WARD_BENCH_WORKERS": &workers} {
		if s := os.Getenv(env); s != "" {
			var err error
			if *p, err = strconv.Atoi(s); err != nil {
				b.Fatalf("%s: %v", env, err)
			}
		}
	}
	pathOf := func(v int) string {
		return filepath.Join(os.TempDir(), fmt.Sprintf("ward-bench-dashboard-v%d-%d.db", v, n))
	}
	path := pathOf(SchemaVersion())
	if _, err := os.Stat(path); err == nil {
		return path, n
	}
	tmp := path + ".building"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		os.Remove(p)
	}
	ctx := context.Background()
	start := time.Now()
	for v := SchemaVersion() - 1; v > 0; v-- {
		if _, err := os.Stat(pathOf(v)); err != nil {
			continue
		}
		if err := copyFile(pathOf(v), tmp); err != nil {
			b.Fatal(err)
		}
		s, err := OpenWith(ctx, tmp, Options{synchronous: "OFF", noPrecheck: true})
		if err != nil {
			// A file of another branch's schema numbering: build anew.
			b.Logf("%s does not migrate (%v): building", pathOf(v), err)
			for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
				os.Remove(p)
			}
			break
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.Logf("copied %s and migrated it to schema %d in %s", pathOf(v), SchemaVersion(), time.Since(start).Round(time.Second))
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		return path, n
	}
	s, err := OpenWith(ctx, tmp, Options{synchronous: "OFF"})
	if err != nil {
		b.Fatal(err)
	}
	err = storetest.BuildFleetParallel(ctx, s, n, benchNow, workers, func(done int) {
		if done%100_000 == 0 {
			b.Logf("built %d devices in %s", done, time.Since(start).Round(time.Second))
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d devices through Enroll and SaveReport in %s (%s per device, %d at once)", n, time.Since(start).Round(time.Second), time.Since(start)/time.Duration(n), workers)
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path, n
}

// copyFile copies a closed database file (its WAL checkpointed by Close).
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// openBench opens the fleet as a collector's store would see it after
// start-up, without the start-up integrity check (which reads the whole
// file, and would warm the page cache this measures without).
func openBench(b *testing.B, path string) *Store {
	s, err := OpenWith(context.Background(), path, Options{noPrecheck: true})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkDashboard measures every dashboard query on a fleet built
// through the ingest path (see benchFleetPath): warm, on one open store,
// and cold, each run on a store opened for it (a new connection with an
// empty page cache; the operating system's file cache stays warm). The
// overview is what its page asks for: counts, failing per rule, past
// deadline and a 30-day trend.
func BenchmarkDashboard(b *testing.B) {
	path, n := benchFleetPath(b)
	ctx := context.Background()
	stale := storetest.FleetStaleAfter
	var deadlines []store.DeadlineRule
	for _, g := range storetest.FleetGroups {
		for _, r := range storetest.FleetRules {
			deadlines = append(deadlines, store.DeadlineRule{Group: g, RuleID: r, Grace: 24 * time.Hour})
		}
	}
	list := func(q store.DeviceQuery) func(*Store) error {
		q.Now, q.StaleAfter, q.Limit = benchNow, stale, 50
		return func(s *Store) error {
			p, err := s.ListDevices(ctx, q)
			if err == nil && len(p.Devices) == 0 {
				err = fmt.Errorf("no devices for %+v", q)
			}
			return err
		}
	}
	// A cursor deep into the list: the page after device n/2. n is what
	// the file holds (a copy taken of a fleet being built holds fewer).
	s := openBench(b, path)
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	mid, err := s.ListDevices(ctx, store.DeviceQuery{Now: benchNow, StaleAfter: stale, Limit: 1, Offset: n / 2})
	if err != nil || mid.Next == "" {
		b.Fatalf("middle cursor: %+v, %v", mid, err)
	}
	midSeen, err := s.ListDevices(ctx, store.DeviceQuery{Now: benchNow, StaleAfter: stale, Limit: 1, Offset: n / 2, Sort: "-" + store.SortLastSeen})
	if err != nil || midSeen.Next == "" {
		b.Fatalf("middle cursor: %+v, %v", midSeen, err)
	}
	s.Close()
	queries := []struct {
		name string
		fn   func(*Store) error
	}{
		// The yardstick: one pass over the fleet, what every view cost
		// before the aggregates.
		{"yardstick-count-devices", func(s *Store) error {
			var n int
			return s.db.QueryRowContext(ctx, `SELECT count(*) FROM devices WHERE revoked_at IS NULL`).Scan(&n)
		}},
		{"overview", func(s *Store) error {
			if _, err := s.FleetCounts(ctx, benchNow, stale); err != nil {
				return err
			}
			if _, err := s.FailingByRule(ctx, benchNow, stale); err != nil {
				return err
			}
			if _, _, err := s.PastDeadline(ctx, deadlines, benchNow, 50); err != nil {
				return err
			}
			_, err := s.Trend(ctx, benchNow, 30)
			return err
		}},
		{"FleetCounts", func(s *Store) error { _, err := s.FleetCounts(ctx, benchNow, stale); return err }},
		{"FailingByRule", func(s *Store) error { _, err := s.FailingByRule(ctx, benchNow, stale); return err }},
		{"PastDeadline", func(s *Store) error {
			od, total, err := s.PastDeadline(ctx, deadlines, benchNow, 50)
			if err == nil && (len(od) != min(50, total) || total == 0) {
				err = fmt.Errorf("past deadline: %d rows of %d", len(od), total)
			}
			return err
		}},
		{"Trend30", func(s *Store) error { _, err := s.Trend(ctx, benchNow, 30); return err }},
		{"Trend90", func(s *Store) error { _, err := s.Trend(ctx, benchNow, 90); return err }},
		{"Groups", func(s *Store) error { _, err := s.Groups(ctx); return err }},
		{"list/hostname", list(store.DeviceQuery{})},
		{"list/-hostname", list(store.DeviceQuery{Sort: "-hostname"})},
		{"list/hostname-after-middle", list(store.DeviceQuery{After: mid.Next})},
		{"list/last_seen", list(store.DeviceQuery{Sort: "last_seen"})},
		{"list/-last_seen", list(store.DeviceQuery{Sort: "-last_seen"})},
		{"list/-last_seen-after-middle", list(store.DeviceQuery{Sort: "-last_seen", After: midSeen.Next})},
		{"list/group", list(store.DeviceQuery{Sort: "group"})},
		{"list/-group", list(store.DeviceQuery{Sort: "-group"})},
		{"list/fail", list(store.DeviceQuery{Sort: "fail"})},
		{"list/-fail", list(store.DeviceQuery{Sort: "-fail"})},
		{"list/status-failing-by-last_seen", list(store.DeviceQuery{Status: store.StatusFailing, Sort: "-last_seen"})},
		{"list/status-compliant", list(store.DeviceQuery{Status: store.StatusCompliant})},
		{"list/status-stale", list(store.DeviceQuery{Status: store.StatusStale})},
		{"list/status-revoked", list(store.DeviceQuery{Status: store.StatusRevoked})},
		{"list/group-hq", list(store.DeviceQuery{Group: "hq"})},
		{"list/group-hq-by-last_seen", list(store.DeviceQuery{Group: "hq", Sort: "-last_seen"})},
		{"list/rule-failing", list(store.DeviceQuery{RuleID: "disk-encrypted", Status: store.StatusFailing})},
		{"list/rule", list(store.DeviceQuery{RuleID: "disk-encrypted"})},
		{"list/os", list(store.DeviceQuery{OS: "macOS"})},
		{"list/cert-expiring", list(store.DeviceQuery{CertExpiring: true})},
		{"list/search", list(store.DeviceQuery{Search: "host-0001"})},
		{"list/search-one", list(store.DeviceQuery{Search: fmt.Sprintf("host-%06d", n*3/4)})},
		{"list/search-many", list(store.DeviceQuery{Search: "st-0"})},
		{"list/group-os-search", list(store.DeviceQuery{Group: "hq", OS: "macOS", Search: "host-0001"})},
		{"list/group-os-search-by-last_seen", list(store.DeviceQuery{Group: "hq", OS: "macOS", Search: "host-0001", Sort: "-last_seen"})},
		// The same without the trigram index, as before version 11: the
		// walk of the sort index to its end.
		{"list/group-os-search-walk", func(s *Store) error {
			defer func(n int) { searchCandidates = n }(searchCandidates)
			searchCandidates = 0
			return list(store.DeviceQuery{Group: "hq", OS: "macOS", Search: "host-0001"})(s)
		}},
	}
	b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
		for _, q := range queries {
			b.Run("warm/"+q.name, func(b *testing.B) {
				s := openBench(b, path)
				defer s.Close()
				if err := q.fn(s); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if err := q.fn(s); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("cold/"+q.name, func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					s := openBench(b, path)
					b.StartTimer()
					err := q.fn(s)
					b.StopTimer()
					s.Close()
					b.StartTimer()
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
