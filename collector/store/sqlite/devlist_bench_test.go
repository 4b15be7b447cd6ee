package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/wardhq/ward/collector/store/storetest"
)

// BenchmarkDeviceList measures the device list's filters and sorts
// (storetest.DeviceListQueries) on BenchmarkDashboard's fleet, warm and
// cold as it does; list/hostname is the yardstick to read them against.
func BenchmarkDeviceList(b *testing.B) {
	path, n := benchFleetPath(b)
	ctx := context.Background()
	s := openBench(b, path)
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&n); err != nil {
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
				s := openBench(b, path)
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
					s := openBench(b, path)
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
