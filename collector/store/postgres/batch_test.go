package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/storetest"
)

// TestReportsBatched sends reports from many goroutines at once, so the
// report writer's batches hold many of them: several of one device
// (later rounds), redeliveries (stored once), conflicting redeliveries
// (refused, the rest of the batch goes on) and reports the database
// refuses (a NUL byte in a text column), whose batch is rolled back and
// written again report by report. Every other report must be stored
// exactly once, and the aggregates the batches kept must be the ones
// the backfill computes.
func TestReportsBatched(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	const devices = 60
	if err := storetest.BuildFleet(ctx, s, devices, now, nil); err != nil {
		t.Fatal(err)
	}
	startBatches, startJobs := s.ReportBatches()
	report := func(i int, seq uint64) store.Report {
		id := fmt.Sprintf("dev_%08d", i)
		at := now.Add(time.Duration(seq) * 90 * time.Second)
		r := store.Report{DeviceID: id, Sequence: seq, ReceivedAt: at, CollectedAt: at, AgentVersion: "1.0",
			PolicyName: "baseline", PolicyVersion: 1, Facts: []byte{0x0a, byte(seq)}, ContentHash: []byte(fmt.Sprint(id, seq))}
		for j, rule := range storetest.FleetRules {
			v := store.Pass
			switch (i + j + int(seq)) % 5 {
			case 0:
				v = store.Fail
			case 1:
				v = store.Unknown
			}
			r.Results = append(r.Results, store.RuleResult{RuleID: rule, Title: rule, Family: "os", Severity: "high", Collector: v, Agent: v})
		}
		return r
	}
	var wg sync.WaitGroup
	var conflicts, refused, dups atomic.Int64
	const workers = 30
	for g := range workers {
		wg.Go(func() {
			for i := g; i < devices; i += workers {
				for seq := uint64(2); seq <= 5; seq++ {
					r := report(i, seq)
					if seq == 4 && i%7 == 0 {
						// Refused by the database: never stored, and
						// the next sequence still is.
						bad := r
						bad.Results = append([]store.RuleResult{}, r.Results...)
						bad.Results[0].Observed = "bad\x00text"
						if _, err := s.SaveReport(ctx, bad); err == nil {
							t.Errorf("report with a NUL byte of %s stored", r.DeviceID)
						} else {
							refused.Add(1)
						}
						continue
					}
					var wgr sync.WaitGroup
					var stored [2]bool
					for k := range stored {
						wgr.Go(func() {
							var err error
							if stored[k], err = s.SaveReport(ctx, r); err != nil {
								t.Errorf("report %s %d: %v", r.DeviceID, seq, err)
							}
						})
					}
					wgr.Wait()
					if stored[0] == stored[1] {
						t.Errorf("report %s %d sent twice at once: stored %v, want exactly one", r.DeviceID, seq, stored)
					}
					dups.Add(1)
					other := r
					other.ContentHash = []byte("other")
					if _, err := s.SaveReport(ctx, other); errors.Is(err, store.ErrReportConflict) {
						conflicts.Add(1)
					} else {
						t.Errorf("conflicting report %s %d: %v, want ErrReportConflict", r.DeviceID, seq, err)
					}
				}
			}
		})
	}
	wg.Wait()
	batches, jobs := s.ReportBatches()
	if batches-startBatches == 0 || jobs-startJobs < 2*(batches-startBatches) {
		t.Fatalf("%d reports in %d batches: the test did not batch", jobs-startJobs, batches-startBatches)
	}
	if conflicts.Load() == 0 || refused.Load() == 0 || dups.Load() == 0 {
		t.Fatalf("conflicts %d, refused %d, redeliveries %d: each must happen", conflicts.Load(), refused.Load(), dups.Load())
	}
	for i := range devices {
		id := fmt.Sprintf("dev_%08d", i)
		reps, err := s.Reports(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, r := range reps {
			seqs = append(seqs, r.Sequence)
		}
		want := []uint64{5, 4, 3, 2}
		if i%7 == 0 {
			want = []uint64{5, 3, 2}
		}
		if i%100 >= 98 {
			// Never reported in BuildFleet: no sequence 1.
		} else {
			want = append(want, 1)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(want) {
			t.Errorf("%s: reports %v, want %v", id, seqs, want)
		}
	}
	checkBackfill(t, dsn, s, now.Add(10*time.Minute))
}
