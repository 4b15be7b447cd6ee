package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// The events outbox (store.EventLog; migration_events.go).

// errCursorMoved rolls back a job whose cursor was not where it expected.
var errCursorMoved = errors.New("cursor moved")

// AddEvent implements store.EventLog.
func (s *Store) AddEvent(ctx context.Context, e store.Event) (int64, error) {
	var id int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO events (at, type, device_id, payload, recorded_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			nanos(e.At), e.Type, e.DeviceID, string(e.Payload), nanos(e.Recorded())).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("add event: %w", err)
	}
	return id, nil
}

// AddEvents implements store.EventLog.
func (s *Store) AddEvents(ctx context.Context, events []store.Event, cursor string, old, next int64) (bool, error) {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if moved, err := moveCursor(ctx, tx, cursor, old, next); err != nil {
			return err
		} else if !moved {
			return errCursorMoved
		}
		for _, e := range events {
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (at, type, device_id, payload, recorded_at) VALUES (?, ?, ?, ?, ?)`,
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

func moveCursor(ctx context.Context, tx *sql.Tx, name string, old, next int64) (bool, error) {
	var res sql.Result
	var err error
	if old < 0 {
		res, err = tx.ExecContext(ctx, `INSERT INTO event_cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, next)
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE event_cursors SET value = ? WHERE name = ? AND value = ?`, next, name, old)
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// EventsAfter implements store.EventLog.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]store.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, type, device_id, payload, recorded_at FROM events WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
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

// LastEventID implements store.EventLog: AUTOINCREMENT's sequence, which
// pruning does not take back.
func (s *Store) LastEventID(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("last event id: %w", err)
	}
	return n, nil
}

// TransitionsAfter implements store.EventLog.
func (s *Store) TransitionsAfter(ctx context.Context, after int64, limit int) ([]store.TransitionEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, device_id, rule_id, from_v, to_v, at, sequence FROM transitions WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
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
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM transitions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("last transition id: %w", err)
	}
	return n, nil
}

// Cursor implements store.EventLog.
func (s *Store) Cursor(ctx context.Context, name string) (int64, bool, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT value FROM event_cursors WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("cursor %s: %w", name, err)
	}
	return v, true, nil
}

// MoveCursor implements store.EventLog.
func (s *Store) MoveCursor(ctx context.Context, name string, old, next int64) (bool, error) {
	var moved bool
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		moved, err = moveCursor(ctx, tx, name, old, next)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("move cursor %s: %w", name, err)
	}
	return moved, nil
}

// AddDelivery implements store.EventLog.
func (s *Store) AddDelivery(ctx context.Context, d store.Delivery) error {
	_, err := s.exec(ctx, `INSERT INTO event_deliveries (event_id, event_type, sink, url, attempt, at, status, error, outcome, duration)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.EventID, d.EventType, d.Sink, d.URL, d.Attempt, nanos(d.At), d.Status, d.Error, d.Outcome, int64(d.Duration))
	if err != nil {
		return fmt.Errorf("add delivery: %w", err)
	}
	return nil
}

// Deliveries implements store.EventLog.
func (s *Store) Deliveries(ctx context.Context, limit int) ([]store.Delivery, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, event_id, event_type, sink, url, attempt, at, status, error, outcome, duration
		FROM event_deliveries ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var d store.Delivery
		var at, dur int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.EventType, &d.Sink, &d.URL, &d.Attempt, &at, &d.Status, &d.Error, &d.Outcome, &dur); err != nil {
			return nil, fmt.Errorf("deliveries: %w", err)
		}
		d.At, d.Duration = fromNanos(at), time.Duration(dur)
		out = append(out, d)
	}
	return out, rows.Err()
}

// PassedDeadlines implements store.EventLog, from agg_failing: one
// indexed range of failing_since per (group, rule).
func (s *Store) PassedDeadlines(ctx context.Context, rules []store.DeadlineRule, from, to time.Time, limit int) ([]store.Overdue, error) {
	if limit <= 0 {
		limit = -1
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
		rows, err := s.db.QueryContext(ctx, `SELECT * FROM (SELECT f.device_id, d.hostname, f.grp, f.rule_id, r.title, f.since, f.since + ?5 AS due
			FROM agg_failing f JOIN devices d ON d.id = f.device_id JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id
			WHERE f.grp = ?1 AND f.rule_id = ?2 AND f.since > ?3 AND f.since <= ?4 AND r.grace_connected = 0 ORDER BY f.since, f.device_id LIMIT ?6)
			UNION ALL SELECT * FROM (SELECT f.device_id, d.hostname, f.grp, f.rule_id, r.title, f.since, `+connectedSince+` + ?5 AS due FROM `+connectedDue+`
			WHERE f.grp = ?1 AND f.rule_id = ?2 AND r.grace_connected = 1 AND r.deadline_paused = 0 AND `+connectedSince+` > ?3 AND `+connectedSince+` <= ?4
			ORDER BY f.since, f.device_id LIMIT ?6)`,
			r.Group, r.RuleID, nanos(from.Add(-r.Grace)), nanos(to.Add(-r.Grace)), int64(r.Grace), limit)
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
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM events WHERE recorded_at < ?`, `DELETE FROM event_deliveries WHERE at < ?`} {
			res, err := tx.ExecContext(ctx, q, nanos(before))
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}

// GroupCounts implements store.GroupCounter, as fleetCounts per group
// in two queries: the totals of agg_devices and the fresh counts of
// agg_seen (and the cut's minute, exactly), both grouped by group.
func (s *Store) GroupCounts(ctx context.Context, now time.Time, staleAfter time.Duration) (map[string]store.FleetCounts, error) {
	tot := map[string]map[string]int{}
	add := func(m map[string]map[string]int, rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var g, class string
			var n int
			if err := rows.Scan(&g, &class, &n); err != nil {
				return err
			}
			if m[g] == nil {
				m[g] = map[string]int{}
			}
			m[g][class] += n
		}
		return rows.Err()
	}
	rows, err := s.db.QueryContext(ctx, `SELECT grp, class, sum(n) FROM agg_devices GROUP BY grp, class`)
	if err == nil {
		err = add(tot, rows)
	}
	if err != nil {
		return nil, fmt.Errorf("group counts: %w", err)
	}
	r := aggregate.RangesOf(staleCut(now, staleAfter))
	fresh := map[string]map[string]int{}
	rows, err = s.db.QueryContext(ctx, `SELECT grp, class, sum(n) FROM (
		SELECT grp, class, n FROM agg_seen WHERE width = ? AND bucket > ?
		UNION ALL SELECT grp, class, n FROM agg_seen WHERE width = ? AND bucket > ? AND bucket < ?
		UNION ALL SELECT d.grp, `+classExpr+`, 1 FROM devices d WHERE `+seenExpr+` >= ? AND `+seenExpr+` < ? AND d.revoked_at IS NULL
		) GROUP BY grp, class`, aggregate.HourNanos, r.Hour, aggregate.MinuteNanos, r.Minute, r.MinuteEnd, r.Cut, r.ExactEnd)
	if err == nil {
		err = add(fresh, rows)
	}
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
