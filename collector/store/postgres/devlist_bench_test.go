package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/storetest"
)

// BenchmarkDeviceList measures the device list's filters and sorts
// (storetest.DeviceListQueries) on BenchmarkDashboard's fleet, warm and
// cold as it does; list/hostname is the yardstick to read them against.
func BenchmarkDeviceList(b *testing.B) {
	dsn, n := benchFleetDSN(b)
	ctx := context.Background()
	open := func(b *testing.B) *postgres.Store {
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	s := open(b)
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM devices`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	queries, err := storetest.DeviceListQueries(ctx, s, n, benchNow)
	s.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
		for _, q := range queries {
			b.Run("warm/"+q.Name, func(b *testing.B) {
				s := open(b)
				defer s.Close()
				if err := storetest.RunDeviceListQuery(ctx, s, q); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if err := storetest.RunDeviceListQuery(ctx, s, q); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("cold/"+q.Name, func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					s := open(b)
					b.StartTimer()
					err := storetest.RunDeviceListQuery(ctx, s, q)
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
