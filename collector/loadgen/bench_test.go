package loadgen_test

import (
	"context"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/loadgen"
	"github.com/wardhq/ward/collector/server/servertest"
)

// BenchmarkRun measures a report's round trip, sealed and unsealed, over
// kept connections to a real collector (SQLite) in this process: ns/op
// is wall time per acknowledged report with 8 in flight. With
// -cpuprofile it shows what the collector's seal check and the store's
// chain reads cost (collector/server/seal.go, SaveReport):
//
//	go test ./collector/loadgen -run '^$' -bench Run -benchtime 4000x -cpuprofile cpu.out
func BenchmarkRun(b *testing.B) {
	for _, tc := range []struct {
		name     string
		unsealed bool
	}{{"sealed", false}, {"unsealed", true}} {
		b.Run(tc.name, func(b *testing.B) {
			const devices = 40
			c := servertest.Start(b, unthrottled)
			rounds := max(1, b.N/devices)
			cfg := loadgen.Config{
				Addr: c.Addr, Fingerprint: c.Fingerprint, Token: c.Token("default", devices, time.Hour),
				Devices: devices, EnrollConcurrency: 4, Bundles: bundles,
				Run: loadgen.RunConfig{Mode: loadgen.Kept, Concurrency: 8, Rounds: rounds, Unsealed: tc.unsealed},
			}
			b.ResetTimer()
			s, err := loadgen.Bench(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			if s.Ward.Errors != nil || s.Ward.Acknowledged != int64(devices*rounds) || s.Ward.Sealed == tc.unsealed {
				b.Fatalf("%+v", s.Ward)
			}
			b.ReportMetric(float64(s.Ward.Seconds)*1e9/float64(s.Ward.Acknowledged), "ns/report")
			b.ReportMetric(s.Ward.SealMicros, "seal-µs/report")
		})
	}
}
