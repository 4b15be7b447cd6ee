package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

// aggTables are the counter tables, with the columns to compare them by.
var aggTables = []string{
	`SELECT grp, class, n FROM agg_devices ORDER BY 1, 2`,
	`SELECT width, bucket, grp, class, n FROM agg_seen ORDER BY 1, 2, 3, 4`,
	`SELECT width, bucket, rule_id, n FROM agg_rule_seen ORDER BY 1, 2, 3`,
	`SELECT grp, rule_id, since, device_id FROM agg_failing ORDER BY 1, 2, 3, 4`,
	`SELECT grp, rule_id, hour, n FROM agg_failing_hours ORDER BY 1, 2, 3`,
}

func dumpAggregates(t *testing.T, db *sql.DB) [][]string {
	t.Helper()
	var out [][]string
	for _, q := range aggTables {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var dump []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			dump = append(dump, fmt.Sprint(vals...))
		}
		rows.Close()
		out = append(out, dump)
	}
	return out
}

// TestAggregatesBackfill checks that the migration's backfill, run on a
// fleet, gives the counters the write paths kept for it, and that a
// trend replayed from the transitions ends with the fleet as it stands.
func TestAggregatesBackfill(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Second)
	if err := storetest.BuildFleet(ctx, s, 600, now, nil); err != nil {
		t.Fatal(err)
	}
	checkBackfill(t, s, now)
}

// checkBackfill compares the aggregates the writes kept with the ones
// the migration's backfill computes from the devices and rule states.
func checkBackfill(t *testing.T, s *Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	before, err := s.Trend(ctx, now, 3)
	if err != nil {
		t.Fatal(err)
	}
	kept := dumpAggregates(t, s.db)
	if len(kept[0]) == 0 || len(kept[3]) == 0 {
		t.Fatalf("no aggregates kept: %v", kept)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM agg_devices`, `DELETE FROM agg_seen`, `DELETE FROM agg_rule_seen`, `DELETE FROM agg_failing`,
			`DELETE FROM agg_failing_hours`, `DELETE FROM agg_trend`, aggregatesBackfill} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return backfillTrend(ctx, tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	filled := dumpAggregates(t, s.db)
	for i := range kept {
		if !slices.Equal(kept[i], filled[i]) {
			t.Errorf("%s: backfill gives %d rows, the writes kept %d:\n%v\nvs\n%v", aggTables[i], len(filled[i]), len(kept[i]), filled[i], kept[i])
		}
	}
	after, err := s.Trend(ctx, now, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) || after[2].Compliant+after[2].Failing+after[2].Unknown == 0 {
		t.Errorf("trend after backfill %+v, kept %+v", after, before)
	}
}

// TestAggregatesBatched sends reports from many goroutines at once, so
// the writer's batches hold many jobs whose counter changes it writes
// once per batch, some of them failing (a conflicting redelivery, which
// rolls back to its savepoint): the counters must be the backfill's,
// as if every report had been written on its own.
func TestAggregatesBatched(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Second)
	const devices = 120
	if err := storetest.BuildFleet(ctx, s, devices, now, nil); err != nil {
		t.Fatal(err)
	}
	start := s.writer.Stats()
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for g := range 40 {
		wg.Go(func() {
			for i := g; i < devices; i += 40 {
				id := fmt.Sprintf("dev_%08d", i)
				for seq := uint64(2); seq <= 6; seq++ {
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
					if _, err := s.SaveReport(ctx, r); err != nil {
						t.Errorf("report %s %d: %v", id, seq, err)
					}
					// The same identity with other content: refused, in
					// the middle of someone's batch.
					r.ContentHash = []byte("other")
					if _, err := s.SaveReport(ctx, r); errors.Is(err, store.ErrReportConflict) {
						conflicts.Add(1)
					} else {
						t.Errorf("conflicting report %s %d: %v, want ErrReportConflict", id, seq, err)
					}
				}
			}
		})
	}
	wg.Wait()
	st := s.writer.Stats()
	if jobs, batches := st.Jobs-start.Jobs, st.Batches-start.Batches; batches == 0 || jobs < 2*batches {
		t.Fatalf("%d jobs in %d batches: the test did not batch", jobs, batches)
	}
	if conflicts.Load() == 0 {
		t.Fatal("no conflicting report was refused")
	}
	checkBackfill(t, s, now.Add(10*time.Minute))
}
