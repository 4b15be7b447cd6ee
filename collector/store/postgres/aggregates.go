package postgres

import (
	"cmp"
	"context"
	"maps"
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
// updated by every report of their group and class: concurrent reports
// queue there until each commits.

// snapshot is what the aggregates know of one device.
type snapshot struct {
	id      string
	exists  bool
	group   string
	class   string
	seen    int64 // coalesce(last_seen, enrolled_at)
	states  int   // rule states
	stateAt int64 // when the rule states were last set (the newest report's ObservedAt)
	failing map[string]*int64
}

// trendClass is the class the trend counts the device in, "" for none.
func (s snapshot) trendClass() string {
	if !s.exists || s.class == aggregate.ClassRevoked || s.states == 0 {
		return ""
	}
	return s.class
}

// loadSnapshot reads a device's snapshot in tx (the caller holds its row lock).
func loadSnapshot(ctx context.Context, tx pgx.Tx, id string) (snapshot, error) {
	s := snapshot{id: id}
	var revoked *int64
	var pass, fail, unknown int
	err := tx.QueryRow(ctx, `SELECT d.grp, d.revoked_at, d.pass_n, d.fail_n, d.unknown_n, coalesce(d.last_seen, d.enrolled_at),
		coalesce((SELECT p.observed_at FROM reports p WHERE p.device_id = d.id AND p.epoch = d.last_epoch AND p.sequence = d.last_sequence), 0)
		FROM devices d WHERE d.id = $1`, id).Scan(&s.group, &revoked, &pass, &fail, &unknown, &s.seen, &s.stateAt)
	if err == pgx.ErrNoRows {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	s.exists, s.class = true, aggregate.ClassOf(revoked != nil, pass, fail, unknown)
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
		s.states++
		if v == "FAIL" {
			if s.failing == nil {
				s.failing = map[string]*int64{}
			}
			s.failing[rule] = since
		}
	}
	if s.states == 0 {
		s.stateAt = 0
	}
	return s, rows.Err()
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
		grp, rule, device string
		since             int64
	}
)

// aggDelta is the change of every counter writes make: of one write, or
// of a batch of reports (commitBatch).
type aggDelta struct {
	dev     map[devKey]int
	seen    map[seenKey]int
	rule    map[ruleKey]int
	hour    map[hourKey]int
	failing map[failKey]int
	// trend is the change of the trend's classes from a day on.
	trend map[int64][3]int
}

func newAggDelta() *aggDelta {
	return &aggDelta{dev: map[devKey]int{}, seen: map[seenKey]int{}, rule: map[ruleKey]int{}, hour: map[hourKey]int{},
		failing: map[failKey]int{}, trend: map[int64][3]int{}}
}

// merge adds o's changes to d's.
func (d *aggDelta) merge(o *aggDelta) {
	mergeInto(d.dev, o.dev)
	mergeInto(d.seen, o.seen)
	mergeInto(d.rule, o.rule)
	mergeInto(d.hour, o.hour)
	mergeInto(d.failing, o.failing)
	for day, c := range o.trend {
		t := d.trend[day]
		for i := range c {
			t[i] += c[i]
		}
		d.trend[day] = t
	}
}

func mergeInto[K comparable](dst, src map[K]int) {
	for k, n := range src {
		dst[k] += n
	}
}

// change adds the difference between before and after (the same device)
// to d. at is when the change happened: the trend counts it from that
// day, or from the device's previous change if that was later.
func (d *aggDelta) change(before, after snapshot, at time.Time) {
	d.add(before, -1)
	d.add(after, 1)
	from, to := before.trendClass(), after.trendClass()
	if from == to {
		return
	}
	day := aggregate.FloorDiv(max(nanos(at), before.stateAt), aggregate.DayNanos)
	c := d.trend[day]
	for i, class := range [...]string{aggregate.ClassCompliant, aggregate.ClassFailing, aggregate.ClassUnknown} {
		if class == from {
			c[i]--
		}
		if class == to {
			c[i]++
		}
	}
	d.trend[day] = c
}

// add adds the snapshot's contribution to every counter, times sign.
func (d *aggDelta) add(s snapshot, sign int) {
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
		if since == nil {
			continue
		}
		d.failing[failKey{s.group, rule, s.id, *since}] += sign
		d.hour[hourKey{s.group, rule, aggregate.FloorDiv(*since, aggregate.HourNanos)}] += sign
	}
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
	d := newAggDelta()
	d.change(before, after, at)
	queueDelta(w, d)
}

