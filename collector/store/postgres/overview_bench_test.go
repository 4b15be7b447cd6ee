package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/storetest"
)

// BenchmarkOverview measures what the overview's failing-now tables and a
// device page's timeline read, on the fleet of BenchmarkDashboard
// (benchFleetDSN), or on the database WARD_BENCH_OVERVIEW_DSN names:
// FailingNow for every (group, rule) of the fleet, as the overview asks
// it with one policy for all groups, and AuditFor a device and its group.
func BenchmarkOverview(b *testing.B) {
	dsn := os.Getenv("WARD_BENCH_OVERVIEW_DSN")
	if dsn == "" {
		dsn, _ = benchFleetDSN(b)
	}
	ctx := context.Background()
	var rules []store.DeadlineRule
	for _, g := range storetest.FleetGroups {
		for i, r := range storetest.FleetRules {
			// Some rules without a deadline, as a policy may have.
			rules = append(rules, store.DeadlineRule{Group: g, RuleID: r, Grace: time.Duration(i) * 24 * time.Hour})
		}
	}
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p, err := s.ListDevices(ctx, store.DeviceQuery{Now: benchNow, StaleAfter: storetest.FleetStaleAfter, Limit: 1})
	if err != nil || len(p.Devices) == 0 {
		b.Fatalf("a device: %+v, %v", p, err)
	}
	dev := p.Devices[0]
	b.Run("FailingNow", func(b *testing.B) {
		for b.Loop() {
			p, err := s.FailingNow(ctx, store.FailingQuery{Rules: rules, Now: benchNow, Limit: 25})
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Rows) != 25 || p.Total < 25 {
				b.Fatalf("failing now: %d rows of %d", len(p.Rows), p.Total)
			}
		}
	})
	b.Run("AuditFor", func(b *testing.B) {
		for b.Loop() {
			es, err := s.AuditFor(ctx, []string{dev.ID, dev.Group}, 150)
			if err != nil || len(es) == 0 {
				b.Fatalf("audit for %s: %d, %v", dev.ID, len(es), err)
			}
		}
	})
}
