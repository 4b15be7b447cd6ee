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

// deviceSnapshot is what the aggregates know of one device.
type deviceSnapshot struct {
	id      string
	exists  bool
	group   string
	class   string // classExpr
	seen    int64
	states  int   // rule states
	stateAt int64 // the newest rule state's updated_at
	// failing is the rules whose verdict is FAIL, with failing_since
	// (invalid when unset).
	failing map[string]sql.NullInt64
}

// loadSnapshot reads the device's snapshot; a missing device has
// exists unset.
func loadSnapshot(ctx context.Context, tx *sql.Tx, id string) (deviceSnapshot, error) {
	s := deviceSnapshot{id: id}
	// states_at: since SaveReport writes only the rule states that
	// changed, the rows' updated_at can be older than the report that
	// last set them all (migration_ingest.go).
	var statesAt sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT d.grp, `+classExpr+`, `+seenExpr+`, d.states_at FROM devices d WHERE d.id = ?`, id).Scan(&s.group, &s.class, &s.seen, &statesAt)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	s.exists = true
	s.stateAt = statesAt.Int64
	rows, err := tx.QueryContext(ctx, `SELECT rule_id, collector, failing_since, updated_at FROM rule_states INDEXED BY `+ruleStatesPK+` WHERE device_id = ?`, id)
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
		s.states++
		s.stateAt = max(s.stateAt, updated)
		if v == "FAIL" {
			if s.failing == nil {
				s.failing = map[string]sql.NullInt64{}
			}
			s.failing[rule] = since
		}
	}
	return s, rows.Err()
}

// trendClass is the class the trend counts the device in, "" for none: a
// revoked device, or one without a verdict yet.
func (s deviceSnapshot) trendClass() string {
	if !s.exists || s.class == aggregate.ClassRevoked || s.states == 0 {
		return ""
	}
	return s.class
}

// Counter keys, one type per counter table.
type (
	devKey  struct{ grp, class string }
	seenKey struct {
		width, bucket int64
		grp, class    string
	}
	ruleKey struct {
		width, bucket int64
		rule          string
	}
	hourKey struct {
		grp, rule string
		hour      int64
	}
	failKey struct {
		grp, rule string
		since     int64
	}
)

// aggDelta is the change of every counter a write makes.
type aggDelta struct {
	dev     map[devKey]int
	seen    map[seenKey]int
	rule    map[ruleKey]int
	hour    map[hourKey]int
	failing map[failKey]int
}

// add adds the snapshot's contribution to every counter, times sign.
func (d *aggDelta) add(s deviceSnapshot, sign int) {
	if !s.exists {
		return
	}
	d.dev[devKey{s.group, s.class}] += sign
	if s.class == aggregate.ClassRevoked {
		return
	}
	for _, w := range aggregate.BucketWidths {
		b := aggregate.FloorDiv(s.seen, w)
		d.seen[seenKey{w, b, s.group, s.class}] += sign
		for rule := range s.failing {
			d.rule[ruleKey{w, b, rule}] += sign
		}
	}
	for rule, since := range s.failing {
		if !since.Valid {
			continue
		}
		d.failing[failKey{s.group, rule, since.Int64}] += sign
		d.hour[hourKey{s.group, rule, aggregate.FloorDiv(since.Int64, aggregate.HourNanos)}] += sign
	}
}

// trackAggregates adds to the aggregates the difference between before,
// the device as loadSnapshot read it ahead of the write, and the device
// now. at is when the change happened (a report's ObservedAt, or the
// time of a revocation): the trend counts it from that day, or from the
// device's previous change if that was later.
func trackAggregates(ctx context.Context, tx *sql.Tx, before deviceSnapshot, at time.Time) error {
	after, err := loadSnapshot(ctx, tx, before.id)
	if err != nil {
		return err
	}
	return applyAggregates(ctx, tx, before, after, at)
}

// applyAggregates adds the difference between two snapshots of a device
// to the aggregates.
func applyAggregates(ctx context.Context, tx *sql.Tx, before, after deviceSnapshot, at time.Time) error {
	d := aggDelta{dev: map[devKey]int{}, seen: map[seenKey]int{}, rule: map[ruleKey]int{}, hour: map[hourKey]int{}, failing: map[failKey]int{}}
	d.add(before, -1)
	d.add(after, 1)
	for k, n := range d.dev {
		if err := bump(ctx, tx, n, `INSERT INTO agg_devices (grp, class, n) VALUES (?, ?, ?) ON CONFLICT (grp, class) DO UPDATE SET n = n + excluded.n RETURNING n`,
			`DELETE FROM agg_devices WHERE grp = ? AND class = ?`, k.grp, k.class); err != nil {
			return err
		}
	}
	for k, n := range d.seen {
		if err := bump(ctx, tx, n, `INSERT INTO agg_seen (width, bucket, grp, class, n) VALUES (?, ?, ?, ?, ?) ON CONFLICT (width, bucket, grp, class) DO UPDATE SET n = n + excluded.n RETURNING n`,
			`DELETE FROM agg_seen WHERE width = ? AND bucket = ? AND grp = ? AND class = ?`, k.width, k.bucket, k.grp, k.class); err != nil {
			return err
		}
	}
	for k, n := range d.rule {
		if err := bump(ctx, tx, n, `INSERT INTO agg_rule_seen (width, bucket, rule_id, n) VALUES (?, ?, ?, ?) ON CONFLICT (width, bucket, rule_id) DO UPDATE SET n = n + excluded.n RETURNING n`,
			`DELETE FROM agg_rule_seen WHERE width = ? AND bucket = ? AND rule_id = ?`, k.width, k.bucket, k.rule); err != nil {
			return err
		}
	}
	for k, n := range d.hour {
		if err := bump(ctx, tx, n, `INSERT INTO agg_failing_hours (grp, rule_id, hour, n) VALUES (?, ?, ?, ?) ON CONFLICT (grp, rule_id, hour) DO UPDATE SET n = n + excluded.n RETURNING n`,
			`DELETE FROM agg_failing_hours WHERE grp = ? AND rule_id = ? AND hour = ?`, k.grp, k.rule, k.hour); err != nil {
			return err
		}
	}
	for k, n := range d.failing {
		var err error
		switch {
		case n > 0:
			_, err = tx.ExecContext(ctx, `INSERT OR IGNORE INTO agg_failing (grp, rule_id, since, device_id) VALUES (?, ?, ?, ?)`, k.grp, k.rule, k.since, before.id)
		case n < 0:
			_, err = tx.ExecContext(ctx, `DELETE FROM agg_failing WHERE grp = ? AND rule_id = ? AND since = ? AND device_id = ?`, k.grp, k.rule, k.since, before.id)
		}
		if err != nil {
			return err
		}
	}
	from, to := before.trendClass(), after.trendClass()
	if from == to {
		return nil
	}
	day := aggregate.FloorDiv(max(nanos(at), before.stateAt), aggregate.DayNanos)
	// The day's row starts as the day before it stood; every row from the
	// day on takes the change.
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO agg_trend (day, compliant, failing, unknown)
		SELECT ?1, coalesce(t.compliant, 0), coalesce(t.failing, 0), coalesce(t.unknown, 0)
		FROM (SELECT 1) LEFT JOIN agg_trend t ON t.day = (SELECT max(day) FROM agg_trend WHERE day < ?1)`, day); err != nil {
		return err
	}
	var c [3]int
	for i, class := range [...]string{aggregate.ClassCompliant, aggregate.ClassFailing, aggregate.ClassUnknown} {
		if class == from {
			c[i]--
		}
		if class == to {
			c[i]++
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE agg_trend SET compliant = compliant + ?, failing = failing + ?, unknown = unknown + ? WHERE day >= ?`, c[0], c[1], c[2], day)
	return err
}

// bump adds n to the counter row upsert names (its key args, then n), and
// deletes the row when it comes to zero, so old buckets do not pile up.
func bump(ctx context.Context, tx *sql.Tx, n int, upsert, del string, key ...any) error {
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
