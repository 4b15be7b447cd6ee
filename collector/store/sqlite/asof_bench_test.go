package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// BenchmarkStateAsOf measures the state as of a time (export --as-of)
// over 200 devices with 100 reports each, a day apart: as of now (every
// device's newest report), as of the middle of the history and as of
// its first day, and prune's pass over the same history. The reports
// are written through SaveReport with synchronous(OFF): the build is not
// what is measured.
func BenchmarkStateAsOf(b *testing.B) {
	const devices, reports = 200, 100
	ctx := context.Background()
	s, err := OpenWith(ctx, b.TempDir()+"/ward.db", Options{synchronous: "OFF"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	hash := []byte("bench-token-hash-0123456789abcdef")
	if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: hash, Group: "staff", Uses: devices, UsesLeft: devices, CreatedAt: start, ExpiresAt: start.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	for d := range devices {
		e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash, Now: start, NewID: fmt.Sprintf("dev-%03d", d),
			Info: store.DeviceInfo{Hostname: fmt.Sprintf("h-%03d", d), Platform: "linux", OSName: "Debian", OSVersion: "12", AgentVersion: "1.0.0"}},
			func(string) (store.Issued, error) {
				return store.Issued{Serial: fmt.Sprint(d), NotAfter: start.AddDate(1, 0, 0)}, nil
			})
		if err != nil {
			b.Fatal(err)
		}
		for i := range reports {
			at := start.Add(time.Duration(i)*24*time.Hour + time.Minute)
			v := store.Pass
			if (i+d)%7 == 0 {
				v = store.Fail
			}
			r := store.Report{DeviceID: e.Device.ID, Sequence: uint64(i + 1), ReceivedAt: at, CollectedAt: at.Add(-time.Second), ObservedAt: at.Add(-time.Second),
				AgentVersion: "1.0.0", PolicyName: "baseline", PolicyVersion: 1, Facts: []byte(fmt.Sprintf("\x0a\x02%02d", i%7)),
				Results: []store.RuleResult{{RuleID: "disk-encrypted", Title: "t", Family: "f", Severity: "high", Collector: v, Agent: v, Observed: "o", Expected: "e"}}}
			if _, err := s.SaveReport(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"now", start.Add(reports * 24 * time.Hour)},
		{"middle", start.Add(reports / 2 * 24 * time.Hour)},
		{"first-day", start.Add(time.Hour)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				n := 0
				if err := s.StateAsOf(ctx, tc.at, func(store.StateRow) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != devices {
					b.Fatalf("%d rows, want %d", n, devices)
				}
			}
		})
	}
	// Prune with nothing to delete: the keep set and the candidates.
	b.Run("prune-nothing", func(b *testing.B) {
		for range b.N {
			if _, err := s.PruneReports(ctx, start.Add(-time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
