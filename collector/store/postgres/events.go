package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// The events outbox (store.EventLog; migrations/009_events.sql). Ids
// come from an identity, so two collectors' concurrent inserts may
// commit out of id order: the readers (package events) wait a moment at
// a gap before passing it.

// errCursorMoved rolls back a transaction whose cursor was not where it
// expected.
var errCursorMoved = errors.New("cursor moved")

// AddEvent implements store.EventLog.
func (s *Store) AddEvent(ctx context.Context, e store.Event) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO events (at, type, device_id, payload, recorded_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		nanos(e.At), e.Type, e.DeviceID, string(e.Payload), nanos(e.Recorded())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add event: %w", err)
	}
	return id, nil
}

// AddEvents implements store.EventLog.
func (s *Store) AddEvents(ctx context.Context, events []store.Event, cursor string, old, next int64) (bool, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if moved, err := moveCursor(ctx, tx, cursor, old, next); err != nil {
			return err
		} else if !moved {
			return errCursorMoved
		}
		for _, e := range events {
			if _, err := tx.Exec(ctx, `INSERT INTO events (at, type, device_id, payload, recorded_at) VALUES ($1, $2, $3, $4, $5)`,
				nanos(e.At), e.Type, e.DeviceID, string(e.Payload), nanos(e.Recorded())); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errCursorMoved) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("add events: %w", err)
	}
	return true, nil
}

