package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// BenchmarkEnrolConcurrent is the stores' share of an enrolment, as the collector
// makes it (the epoch started with it), 64 at once through one token:
// the store-side figure next to ward-loadgen's, without TLS or signing.
func BenchmarkEnrolConcurrent(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			ctx, now := context.Background(), time.Now()
			hash := []byte("bench-enrol-token-0123456789abcd")
			uses := b.N + 1
			if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: hash, Group: "staff", Uses: uses, UsesLeft: uses, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(32) // 64 in flight on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					id := fmt.Sprintf("dev-enrol-%d", i)
					e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash, Now: now, NewID: id, StartEpoch: true,
						Info: store.DeviceInfo{Hostname: "bench", Platform: "linux", MachineID: rand.Text()}},
						func(id string) (store.Issued, error) {
							return store.Issued{Serial: "s-" + id, NotAfter: now.Add(24 * time.Hour)}, nil
						})
					if err == nil && e.Epoch == 0 {
						_, err = s.StartEpoch(ctx, id, now)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enrolments/s")
		})
	}
}
