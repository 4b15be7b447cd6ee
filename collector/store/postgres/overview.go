package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// failingKey is a (group, rule) pair.
type failingKey struct{ group, rule string }

// FailingNow implements store.Overview from agg_failing, read like
// PastDeadline: one indexed range per (group, rule), each ordered by
// failing_since (so by deadline, the rule's grace being one per group)
// and limited, merged by the outer sort. Active device waivers are few
// (an administrator grants each): they are read first, each range
// fetches as many more rows as there are waived states in it, and those
// are dropped here, so the page still has q.Limit rows when there are.
func (s *Store) FailingNow(ctx context.Context, q store.FailingQuery) (store.FailingPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	var page store.FailingPage
	grace := map[failingKey]time.Duration{}
	var keys []failingKey
	for _, r := range q.Rules {
		k := failingKey{r.Group, r.RuleID}
		if _, dup := grace[k]; dup {
			continue
		}
		grace[k] = r.Grace
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return page, nil
	}
	now := nanos(q.Now)
	rows, err := s.pool.Query(ctx, `SELECT w.device_id, w.rule_id, d.grp, r.failing_since FROM waivers w
		JOIN devices d ON d.id = w.device_id
		JOIN rule_states r ON r.device_id = w.device_id AND r.rule_id = w.rule_id
		WHERE w.device_id != '' AND w.created_at <= $1 AND w.expires_at > $1 AND (w.revoked_at IS NULL OR w.revoked_at > $1)
			AND d.revoked_at IS NULL AND r.collector = 'FAIL' AND r.failing_since IS NOT NULL`, now)
	if err != nil {
		return page, fmt.Errorf("failing now: waivers: %w", err)
	}
	waived := map[[2]string]bool{}
	perKey := map[failingKey]int{}  // waived states per pair
	overKey := map[failingKey]int{} // of which overdue
	for rows.Next() {
		var device, rule, group string
		var since int64
		if err := rows.Scan(&device, &rule, &group, &since); err != nil {
			rows.Close()
			return page, fmt.Errorf("failing now: waivers: %w", err)
		}
		k := failingKey{group, rule}
		g, ok := grace[k]
		if !ok || waived[[2]string{device, rule}] {
			continue
		}
		waived[[2]string{device, rule}] = true
		perKey[k]++
		page.Waived++
		if g > 0 && since <= nanos(q.Now.Add(-g)) {
			overKey[k]++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("failing now: waivers: %w", err)
	}
	page.Counts = make([]store.FailingCount, len(keys))

	var counts pgx.Batch // one round trip for every pair's counts
	var parts []string
	var args []any
	extra := 0
	for i, k := range keys {
		g := grace[k]
		due := "NULL::bigint"
		cut := int64(0)
		if g > 0 {
			due = fmt.Sprintf("since + %d", int64(g))
			cut = nanos(q.Now.Add(-g))
		}
		h := aggregate.FloorDiv(cut, aggregate.HourNanos)
		counts.Queue(`SELECT coalesce((SELECT sum(n) FROM agg_failing_hours WHERE grp = $1 AND rule_id = $2), 0)::bigint,
			CASE WHEN $6 THEN coalesce((SELECT sum(n) FROM agg_failing_hours WHERE grp = $1 AND rule_id = $2 AND hour < $3), 0)::bigint
				+ (SELECT count(*) FROM agg_failing WHERE grp = $1 AND rule_id = $2 AND since >= $4 AND since <= $5)
				- (SELECT count(*) FROM agg_failing f JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id
					WHERE f.grp = $1 AND f.rule_id = $2 AND f.since <= $5 AND r.grace_connected)
				+ (SELECT count(*) FROM `+pgConnectedDue+` WHERE f.grp = $1 AND f.rule_id = $2 AND r.grace_connected AND NOT r.deadline_paused AND `+pgConnectedSince+` <= $5)
				ELSE 0 END`,
			k.group, k.rule, h, aggregate.BucketStart(h, aggregate.HourNanos), cut, g > 0).QueryRow(func(row pgx.Row) error {
			var n, over int
			err := row.Scan(&n, &over)
			c := store.FailingCount{Group: k.group, RuleID: k.rule, Failing: n - perKey[k], Overdue: over - overKey[k]}
			page.Counts[i] = c
			page.Total += c.Failing
			page.Overdue += c.Overdue
			return err
		})
		parts = append(parts, `(SELECT grp, rule_id, since, device_id, `+due+` AS due FROM agg_failing WHERE grp = ? AND rule_id = ? ORDER BY since, device_id LIMIT ?)`)
		args = append(args, k.group, k.rule, limit+perKey[k])
		extra += perKey[k]
	}
	if err := s.pool.SendBatch(ctx, &counts).Close(); err != nil {
		return page, fmt.Errorf("failing now: %w", err)
	}
	rows, err = s.qm().Query(ctx, `SELECT f.device_id, d.hostname, f.grp, f.rule_id, r.title, r.severity, f.since, f.due, coalesce(d.last_seen, d.enrolled_at),
		r.grace_connected, r.grace_used, r.deadline_paused, coalesce(d.states_at, r.updated_at)
		FROM (SELECT * FROM (`+strings.Join(parts, " UNION ALL ")+`) u ORDER BY due IS NULL, due, since, device_id, rule_id LIMIT ?) f
		JOIN devices d ON d.id = f.device_id JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id`, append(args, limit+extra)...)
	if err != nil {
		return page, fmt.Errorf("failing now: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f store.Failing
		var since, seen, used, at int64
		var due *int64
		var connected bool
		if err := rows.Scan(&f.DeviceID, &f.Hostname, &f.Group, &f.RuleID, &f.Title, &f.Severity, &since, &due, &seen,
			&connected, &used, &f.Paused, &at); err != nil {
			return page, fmt.Errorf("failing now: %w", err)
		}
		if waived[[2]string{f.DeviceID, f.RuleID}] {
			continue
		}
		if connected && due != nil {
			v := at - used + int64(grace[failingKey{f.Group, f.RuleID}])
			due = &v
		} else {
			f.Paused = false
		}
		f.FailingSince, f.Seen, f.Deadline = fromNanos(since), fromNanos(seen), fromNull(due)
		page.Rows = append(page.Rows, f)
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("failing now: %w", err)
	}
	slices.SortFunc(page.Rows, store.CompareFailing)
	page.Rows = page.Rows[:min(len(page.Rows), limit)]
	return page, nil
}

// AuditFor implements store.Overview, by the audit_target index.
func (s *Store) AuditFor(ctx context.Context, targets []string, limit int) ([]store.AuditEntry, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, action, target, detail FROM audit
		WHERE target = ANY($1) ORDER BY id DESC LIMIT $2`, targets, limit)
	if err != nil {
		return nil, fmt.Errorf("audit for %v: %w", targets, err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit for %v: %w", targets, err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
