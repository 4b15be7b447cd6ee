package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// The dashboard's aggregates (docs/storage.md), kept on write as the
// SQLite store keeps them: every write that can change a device's group,
// seen time, revocation, verdict counts or failing rules knows the device
// before it (a snapshot, from what the write read under the device's row
// lock) and after it, and queues the difference of the counters into its
// own write batch, so they commit together. A counter row that a write
// decreased is deleted, by a statement later in the same batch, if it came
// to zero.
//
// Counter rows are locked in one order by every write (table by table,
// keys sorted), after the device's row, so concurrent writes never
// deadlock on them. The current minute's and hour's agg_seen rows are
// updated by every report of their group and class: the report writer
// adds up a batch's changes (aggregate.Delta) and writes each row once,
// just before COMMIT.

// snapshot is what the aggregates know of one device.
type snapshot = aggregate.Snapshot

// loadSnapshot reads a device's snapshot in tx (the caller holds its row lock).
func loadSnapshot(ctx context.Context, tx pgx.Tx, id string) (snapshot, error) {
	s := snapshot{ID: id}
	var revoked *int64
	var pass, fail, unknown int
	err := tx.QueryRow(ctx, `SELECT d.grp, d.revoked_at, d.pass_n, d.fail_n, d.unknown_n, coalesce(d.last_seen, d.enrolled_at),
		coalesce((SELECT p.observed_at FROM reports p WHERE p.device_id = d.id AND p.epoch = d.last_epoch AND p.sequence = d.last_sequence), 0)
		FROM devices d WHERE d.id = $1`, id).Scan(&s.Group, &revoked, &pass, &fail, &unknown, &s.Seen, &s.StateAt)
	if err == pgx.ErrNoRows {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	s.Exists, s.Class = true, aggregate.ClassOf(revoked != nil, pass, fail, unknown)
	rows, err := tx.Query(ctx, `SELECT rule_id, collector, failing_since FROM rule_states WHERE device_id = $1`, id)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	for rows.Next() {
		var rule, v string
		var since *int64
		if err := rows.Scan(&rule, &v, &since); err != nil {
			return s, err
		}
		s.States++
		if v == "FAIL" {
			if s.Failing == nil {
				s.Failing = map[string]*int64{}
			}
			s.Failing[rule] = since
		}
	}
	if s.States == 0 {
		s.StateAt = 0
	}
	return s, rows.Err()
}

// sortedKeys is the keys of m with a non-zero value, in cmpKey order.
func sortedKeys[K comparable](m map[K]int, cmpKey func(a, b K) int) []K {
	var ks []K
	for k, n := range m {
		if n != 0 {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, cmpKey)
	return ks
}

// queueAggregates queues into w the difference between before and after
// (the same device) for every aggregate. at is when the change happened:
// the trend counts it from that day, or from the device's previous
// change if that was later.
func queueAggregates(w *pgx.Batch, before, after snapshot, at time.Time) {
	d := aggregate.NewDelta()
	d.Change(before, after, nanos(at))
	queueDelta(w, d)
}

// queueDelta queues into w the statements that add d to the aggregates.
func queueDelta(w *pgx.Batch, d *aggregate.Delta) {
	var zeros []func()
	for _, k := range sortedKeys(d.Dev, func(a, b aggregate.DevKey) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Class, b.Class))
	}) {
		w.Queue(`INSERT INTO agg_devices (grp, class, n) VALUES ($1, $2, $3) ON CONFLICT (grp, class) DO UPDATE SET n = agg_devices.n + excluded.n`, k.Group, k.Class, d.Dev[k])
		if d.Dev[k] < 0 {
			zeros = append(zeros, func() { w.Queue(`DELETE FROM agg_devices WHERE grp = $1 AND class = $2 AND n = 0`, k.Group, k.Class) })
		}
	}
	for _, k := range sortedKeys(d.Seen, func(a, b aggregate.SeenKey) int {
		return cmp.Or(cmp.Compare(a.Width, b.Width), cmp.Compare(a.Bucket, b.Bucket), cmp.Compare(a.Group, b.Group), cmp.Compare(a.Class, b.Class))
	}) {
		w.Queue(`INSERT INTO agg_seen (width, bucket, grp, class, n) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (width, bucket, grp, class) DO UPDATE SET n = agg_seen.n + excluded.n`,
			k.Width, k.Bucket, k.Group, k.Class, d.Seen[k])
		if d.Seen[k] < 0 {
			zeros = append(zeros, func() {
				w.Queue(`DELETE FROM agg_seen WHERE width = $1 AND bucket = $2 AND grp = $3 AND class = $4 AND n = 0`, k.Width, k.Bucket, k.Group, k.Class)
			})
		}
	}
	for _, k := range sortedKeys(d.Rule, func(a, b aggregate.RuleKey) int {
		return cmp.Or(cmp.Compare(a.Width, b.Width), cmp.Compare(a.Bucket, b.Bucket), cmp.Compare(a.Rule, b.Rule))
	}) {
		w.Queue(`INSERT INTO agg_rule_seen (width, bucket, rule_id, n) VALUES ($1, $2, $3, $4) ON CONFLICT (width, bucket, rule_id) DO UPDATE SET n = agg_rule_seen.n + excluded.n`,
			k.Width, k.Bucket, k.Rule, d.Rule[k])
		if d.Rule[k] < 0 {
			zeros = append(zeros, func() {
				w.Queue(`DELETE FROM agg_rule_seen WHERE width = $1 AND bucket = $2 AND rule_id = $3 AND n = 0`, k.Width, k.Bucket, k.Rule)
			})
		}
	}
	for _, k := range sortedKeys(d.Hour, func(a, b aggregate.HourKey) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Hour, b.Hour))
	}) {
		w.Queue(`INSERT INTO agg_failing_hours (grp, rule_id, hour, n) VALUES ($1, $2, $3, $4) ON CONFLICT (grp, rule_id, hour) DO UPDATE SET n = agg_failing_hours.n + excluded.n`,
			k.Group, k.Rule, k.Hour, d.Hour[k])
		if d.Hour[k] < 0 {
			zeros = append(zeros, func() {
				w.Queue(`DELETE FROM agg_failing_hours WHERE grp = $1 AND rule_id = $2 AND hour = $3 AND n = 0`, k.Group, k.Rule, k.Hour)
			})
		}
	}
	for _, k := range sortedKeys(d.Failing, func(a, b aggregate.FailKey) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Since, b.Since), cmp.Compare(a.Device, b.Device))
	}) {
		if d.Failing[k] > 0 {
			w.Queue(`INSERT INTO agg_failing (grp, rule_id, since, device_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, k.Group, k.Rule, k.Since, k.Device)
		} else {
			w.Queue(`DELETE FROM agg_failing WHERE grp = $1 AND rule_id = $2 AND since = $3 AND device_id = $4`, k.Group, k.Rule, k.Since, k.Device)
		}
	}
	for _, z := range zeros {
		z()
	}
	// Day by day, oldest first: the day's row starts as the day before
	// it stood; every row from the day on takes the change (locked in
	// day order first).
	for _, day := range d.Days() {
		w.Queue(`INSERT INTO agg_trend (day, compliant, failing, unknown)
			SELECT $1, coalesce(t.compliant, 0), coalesce(t.failing, 0), coalesce(t.unknown, 0)
			FROM (SELECT 1) one LEFT JOIN agg_trend t ON t.day = (SELECT max(day) FROM agg_trend WHERE day < $1)
			ON CONFLICT (day) DO NOTHING`, day)
		c := d.Trend[day]
		if c == [3]int{} {
			continue
		}
		w.Queue(`SELECT 1 FROM agg_trend WHERE day >= $1 ORDER BY day FOR UPDATE`, day)
		w.Queue(`UPDATE agg_trend SET compliant = compliant + $1, failing = failing + $2, unknown = unknown + $3 WHERE day >= $4`, c[0], c[1], c[2], day)
	}
}
