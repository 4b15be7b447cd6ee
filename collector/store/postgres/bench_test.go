package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/sqlite"
)

// backends opens each backend fresh for a benchmark, so one run gives the
// PostgreSQL figures and their SQLite yardstick side by side (both
// durable: SQLite synchronous(FULL), PostgreSQL synchronous_commit on).
var backends = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"sqlite", func(b *testing.B) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "ward.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(b *testing.B) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.DSN(b), postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

// benchDevices enrols n devices through the store and returns their ids.
func benchDevices(b *testing.B, s store.Store, n int) []string {
	b.Helper()
	ctx, now := context.Background(), time.Now()
	hash := []byte("bench-token-hash-0123456789abcdef")
	if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: hash, Group: "staff", Uses: n, UsesLeft: n, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash, Now: now, NewID: fmt.Sprintf("dev-bench-%d", i),
			Info: store.DeviceInfo{Hostname: "bench", Platform: "linux", OSName: "Debian", OSVersion: "12", Architecture: "amd64", AgentVersion: "1.0.0"}},
			func(id string) (store.Issued, error) {
				return store.Issued{Serial: "s-" + id, NotAfter: now.Add(24 * time.Hour)}, nil
			})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = e.Device.ID
	}
	return ids
}

func benchResults(flip bool) []store.RuleResult {
	results := make([]store.RuleResult, 12)
	for i := range results {
		results[i] = store.RuleResult{RuleID: fmt.Sprintf("rule-%d", i), Title: "A rule", Family: "firewall", Severity: "high",
			Collector: store.Pass, Observed: "firewall on, inbound default drop", Expected: "firewall on"}
	}
	if flip {
		results[0].Collector, results[0].Observed = store.Fail, "firewall off"
	}
	return results
}

// BenchmarkSaveReport measures one acknowledged report on each backend,
// as sqlite's BenchmarkSaveReport does (12 rules, 4 KiB of facts):
// unchanged reports of one device (stored as heartbeats), reports whose
// facts and one verdict change every time, and changing reports of 64
// devices sent by concurrent callers (PostgreSQL locks per device, SQLite
// has one writer).
func BenchmarkSaveReport(b *testing.B) {
	for _, be := range backends {
		for _, mode := range []string{"unchanged", "changing", "changing-parallel"} {
			b.Run("backend="+be.name+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				s := be.open(b)
				n := 1
				if mode == "changing-parallel" {
					n = 64
				}
				ids := benchDevices(b, s, n)
				base := make([]byte, 4096)
				rand.Read(base)
				seqs := make([]atomic.Uint64, n)
				save := func(dev int, i uint64) {
					seq := seqs[dev].Add(1)
					facts, results := base, benchResults(false)
					if mode != "unchanged" {
						facts = append([]byte{}, base...)
						facts[100], facts[101] = byte(seq), byte(seq>>8)
						results = benchResults(seq%2 == 0)
					}
					now := time.Now()
					r := store.Report{DeviceID: ids[dev], Sequence: seq, ReceivedAt: now, CollectedAt: now,
						AgentVersion: "1.0.0", PolicyName: "baseline", PolicyVersion: 1, Facts: facts, Results: results}
					if stored, err := s.SaveReport(ctx, r); err != nil || !stored {
						b.Errorf("SaveReport: %v, %v", stored, err)
					}
				}
				b.ResetTimer()
				if n == 1 {
					for i := range b.N {
						save(0, uint64(i))
					}
					return
				}
				var next atomic.Uint64
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1)
						save(int(i%uint64(n)), i)
					}
				})
			})
		}
	}
}

// BenchmarkEnroll measures one enrolment (a new device from a
// many-use token) on each backend; signing is free here, so this is the
// store's share of an enrolment.
func BenchmarkEnroll(b *testing.B) {
	for _, be := range backends {
		b.Run("backend="+be.name, func(b *testing.B) {
			ctx, now := context.Background(), time.Now()
			s := be.open(b)
			hash := []byte("bench-token-hash-0123456789abcdef")
			if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: hash, Group: "staff", Uses: b.N, UsesLeft: b.N, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				_, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash, Now: now, NewID: fmt.Sprintf("dev-%d", i),
					Info: store.DeviceInfo{Hostname: "bench", Platform: "linux", OSName: "Debian", OSVersion: "12", Architecture: "amd64", MachineID: fmt.Sprintf("m-%d", i), AgentVersion: "1.0.0"}},
					func(id string) (store.Issued, error) {
						return store.Issued{Serial: "s-" + id, NotAfter: now.Add(24 * time.Hour)}, nil
					})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
