package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// The ingest benchmarks store reports of 12 rule results and 2 KiB of
// facts that change every round (no heartbeats), on WARD_BENCH_DIR if
// set. Compare them with the same file run on an older tree.

// benchDir is a fresh directory on WARD_BENCH_DIR, or the test's.
func benchDir(b *testing.B) string {
	dir := os.Getenv("WARD_BENCH_DIR")
	if dir == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fleetStore is a store holding n devices (bench_0 …), each with 12
// rule states as a report would have left them, written in bulk on a
// separate connection (no ANALYZE: as a collector's database is).
func fleetStore(b *testing.B, n int) *Store {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(benchDir(b), "ward.db")
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixNano()
	verdicts := []string{"PASS", "PASS", "PASS", "FAIL", "UNKNOWN"}
	for i := range n {
		id := fmt.Sprintf("bench_%d", i)
		if _, err := tx.Exec(`INSERT INTO devices (id, grp, hostname, platform, os_name, os_version, architecture, machine_id, agent_version, enrolled_at, cert_serial, cert_not_after)
			VALUES (?, 'staff', ?, 'linux', 'Debian', '12', 'amd64', '', '1.0.0', ?, ?, ?)`, id, "host-"+id, now, "serial-"+id, now+int64(24*time.Hour)); err != nil {
			b.Fatal(err)
		}
		for r := range 12 {
			v := verdicts[(i+r)%len(verdicts)]
			var since any
			if v == "FAIL" {
				since = now
			}
			if _, err := tx.Exec(`INSERT INTO rule_states (device_id, rule_id, title, family, severity, collector, agent, observed, expected, reason, failing_since, updated_at, sequence)
				VALUES (?, ?, 'A rule', 'firewall', 'high', ?, ?, 'observed', 'expected', '', ?, ?, 0)`, id, fmt.Sprintf("rule-%d", r), v, v, since, now); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	raw.Close()
	if s, err = Open(ctx, path); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchReport is round seq of device id: one or two of its 12 rules
// change verdict every round, and its facts change.
func benchReport(id string, seq uint64) store.Report {
	now := time.Now()
	verdicts := []store.Verdict{store.Pass, store.Pass, store.Fail, store.Unknown}
	results := make([]store.RuleResult, 12)
	for i := range results {
		v := store.Pass
		if i < 2 {
			v = verdicts[(int(seq)+i)%len(verdicts)]
		}
		results[i] = store.RuleResult{RuleID: fmt.Sprintf("rule-%d", i), Title: "A rule", Family: "firewall", Severity: "high",
			Collector: v, Agent: v, Observed: "firewall on, inbound default drop", Expected: "firewall on"}
	}
	facts := make([]byte, 2048)
	for i := range facts {
		facts[i] = byte(int(seq)*7 + i)
	}
	return store.Report{DeviceID: id, Sequence: seq, ReceivedAt: now, CollectedAt: now, ContentHash: facts[:32],
		AgentVersion: "1.0.0", PolicyName: "baseline", PolicyVersion: 1, Facts: facts, Results: results}
}

// BenchmarkSaveReportFleet is one SaveReport at a time, round robin over
// the first 64 devices, in stores of 1,000 and 100,000 devices (or the
// sizes WARD_BENCH_FLEETS lists, comma-separated: the curve up to 1M is
// "1000,10000,100000,1000000"): the cost per report must not grow with
// the fleet.
func BenchmarkSaveReportFleet(b *testing.B) {
	sizes := []int{1000, 100000}
	if env := os.Getenv("WARD_BENCH_FLEETS"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 64 {
				b.Fatalf("WARD_BENCH_FLEETS: %q is not a fleet size of at least 64", f)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			s := fleetStore(b, n)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("bench_%d", i%64)
				if _, err := s.SaveReport(ctx, benchReport(id, uint64(i/64+1))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}

// BenchmarkSaveReportParallel is 64 goroutines saving reports at once,
// each for a device of its own, in a store of 1,000 devices. Failed
// saves (SQLITE_BUSY) are counted, not fatal.
func BenchmarkSaveReportParallel(b *testing.B) {
	s := fleetStore(b, 1000)
	ctx := context.Background()
	var next, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	before := s.writer.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("bench_%d", next.Add(1)-1)
		seq := uint64(0)
		for pb.Next() {
			seq++
			if _, err := s.SaveReport(ctx, benchReport(id, seq)); err != nil {
				failed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
	b.ReportMetric(float64(failed.Load()), "failed")
	after := s.writer.Stats()
	b.ReportMetric(float64(after.Jobs-before.Jobs)/float64(max(1, after.Batches-before.Batches)), "reports/commit")
	if firstErr != nil {
		b.Logf("%d of %d saves failed; first: %v", failed.Load(), b.N, firstErr)
	}
}