func moveCursor(ctx context.Context, q querier, name string, old, next int64) (bool, error) {
	if old < 0 {
		tag, err := q.Exec(ctx, `INSERT INTO event_cursors (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, next)
		return err == nil && tag.RowsAffected() == 1, err
	}
	tag, err := q.Exec(ctx, `UPDATE event_cursors SET value = $1 WHERE name = $2 AND value = $3`, next, name, old)
	return err == nil && tag.RowsAffected() == 1, err
}

// EventsAfter implements store.EventLog.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]store.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, type, device_id, payload, recorded_at FROM events WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var at, rec int64
		var payload string
		if err := rows.Scan(&e.ID, &at, &e.Type, &e.DeviceID, &payload, &rec); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		e.At, e.Payload, e.RecordedAt = fromNanos(at), []byte(payload), fromNanos(rec)
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEventID implements store.EventLog.
func (s *Store) LastEventID(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("last event id: %w", err)
	}
	return n, nil
}

// TransitionsAfter implements store.EventLog.
func (s *Store) TransitionsAfter(ctx context.Context, after int64, limit int) ([]store.TransitionEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, device_id, rule_id, from_v, to_v, at, sequence FROM transitions WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("transitions after: %w", err)
	}
	defer rows.Close()
	var out []store.TransitionEntry
	for rows.Next() {
		var t store.TransitionEntry
		var from, to string
		var at, seq int64
		if err := rows.Scan(&t.ID, &t.DeviceID, &t.RuleID, &from, &to, &at, &seq); err != nil {
			return nil, fmt.Errorf("transitions after: %w", err)
		}
		t.From, t.To, t.At, t.Sequence = store.Verdict(from), store.Verdict(to), fromNanos(at), uint64(seq)
		out = append(out, t)
	}
	return out, rows.Err()
}

// LastTransitionID implements store.EventLog.
func (s *Store) LastTransitionID(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM transitions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("last transition id: %w", err)
	}
	return n, nil
}

// Cursor implements store.EventLog.
func (s *Store) Cursor(ctx context.Context, name string) (int64, bool, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT value FROM event_cursors WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("cursor %s: %w", name, err)
	}
	return v, true, nil
}

// MoveCursor implements store.EventLog.
func (s *Store) MoveCursor(ctx context.Context, name string, old, next int64) (bool, error) {
	moved, err := moveCursor(ctx, s.pool, name, old, next)
	if err != nil {
		return false, fmt.Errorf("move cursor %s: %w", name, err)
	}
	return moved, nil
}

// AddDelivery implements store.EventLog.
func (s *Store) AddDelivery(ctx context.Context, d store.Delivery) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO event_deliveries (event_id, event_type, sink, url, attempt, at, status, error, outcome, duration)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		d.EventID, d.EventType, d.Sink, d.URL, d.Attempt, nanos(d.At), d.Status, d.Error, d.Outcome, int64(d.Duration))
	if err != nil {
		return fmt.Errorf("add delivery: %w", err)
	}
	return nil
}

// Deliveries implements store.EventLog.
func (s *Store) Deliveries(ctx context.Context, limit int) ([]store.Delivery, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `SELECT id, event_id, event_type, sink, url, attempt, at, status, error, outcome, duration
		FROM event_deliveries ORDER BY id DESC LIMIT $1`, lim)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var d store.Delivery
		var at, dur, attempt, status int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.EventType, &d.Sink, &d.URL, &attempt, &at, &status, &d.Error, &d.Outcome, &dur); err != nil {
			return nil, fmt.Errorf("deliveries: %w", err)
		}
		d.Attempt, d.Status, d.At, d.Duration = int(attempt), int(status), fromNanos(at), time.Duration(dur)
		out = append(out, d)
	}
	return out, rows.Err()
}

// PassedDeadlines implements store.EventLog, from agg_failing: one
// indexed range of failing_since per (group, rule).
func (s *Store) PassedDeadlines(ctx context.Context, rules []store.DeadlineRule, from, to time.Time, limit int) ([]store.Overdue, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	var out []store.Overdue
	seen := map[[2]string]bool{}
	for _, r := range rules {
		key := [2]string{r.Group, r.RuleID}
		if seen[key] || !to.After(from) {
			continue
		}
		seen[key] = true
		// By failing_since, less the connected-grace states, and those by
		// their connected deadline (docs/connectivity.md), paused ones
		// not at all.
		rows, err := s.pool.Query(ctx, `(SELECT f.device_id, d.hostname, f.grp, f.rule_id, r.title, f.since, f.since + $6::bigint AS due
			FROM agg_failing f JOIN devices d ON d.id = f.device_id JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id
			WHERE f.grp = $1 AND f.rule_id = $2 AND f.since > $3 AND f.since <= $4 AND NOT r.grace_connected ORDER BY f.since, f.device_id LIMIT $5)
			UNION ALL (SELECT f.device_id, d.hostname, f.grp, f.rule_id, r.title, f.since, `+pgConnectedSince+` + $6::bigint AS due FROM `+pgConnectedDue+`
			WHERE f.grp = $1 AND f.rule_id = $2 AND r.grace_connected AND NOT r.deadline_paused AND `+pgConnectedSince+` > $3 AND `+pgConnectedSince+` <= $4
			ORDER BY f.since, f.device_id LIMIT $5)`,
			r.Group, r.RuleID, nanos(from.Add(-r.Grace)), nanos(to.Add(-r.Grace)), lim, int64(r.Grace))
		if err != nil {
			return nil, fmt.Errorf("passed deadlines: %w", err)
		}
		for rows.Next() {
			var o store.Overdue
			var since, due int64
			if err := rows.Scan(&o.DeviceID, &o.Hostname, &o.Group, &o.RuleID, &o.Title, &since, &due); err != nil {
				rows.Close()
				return nil, fmt.Errorf("passed deadlines: %w", err)
			}
			o.FailingSince, o.Deadline = fromNanos(since), fromNanos(due)
			out = append(out, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("passed deadlines: %w", err)
		}
	}
	store.SortOverdue(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// PruneEvents implements store.EventLog.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, q := range []string{`DELETE FROM events WHERE recorded_at < $1`, `DELETE FROM event_deliveries WHERE at < $1`} {
			tag, err := tx.Exec(ctx, q, nanos(before))
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}

// GroupCounts implements store.GroupCounter: fleetCounts per group, in
// two grouped queries.
func (s *Store) GroupCounts(ctx context.Context, now time.Time, staleAfter time.Duration) (map[string]store.FleetCounts, error) {
	read := func(q string, args ...any) (map[string]map[string]int, error) {
		rows, err := s.qm().Query(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		m := map[string]map[string]int{}
		for rows.Next() {
			var g, class string
			var n int
			if err := rows.Scan(&g, &class, &n); err != nil {
				return nil, err
			}
			if m[g] == nil {
				m[g] = map[string]int{}
			}
			m[g][class] += n
		}
		return m, rows.Err()
	}
	tot, err := read(`SELECT grp, class, sum(n)::bigint FROM agg_devices GROUP BY grp, class`)
	if err != nil {
		return nil, fmt.Errorf("group counts: %w", err)
	}
	r := aggregate.RangesOf(staleCut(now, staleAfter))
	fresh, err := read(`SELECT grp, class, sum(n)::bigint FROM (
		SELECT grp, class, n FROM agg_seen WHERE width = ? AND bucket > ?
		UNION ALL SELECT grp, class, n FROM agg_seen WHERE width = ? AND bucket > ? AND bucket < ?
		UNION ALL SELECT d.grp, `+classExpr+`, 1 FROM devices d WHERE coalesce(d.last_seen, d.enrolled_at) >= ? AND coalesce(d.last_seen, d.enrolled_at) < ? AND d.revoked_at IS NULL
		) fresh GROUP BY grp, class`, aggregate.HourNanos, r.Hour, aggregate.MinuteNanos, r.Minute, r.MinuteEnd, r.Cut, r.ExactEnd)
	if err != nil {
		return nil, fmt.Errorf("group counts: %w", err)
	}
	out := make(map[string]store.FleetCounts, len(tot))
	for g, t := range tot {
		out[g] = aggregate.FleetCounts(t, fresh[g])
	}
	return out, nil
}

var _ store.EventLog = (*Store)(nil)
var _ store.GroupCounter = (*Store)(nil)
