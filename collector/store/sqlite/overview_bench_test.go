package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

// BenchmarkOverview measures what the overview's failing-now tables and a
// device page's timeline read, on the fleet of BenchmarkDashboard
// (benchFleetPath; WARD_BENCH_DEVICES sets its size): FailingNow for
// every (group, rule) of the fleet, as the overview asks it with one
// policy for all groups, and AuditFor a device and its group.
func BenchmarkOverview(b *testing.B) {
	path, _ := benchFleetPath(b)
	ctx := context.Background()
	var rules []store.DeadlineRule
	for _, g := range storetest.FleetGroups {
		for i, r := range storetest.FleetRules {
			// Some rules without a deadline, as a policy may have.
			grace := time.Duration(i) * 24 * time.Hour
			rules = append(rules, store.DeadlineRule{Group: g, RuleID: r, Grace: grace})
		}
	}
	s := openBench(b, path)
	defer s.Close()
	var dev, grp string
	if err := s.db.QueryRowContext(ctx, `SELECT id, grp FROM devices WHERE revoked_at IS NULL ORDER BY id LIMIT 1`).Scan(&dev, &grp); err != nil {
		b.Fatal(err)
	}
	b.Run("FailingNow", func(b *testing.B) {
		for b.Loop() {
			p, err := s.FailingNow(ctx, store.FailingQuery{Rules: rules, Now: benchNow, Limit: 25})
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Rows) != 25 || p.Total < 25 {
				b.Fatal(fmt.Errorf("failing now: %d rows of %d", len(p.Rows), p.Total))
			}
		}
	})
	b.Run("AuditFor", func(b *testing.B) {
		for b.Loop() {
			es, err := s.AuditFor(ctx, []string{dev, grp}, 150)
			if err != nil || len(es) == 0 {
				b.Fatalf("audit for %s: %d, %v", dev, len(es), err)
			}
		}
	})
}
