package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wardhq/ward/collector/store/aggregate"
)

// The dashboard's aggregates (docs/storage.md) are kept on write: every
// write that can change a device's group, seen time, revocation, verdict
// counts or failing rules takes a snapshot of the device before it
// (loadSnapshot) and hands it to trackAggregates after it, in the same
// transaction, which adds the difference to the counters. A write that
// changes none of these costs two reads.

// classExpr is a device row's class in SQL, over the alias d.
const classExpr = `CASE WHEN d.revoked_at IS NOT NULL THEN 'revoked' WHEN d.fail_n > 0 THEN 'failing'
	WHEN d.unknown_n > 0 OR d.pass_n = 0 THEN 'unknown' ELSE 'compliant' END`

// seenExpr is the time a device's staleness runs from.
const seenExpr = `coalesce(d.last_seen, d.enrolled_at)`

// writeQuerier is what the aggregates run their statements on: a *sql.Tx, or
// the writer's ptx, which runs the hot ones prepared.
type writeQuerier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// loadSnapshot reads the device's snapshot; a missing device has
// exists unset.
func loadSnapshot(ctx context.Context, tx writeQuerier, id string) (aggregate.Snapshot, error) {
	s := aggregate.Snapshot{ID: id}
	// states_at: since SaveReport writes only the rule states that
	// changed, the rows' updated_at can be older than the report that
	// last set them all (migration_ingest.go).
	var statesAt sql.NullInt64
	err := tx.QueryRowContext(ctx, qSnapshotDevice, id).Scan(&s.Group, &s.Class, &s.Seen, &statesAt)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	s.Exists = true
	s.StateAt = statesAt.Int64
	rows, err := tx.QueryContext(ctx, qSnapshotStates, id)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	for rows.Next() {
		var rule, v string
		var since sql.NullInt64
		var updated int64
		if err := rows.Scan(&rule, &v, &since, &updated); err != nil {
			return s, err
		}
		s.States++
		s.StateAt = max(s.StateAt, updated)
		if v == "FAIL" {
			if s.Failing == nil {
				s.Failing = map[string]*int64{}
			}
			s.Failing[rule] = nullable(since)
		}
	}
	return s, rows.Err()
}

// nullable is v as a pointer, nil when NULL.
func nullable(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

// aggregatesKey is the context key of a job's aggregate.Delta.
type aggregatesKey struct{}

// withAggregates is ctx for a job whose aggregate changes collect in d,
// for its batch to write once (commit) instead of each write on its own:
// the reports of a batch mostly move the same few counters (the current
// minute's bucket of their group, say).
func withAggregates(ctx context.Context, d *aggregate.Delta) context.Context {
	return context.WithValue(ctx, aggregatesKey{}, d)
}

// trackAggregates adds to the aggregates the difference between before,
// the device as loadSnapshot read it ahead of the write, and the device
// now. at is when the change happened (a report's ObservedAt, or the
// time of a revocation): the trend counts it from that day, or from the
// device's previous change if that was later.
func trackAggregates(ctx context.Context, tx writeQuerier, before aggregate.Snapshot, at time.Time) error {
	after, err := loadSnapshot(ctx, tx, before.ID)
	if err != nil {
		return err
	}
	return applyAggregates(ctx, tx, before, after, at)
}

// applyAggregates adds the difference between two snapshots of a device
// to the aggregates: to its job's aggDelta when the job has one
// (withAggregates), otherwise to the tables at once.
func applyAggregates(ctx context.Context, tx writeQuerier, before, after aggregate.Snapshot, at time.Time) error {
	d, batched := ctx.Value(aggregatesKey{}).(*aggregate.Delta)
	if !batched {
		d = aggregate.NewDelta()
	}
	d.Change(before, after, nanos(at))
	if batched {
		return nil
	}
	return writeAggregates(ctx, tx, d)
}

// writeAggregates adds d to the aggregate tables.
func writeAggregates(ctx context.Context, tx writeQuerier, d *aggregate.Delta) error {
	for k, n := range d.Dev {
		if err := bump(ctx, tx, n, qBumpDevices, qDropDevices, k.Group, k.Class); err != nil {
			return err
		}
	}
	for k, n := range d.Seen {
		if err := bump(ctx, tx, n, qBumpSeen, qDropSeen, k.Width, k.Bucket, k.Group, k.Class); err != nil {
			return err
		}
	}
	for k, n := range d.Rule {
		if err := bump(ctx, tx, n, qBumpRuleSeen, qDropRuleSeen, k.Width, k.Bucket, k.Rule); err != nil {
			return err
		}
	}
	for k, n := range d.Hour {
		if err := bump(ctx, tx, n, qBumpFailingHours, qDropFailingHours, k.Group, k.Rule, k.Hour); err != nil {
			return err
		}
	}
	for k, n := range d.Failing {
		var err error
		switch {
		case n > 0:
			_, err = tx.ExecContext(ctx, qAddFailing, k.Group, k.Rule, k.Since, k.Device)
		case n < 0:
			_, err = tx.ExecContext(ctx, qDropFailing, k.Group, k.Rule, k.Since, k.Device)
		}
		if err != nil {
			return err
		}
	}
	// Day by day, oldest first: the day's row starts as the day before it
	// stood; every row from the day on takes the change. (In any order
	// the rows would end the same; merged per day, a batch writes each
	// day once.)
	for _, day := range d.Days() {
		c := d.Trend[day]
		if _, err := tx.ExecContext(ctx, qTrendDay, day); err != nil {
			return err
		}
		if c == [3]int{} {
			continue
		}
		if _, err := tx.ExecContext(ctx, qTrendShift, c[0], c[1], c[2], day); err != nil {
			return err
		}
	}
	return nil
}

// bump adds n to the counter row upsert names (its key args, then n), and
// deletes the row when it comes to zero, so old buckets do not pile up.
func bump(ctx context.Context, tx writeQuerier, n int, upsert, del string, key ...any) error {
	if n == 0 {
		return nil
	}
	var now int
	if err := tx.QueryRowContext(ctx, upsert, append(key, n)...).Scan(&now); err != nil {
		return err
	}
	if now != 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, del, key...)
	return err
}

