package sqlite

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

// BenchmarkIntegrations measures what /metrics' compliance gauges and
// the events dispatcher ask of the store, on the dashboard benchmark's
// fleet (benchFleetPath; WARD_BENCH_DB names another database file to
// use instead, migrated on open): the gauges' whole computation, each
// query of it, and the dispatcher's steps. The yardstick is one pass
// over the fleet, what a gauge computed by scanning would cost.
func BenchmarkIntegrations(b *testing.B) {
	path := os.Getenv("WARD_BENCH_DB")
	if path == "" {
		path, _ = benchFleetPath(b)
	}
	ctx := context.Background()
	stale := storetest.FleetStaleAfter
	var deadlines []store.DeadlineRule
	for _, g := range storetest.FleetGroups {
		for _, r := range storetest.FleetRules {
			deadlines = append(deadlines, store.DeadlineRule{Group: g, RuleID: r, Grace: 24 * time.Hour})
		}
	}
	s := openBench(b, path)
	defer s.Close()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d devices", n)
	for _, q := range []struct {
		name string
		fn   func() error
	}{
		{"yardstick-count-devices", func() error {
			var n int
			return s.db.QueryRowContext(ctx, `SELECT count(*) FROM devices WHERE revoked_at IS NULL`).Scan(&n)
		}},
		{"gauges", func() error {
			if _, err := s.FleetCounts(ctx, benchNow, stale); err != nil {
				return err
			}
			if _, err := s.Trend(ctx, benchNow, 1); err != nil {
				return err
			}
			if _, err := s.FailingByRule(ctx, benchNow, stale); err != nil {
				return err
			}
			if _, err := s.GroupCounts(ctx, benchNow, stale); err != nil {
				return err
			}
			_, _, err := s.PastDeadline(ctx, deadlines, benchNow, 1)
			return err
		}},
		{"GroupCounts", func() error {
			g, err := s.GroupCounts(ctx, benchNow, stale)
			if err == nil && len(g) != len(storetest.FleetGroups) {
				err = fmt.Errorf("%d groups", len(g))
			}
			return err
		}},
		{"PassedDeadlines-1m-window", func() error {
			_, err := s.PassedDeadlines(ctx, deadlines, benchNow.Add(-time.Minute), benchNow, 5000)
			return err
		}},
		{"TransitionsAfter-last-100", func() error {
			last, err := s.LastTransitionID(ctx)
			if err == nil {
				_, err = s.TransitionsAfter(ctx, last-100, 100)
			}
			return err
		}},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if err := q.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