// queueDelta queues into w the statements that add d to the aggregates.
func queueDelta(w *pgx.Batch, d *aggDelta) {
	var zeros []func()
	for _, k := range sortedKeys(d.dev, func(a, b devKey) int { return cmp.Or(cmp.Compare(a.grp, b.grp), cmp.Compare(a.class, b.class)) }) {
		w.Queue(`INSERT INTO agg_devices (grp, class, n) VALUES ($1, $2, $3) ON CONFLICT (grp, class) DO UPDATE SET n = agg_devices.n + excluded.n`, k.grp, k.class, d.dev[k])
		if d.dev[k] < 0 {
			zeros = append(zeros, func() { w.Queue(`DELETE FROM agg_devices WHERE grp = $1 AND class = $2 AND n = 0`, k.grp, k.class) })
		}
	}
	for _, k := range sortedKeys(d.seen, func(a, b seenKey) int {
		return cmp.Or(cmp.Compare(a.width, b.width), cmp.Compare(a.bucket, b.bucket), cmp.Compare(a.grp, b.grp), cmp.Compare(a.class, b.class))
	}) {
		w.Queue(`INSERT INTO agg_seen (width, bucket, grp, class, n) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (width, bucket, grp, class) DO UPDATE SET n = agg_seen.n + excluded.n`,
			k.width, k.bucket, k.grp, k.class, d.seen[k])
		if d.seen[k] < 0 {
			zeros = append(zeros, func() {
				w.Queue(`DELETE FROM agg_seen WHERE width = $1 AND bucket = $2 AND grp = $3 AND class = $4 AND n = 0`, k.width, k.bucket, k.grp, k.class)
			})
		}
	}
	for _, k := range sortedKeys(d.rule, func(a, b ruleKey) int {
		return cmp.Or(cmp.Compare(a.width, b.width), cmp.Compare(a.bucket, b.bucket), cmp.Compare(a.rule, b.rule))
	}) {
		w.Queue(`INSERT INTO agg_rule_seen (width, bucket, rule_id, n) VALUES ($1, $2, $3, $4) ON CONFLICT (width, bucket, rule_id) DO UPDATE SET n = agg_rule_seen.n + excluded.n`,
			k.width, k.bucket, k.rule, d.rule[k])
		if d.rule[k] < 0 {
			zeros = append(zeros, func() {
				w.Queue(`DELETE FROM agg_rule_seen WHERE width = $1 AND bucket = $2 AND rule_id = $3 AND n = 0`, k.width, k.bucket, k.rule)
			})
		}
	}
	for _, k := range sortedKeys(d.hour, func(a, b hourKey) int {
		return cmp.Or(cmp.Compare(a.grp, b.grp), cmp.Compare(a.rule, b.rule), cmp.Compare(a.hour, b.hour))
	}) {
		w.Queue(`INSERT INTO agg_failing_hours (grp, rule_id, hour, n) VALUES ($1, $2, $3, $4) ON CONFLICT (grp, rule_id, hour) DO UPDATE SET n = agg_failing_hours.n + excluded.n`,
			k.grp, k.rule, k.hour, d.hour[k])
		if d.hour[k] < 0 {
			zeros = append(zeros, func() {
				w.Queue(`DELETE FROM agg_failing_hours WHERE grp = $1 AND rule_id = $2 AND hour = $3 AND n = 0`, k.grp, k.rule, k.hour)
			})
		}
	}
	for _, k := range sortedKeys(d.failing, func(a, b failKey) int {
		return cmp.Or(cmp.Compare(a.grp, b.grp), cmp.Compare(a.rule, b.rule), cmp.Compare(a.since, b.since), cmp.Compare(a.device, b.device))
	}) {
		if d.failing[k] > 0 {
			w.Queue(`INSERT INTO agg_failing (grp, rule_id, since, device_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, k.grp, k.rule, k.since, k.device)
		} else {
			w.Queue(`DELETE FROM agg_failing WHERE grp = $1 AND rule_id = $2 AND since = $3 AND device_id = $4`, k.grp, k.rule, k.since, k.device)
		}
	}
	for _, z := range zeros {
		z()
	}
	// Day by day, oldest first: the day's row starts as the day before
	// it stood; every row from the day on takes the change (locked in
	// day order first).
	for _, day := range slices.Sorted(maps.Keys(d.trend)) {
		w.Queue(`INSERT INTO agg_trend (day, compliant, failing, unknown)
			SELECT $1, coalesce(t.compliant, 0), coalesce(t.failing, 0), coalesce(t.unknown, 0)
			FROM (SELECT 1) one LEFT JOIN agg_trend t ON t.day = (SELECT max(day) FROM agg_trend WHERE day < $1)
			ON CONFLICT (day) DO NOTHING`, day)
		c := d.trend[day]
		if c == [3]int{} {
			continue
		}
		w.Queue(`SELECT 1 FROM agg_trend WHERE day >= $1 ORDER BY day FOR UPDATE`, day)
		w.Queue(`UPDATE agg_trend SET compliant = compliant + $1, failing = failing + $2, unknown = unknown + $3 WHERE day >= $4`, c[0], c[1], c[2], day)
	}
}