// The statements of the aggregates, prepared on the writer (hotWrites).
const (
	qSnapshotDevice   = `SELECT d.grp, ` + classExpr + `, ` + seenExpr + `, d.states_at FROM devices d WHERE d.id = ?`
	qSnapshotStates   = `SELECT rule_id, collector, failing_since, updated_at FROM rule_states INDEXED BY ` + ruleStatesPK + ` WHERE device_id = ?`
	qBumpDevices      = `INSERT INTO agg_devices (grp, class, n) VALUES (?, ?, ?) ON CONFLICT (grp, class) DO UPDATE SET n = n + excluded.n RETURNING n`
	qDropDevices      = `DELETE FROM agg_devices WHERE grp = ? AND class = ?`
	qBumpSeen         = `INSERT INTO agg_seen (width, bucket, grp, class, n) VALUES (?, ?, ?, ?, ?) ON CONFLICT (width, bucket, grp, class) DO UPDATE SET n = n + excluded.n RETURNING n`
	qDropSeen         = `DELETE FROM agg_seen WHERE width = ? AND bucket = ? AND grp = ? AND class = ?`
	qBumpRuleSeen     = `INSERT INTO agg_rule_seen (width, bucket, rule_id, n) VALUES (?, ?, ?, ?) ON CONFLICT (width, bucket, rule_id) DO UPDATE SET n = n + excluded.n RETURNING n`
	qDropRuleSeen     = `DELETE FROM agg_rule_seen WHERE width = ? AND bucket = ? AND rule_id = ?`
	qBumpFailingHours = `INSERT INTO agg_failing_hours (grp, rule_id, hour, n) VALUES (?, ?, ?, ?) ON CONFLICT (grp, rule_id, hour) DO UPDATE SET n = n + excluded.n RETURNING n`
	qDropFailingHours = `DELETE FROM agg_failing_hours WHERE grp = ? AND rule_id = ? AND hour = ?`
	qAddFailing       = `INSERT OR IGNORE INTO agg_failing (grp, rule_id, since, device_id) VALUES (?, ?, ?, ?)`
	qDropFailing      = `DELETE FROM agg_failing WHERE grp = ? AND rule_id = ? AND since = ? AND device_id = ?`
	qTrendDay         = `INSERT OR IGNORE INTO agg_trend (day, compliant, failing, unknown)
		SELECT ?1, coalesce(t.compliant, 0), coalesce(t.failing, 0), coalesce(t.unknown, 0)
		FROM (SELECT 1) LEFT JOIN agg_trend t ON t.day = (SELECT max(day) FROM agg_trend WHERE day < ?1)`
	qTrendShift = `UPDATE agg_trend SET compliant = compliant + ?, failing = failing + ?, unknown = unknown + ? WHERE day >= ?`
)

// aggregateWrites are the statements above.
var aggregateWrites = []string{qSnapshotDevice, qSnapshotStates, qBumpDevices, qDropDevices, qBumpSeen, qDropSeen, qBumpRuleSeen, qDropRuleSeen,
	qBumpFailingHours, qDropFailingHours, qAddFailing, qDropFailing, qTrendDay, qTrendShift}
