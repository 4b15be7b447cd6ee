package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// Fleet views from the aggregates (docs/storage.md, "Why buckets"): a
// count at the stale cut sums the hour buckets after the cut's hour, the
// minute buckets of that hour after the cut's minute, and counts the
// devices of the cut's own minute exactly (the devices_seen index).

const classExpr = `CASE WHEN d.revoked_at IS NOT NULL THEN 'revoked' WHEN d.fail_n > 0 THEN 'failing'
	WHEN d.unknown_n > 0 OR d.pass_n = 0 THEN 'unknown' ELSE 'compliant' END`

// counts runs a query of (key, count) rows into a map.
func (s *Store) counts(ctx context.Context, q string, args ...any) (map[string]int, error) {
	rows, err := s.qm().Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// freshCounts counts the non-revoked devices seen at or after cut, by
// class, in group (every group when empty).
func (s *Store) freshCounts(ctx context.Context, cut int64, group string) (map[string]int, error) {
	r := aggregate.RangesOf(cut)
	g, ga := "", []any{}
	if group != "" {
		g, ga = ` AND grp = ?`, []any{group}
	}
	args := append([]any{aggregate.HourNanos, r.Hour}, ga...)
	args = append(append(args, aggregate.MinuteNanos, r.Minute, r.MinuteEnd), ga...)
	args = append(append(args, r.Cut, r.ExactEnd), ga...)
	return s.counts(ctx, `SELECT class, sum(n)::bigint FROM (
		SELECT class, n FROM agg_seen WHERE width = ? AND bucket > ?`+g+`
		UNION ALL SELECT class, n FROM agg_seen WHERE width = ? AND bucket > ? AND bucket < ?`+g+`
		UNION ALL SELECT `+classExpr+`, 1 FROM devices d WHERE coalesce(d.last_seen, d.enrolled_at) >= ? AND coalesce(d.last_seen, d.enrolled_at) < ? AND d.revoked_at IS NULL`+strings.ReplaceAll(g, "grp", "d.grp")+`
		) fresh GROUP BY class`, args...)
}

// fleetCounts is FleetCounts for one group, or all when group is empty.
func (s *Store) fleetCounts(ctx context.Context, now time.Time, staleAfter time.Duration, group string) (store.FleetCounts, error) {
	q, args := `SELECT class, sum(n)::bigint FROM agg_devices GROUP BY class`, []any{}
	if group != "" {
		q, args = `SELECT class, sum(n)::bigint FROM agg_devices WHERE grp = ? GROUP BY class`, []any{group}
	}
	tot, err := s.counts(ctx, q, args...)
	if err != nil {
		return store.FleetCounts{}, err
	}
	fresh, err := s.freshCounts(ctx, staleCut(now, staleAfter), group)
	if err != nil {
		return store.FleetCounts{}, err
	}
	return aggregate.FleetCounts(tot, fresh), nil
}

// FleetCounts implements store.Dashboard.
func (s *Store) FleetCounts(ctx context.Context, now time.Time, staleAfter time.Duration) (store.FleetCounts, error) {
	c, err := s.fleetCounts(ctx, now, staleAfter, "")
	if err != nil {
		return store.FleetCounts{}, fmt.Errorf("fleet counts: %w", err)
	}
	return c, nil
}

// failingCounts counts per rule the non-revoked devices seen at or after
// cut that fail it; only rule when it is not empty.
func (s *Store) failingCounts(ctx context.Context, cut int64, rule string) (map[string]int, error) {
	r := aggregate.RangesOf(cut)
	g, ga := "", []any{}
	if rule != "" {
		g, ga = ` AND rule_id = ?`, []any{rule}
	}
	args := append([]any{aggregate.HourNanos, r.Hour}, ga...)
	args = append(append(args, aggregate.MinuteNanos, r.Minute, r.MinuteEnd), ga...)
	args = append(append(args, r.Cut, r.ExactEnd), ga...)
	return s.counts(ctx, `SELECT rule_id, sum(n)::bigint FROM (
		SELECT rule_id, n FROM agg_rule_seen WHERE width = ? AND bucket > ?`+g+`
		UNION ALL SELECT rule_id, n FROM agg_rule_seen WHERE width = ? AND bucket > ? AND bucket < ?`+g+`
		UNION ALL SELECT r.rule_id, 1 FROM devices d JOIN rule_states r ON r.device_id = d.id
			WHERE coalesce(d.last_seen, d.enrolled_at) >= ? AND coalesce(d.last_seen, d.enrolled_at) < ? AND d.revoked_at IS NULL AND r.collector = 'FAIL'`+strings.ReplaceAll(g, "rule_id", "r.rule_id")+`
		) fresh GROUP BY rule_id`, args...)
}

// FailingByRule implements store.Dashboard. A rule's title is that of one
// of its failing states.
func (s *Store) FailingByRule(ctx context.Context, now time.Time, staleAfter time.Duration) ([]store.RuleCount, error) {
	counts, err := s.failingCounts(ctx, staleCut(now, staleAfter), "")
	if err != nil {
		return nil, fmt.Errorf("failing by rule: %w", err)
	}
	out := make([]store.RuleCount, 0, len(counts))
	var titles pgx.Batch // one round trip for every rule's title
	for id, n := range counts {
		if n <= 0 {
			continue
		}
		out = append(out, store.RuleCount{RuleID: id, Devices: n})
		c := &out[len(out)-1]
		titles.Queue(`SELECT title FROM rule_states WHERE rule_id = $1 AND collector = 'FAIL' LIMIT 1`, id).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&c.Title); err != nil {
				return fmt.Errorf("title of %s: %w", c.RuleID, err)
			}
			return nil
		})
	}
	if titles.Len() > 0 {
		if err := s.pool.SendBatch(ctx, &titles).Close(); err != nil {
			return nil, fmt.Errorf("failing by rule: %w", err)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Devices != out[j].Devices {
			return out[i].Devices > out[j].Devices
		}
		return out[i].RuleID < out[j].RuleID
	})
	return out, nil
}

