package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/storetest"
)

// benchNow is the time a benchmark fleet is built and queried at, fixed
// so that a kept database gives the same answers on every run.
var benchNow = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// benchFleetDSN returns a database of n devices built by
// storetest.BuildFleetParallel through this store's Enroll, SaveReport
// and RevokeDevice (no ANALYZE beyond what autovacuum does), kept on the
// test server as ward_bench_dashboard_v<schema>_<n> so a rerun starts at
// once (drop it to rebuild). When only an older schema's fleet is there,
// it is copied (CREATE DATABASE … TEMPLATE) and the copy opened, which
// migrates it as a collector's upgrade would. WARD_BENCH_DEVICES sets n
// (default 10,000), WARD_BENCH_WORKERS the devices built at once
// (default 8: the store is built as a collector serving many devices
// fills it), WARD_BENCH_TAG a suffix of the kept database's name. The build's sessions run with synchronous_commit off (as
// sqlite's builds with synchronous OFF): the build is not what is
// measured.
func benchFleetDSN(b *testing.B) (string, int) {
	b.Helper()
	n, workers := 10_000, 8
	for env, p := range map[string]*int{"WARD_BENCH_DEVICES": &n, "WARD_BENCH_WORKERS": &workers} {
		if s := os.Getenv(env); s != "" {
			var err error
			if *p, err = strconv.Atoi(s); err != nil {
				b.Fatalf("%s: %v", env, err)
			}
		}
	}
	ctx := context.Background()
	pgtest.DSN(b) // skips, or fails under CI=true, without a server
	cfg, err := pgx.ParseConfig(pgtest.Server())
	if err != nil {
		b.Fatal(err)
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	dsnOf := func(db string) string {
		dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, db)
		if cfg.Password != "" {
			dsn += " password=" + cfg.Password
		}
		return dsn
	}
	nameOf := func(v int) string { return fmt.Sprintf("ward_bench_dashboard_v%d_%d", v, n) }
	exists := func(db string) bool {
		var ok bool
		if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&ok); err != nil {
			b.Fatal(err)
		}
		return ok
	}
	// WARD_BENCH_TAG names this schema's fleet apart, for branches that
	// number their migrations alike on one server.
	name := nameOf(postgres.SchemaVersion())
	if tag := os.Getenv("WARD_BENCH_TAG"); tag != "" {
		name += "_" + tag
	}
	if exists(name) {
		return dsnOf(name), n
	}
	building := name + "_building"
	admin.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`)
	start := time.Now()
	for v := postgres.SchemaVersion() - 1; v > 0; v-- {
		if !exists(nameOf(v)) {
			continue
		}
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+building+` TEMPLATE `+nameOf(v)); err != nil {
			b.Fatal(err)
		}
		s, err := postgres.Open(ctx, dsnOf(building), postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		b.Logf("copied %s and migrated it to schema %d in %s", nameOf(v), postgres.SchemaVersion(), time.Since(start).Round(time.Second))
		if _, err := admin.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
			b.Fatal(err)
		}
		return dsnOf(name), n
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		b.Fatal(err)
	}
	s, err := postgres.Open(ctx, dsnOf(building)+" options='-c synchronous_commit=off'", postgres.Options{MaxConns: int32(workers) + 2})
	if err != nil {
		b.Fatal(err)
	}
	err = storetest.BuildFleetParallel(ctx, s, n, benchNow, workers, func(done int) {
		if done%50_000 == 0 {
			b.Logf("built %d devices in %s", done, time.Since(start).Round(time.Second))
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.Logf("built %d devices through Enroll and SaveReport in %s (%s per device, %d at once)", n, time.Since(start).Round(time.Second), time.Since(start)/time.Duration(n), workers)
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
		b.Fatal(err)
	}
	return dsnOf(name), n
}

// BenchmarkDashboard measures the dashboard's queries on a fleet built
// through the ingest path, as sqlite's BenchmarkDashboard does: warm, on
// one open store, and cold, each run on a store (pool) opened for it
// (the server's shared buffers stay warm).
func BenchmarkDashboard(b *testing.B) {
	dsn, n := benchFleetDSN(b)
	ctx := context.Background()
	stale := storetest.FleetStaleAfter
	var deadlines []store.DeadlineRule
	for _, g := range storetest.FleetGroups {
		for _, r := range storetest.FleetRules {
			deadlines = append(deadlines, store.DeadlineRule{Group: g, RuleID: r, Grace: 24 * time.Hour})
		}
	}
	open := func(b *testing.B) *postgres.Store {
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	list := func(q store.DeviceQuery) func(*postgres.Store) error {
		q.Now, q.StaleAfter, q.Limit = benchNow, stale, 50
		return func(s *postgres.Store) error {
			p, err := s.ListDevices(ctx, q)
			if err == nil && len(p.Devices) == 0 {
				err = fmt.Errorf("no devices for %+v", q)
			}
			return err
		}
	}
	// A cursor deep into the list: the page after device n/2. n is what
	// the database holds (a fleet whose build was stopped holds fewer).
	s := open(b)
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM devices`).Scan(&n); err != nil {
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
		fn   func(*postgres.Store) error
	}{
		// The yardstick: one pass over the fleet, what every view cost
		// before the aggregates.
		{"yardstick-count-devices", func(s *postgres.Store) error {
			var n int
			return s.Pool().QueryRow(ctx, `SELECT count(*) FROM devices WHERE revoked_at IS NULL`).Scan(&n)
		}},
		{"overview", func(s *postgres.Store) error {
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
		{"FleetCounts", func(s *postgres.Store) error { _, err := s.FleetCounts(ctx, benchNow, stale); return err }},
		{"FailingByRule", func(s *postgres.Store) error { _, err := s.FailingByRule(ctx, benchNow, stale); return err }},
		{"PastDeadline", func(s *postgres.Store) error {
			od, total, err := s.PastDeadline(ctx, deadlines, benchNow, 50)
			if err == nil && (len(od) != min(50, total) || total == 0) {
				err = fmt.Errorf("past deadline: %d rows of %d", len(od), total)
			}
			return err
		}},
		{"Trend30", func(s *postgres.Store) error { _, err := s.Trend(ctx, benchNow, 30); return err }},
		{"Trend90", func(s *postgres.Store) error { _, err := s.Trend(ctx, benchNow, 90); return err }},
		{"Groups", func(s *postgres.Store) error { _, err := s.Groups(ctx); return err }},
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
	}
	b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
		for _, q := range queries {
			b.Run("warm/"+q.name, func(b *testing.B) {
				s := open(b)
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
					s := open(b)
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
