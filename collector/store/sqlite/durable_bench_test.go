package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// BenchmarkSaveReport measures one acknowledged report (SaveReport, one
// transaction) with synchronous(NORMAL), which a power loss can roll
// back, and with the store's synchronous(FULL), which it cannot. The
// difference is one fsync of the WAL per commit, so it depends on the
// disk: WARD_BENCH_DIR picks the filesystem (default: the test's
// temporary directory; on tmpfs the two are equal).
func BenchmarkSaveReport(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			dir := os.Getenv("WARD_BENCH_DIR")
			if dir == "" {
				dir = b.TempDir()
			} else {
				var err error
				if dir, err = os.MkdirTemp(dir, "bench"); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { os.RemoveAll(dir) })
			}
			ctx := context.Background()
			s, err := OpenWith(ctx, dir+"/ward.db", Options{synchronous: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			id := benchDevice(b, s)
			results := make([]store.RuleResult, 12)
			for i := range results {
				results[i] = store.RuleResult{RuleID: fmt.Sprintf("rule-%d", i), Title: "A rule", Family: "firewall", Severity: "high",
					Collector: store.Pass, Observed: "firewall on, inbound default drop", Expected: "firewall on"}
			}
			facts := make([]byte, 4096)
			rand.Read(facts)
			now := time.Now()
			b.ResetTimer()
			for i := range b.N {
				r := store.Report{DeviceID: id, Sequence: uint64(i + 1), ReceivedAt: now, CollectedAt: now,
					AgentVersion: "1.0.0", PolicyName: "baseline", PolicyVersion: 1, Facts: facts, Results: results}
				if stored, err := s.SaveReport(ctx, r); err != nil || !stored {
					b.Fatalf("SaveReport: %v, %v", stored, err)
				}
			}
		})
	}
}

// benchDevice enrols one device through the store and returns its id.
func benchDevice(b *testing.B, s *Store) string {
	b.Helper()
	ctx, now := context.Background(), time.Now()
	hash := []byte("bench-token-hash-0123456789abcdef")
	if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: hash, Group: "staff", Uses: 1, UsesLeft: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash, Now: now, NewID: "dev-bench",
		Info: store.DeviceInfo{Hostname: "bench", Platform: "linux", OSName: "Debian", OSVersion: "12", Architecture: "amd64", AgentVersion: "1.0.0"}},
		func(string) (store.Issued, error) {
			return store.Issued{Serial: "01", NotAfter: now.Add(24 * time.Hour)}, nil
		})
	if err != nil {
		b.Fatal(err)
	}
	return e.Device.ID
}