// pgConnectedDue joins a failing state (agg_failing f) to its rule state
// (r) and device (d); pgConnectedSince is, for a connected-grace state,
// the time its deadline counts grace from: its report's time less the
// connected time already used (store.ConnectedDeadline).
const (
	pgConnectedDue   = `agg_failing f JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id JOIN devices d ON d.id = f.device_id`
	pgConnectedSince = `(coalesce(d.states_at, r.updated_at) - r.grace_used)`
)

// PastDeadline implements store.Dashboard, from agg_failing (the FAIL
// states of non-revoked devices by group, rule and failing_since) and
// agg_failing_hours (their counts per hour of failing_since).
func (s *Store) PastDeadline(ctx context.Context, rules []store.DeadlineRule, now time.Time, limit int) ([]store.Overdue, int, error) {
	if len(rules) == 0 {
		return nil, 0, nil
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	var parts []string
	var args []any
	grace := map[[2]string]time.Duration{}
	total := 0
	var totals pgx.Batch // one round trip for every rule's count
	for _, r := range rules {
		key := [2]string{r.Group, r.RuleID}
		if _, dup := grace[key]; dup {
			continue
		}
		grace[key] = r.Grace
		cut := nanos(now.Add(-r.Grace))
		h := aggregate.FloorDiv(cut, aggregate.HourNanos)
		// The counts by failing_since, less the connected-grace states
		// among them, plus those of them whose connected deadline
		// (docs/connectivity.md) has passed and is not paused.
		totals.Queue(`SELECT coalesce((SELECT sum(n) FROM agg_failing_hours WHERE grp = $1 AND rule_id = $2 AND hour < $3), 0)::bigint
			+ (SELECT count(*) FROM agg_failing WHERE grp = $1 AND rule_id = $2 AND since >= $4 AND since <= $5)
			- (SELECT count(*) FROM agg_failing f JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id
				WHERE f.grp = $1 AND f.rule_id = $2 AND f.since <= $5 AND r.grace_connected)
			+ (SELECT count(*) FROM `+pgConnectedDue+` WHERE f.grp = $1 AND f.rule_id = $2 AND r.grace_connected AND NOT r.deadline_paused AND `+pgConnectedSince+` <= $5)`,
			r.Group, r.RuleID, h, aggregate.BucketStart(h, aggregate.HourNanos), cut).QueryRow(func(row pgx.Row) error {
			var n int
			err := row.Scan(&n)
			total += n
			return err
		})
		parts = append(parts, `(SELECT f.grp, f.rule_id, f.since, f.device_id, f.since + ?::bigint AS due FROM agg_failing f
				WHERE f.grp = ? AND f.rule_id = ? AND f.since <= ?
				AND NOT EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = f.device_id AND r.rule_id = f.rule_id AND r.grace_connected)
				ORDER BY f.since, f.device_id LIMIT ?)`,
			`(SELECT f.grp, f.rule_id, f.since, f.device_id, `+pgConnectedSince+` + ?::bigint AS due FROM `+pgConnectedDue+`
				WHERE f.grp = ? AND f.rule_id = ? AND r.grace_connected AND NOT r.deadline_paused AND `+pgConnectedSince+` <= ?
				ORDER BY f.since, f.device_id LIMIT ?)`)
		args = append(args, int64(r.Grace), r.Group, r.RuleID, cut, lim, int64(r.Grace), r.Group, r.RuleID, cut, lim)
	}
	if err := s.pool.SendBatch(ctx, &totals).Close(); err != nil {
		return nil, 0, fmt.Errorf("past deadline: %w", err)
	}
	rows, err := s.qm().Query(ctx, `SELECT f.device_id, d.hostname, f.grp, f.rule_id, r.title, f.since, f.due
		FROM (SELECT * FROM (`+strings.Join(parts, " UNION ALL ")+`) u ORDER BY since, device_id, rule_id LIMIT ?) f
		JOIN devices d ON d.id = f.device_id JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id
		ORDER BY f.since, f.device_id, f.rule_id`, append(args, lim)...)
	if err != nil {
		return nil, 0, fmt.Errorf("past deadline: %w", err)
	}
	defer rows.Close()
	var out []store.Overdue
	for rows.Next() {
		var o store.Overdue
		var since, due int64
		if err := rows.Scan(&o.DeviceID, &o.Hostname, &o.Group, &o.RuleID, &o.Title, &since, &due); err != nil {
			return nil, 0, fmt.Errorf("past deadline: %w", err)
		}
		o.FailingSince = fromNanos(since)
		o.Deadline = fromNanos(due)
		out = append(out, o)
	}
	return out, total, rows.Err()
}

// Groups implements store.Dashboard.
func (s *Store) Groups(ctx context.Context) ([]string, error) {
	counts, err := s.counts(ctx, `SELECT grp, sum(n)::bigint FROM agg_devices GROUP BY grp`)
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	out := make([]string, 0, len(counts))
	for g := range counts {
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}

// Trend implements store.Dashboard, from agg_trend: one row per UTC day
// on which the fleet changed, a day without a row standing as the latest
// before it.
func (s *Store) Trend(ctx context.Context, to time.Time, days int) ([]store.TrendPoint, error) {
	if days <= 0 {
		return nil, nil
	}
	y, m, d := to.UTC().Date()
	first := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1-days)
	firstDay := aggregate.FloorDiv(nanos(first), aggregate.DayNanos)
	lastDay := firstDay + int64(days) - 1
	rows, err := s.pool.Query(ctx, `SELECT day, compliant, failing, unknown FROM agg_trend
		WHERE day <= $2 AND day >= coalesce((SELECT max(day) FROM agg_trend WHERE day <= $1), $1) ORDER BY day`, firstDay, lastDay)
	if err != nil {
		return nil, fmt.Errorf("trend: %w", err)
	}
	defer rows.Close()
	type row struct {
		day int64
		p   store.TrendPoint
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.day, &r.p.Compliant, &r.p.Failing, &r.p.Unknown); err != nil {
			return nil, fmt.Errorf("trend: %w", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trend: %w", err)
	}
	out := make([]store.TrendPoint, days)
	var cur store.TrendPoint
	for i := range out {
		for len(rs) > 0 && rs[0].day <= firstDay+int64(i) {
			cur, rs = rs[0].p, rs[1:]
		}
		cur.Day = first.AddDate(0, 0, i)
		out[i] = cur
	}
	return out, nil
}
