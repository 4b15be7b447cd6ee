package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Reports, identified by (device, epoch, sequence): see
// docs/enrolment.md, "Report identity and clocks".

// StartEpoch implements store.Store.
func (s *Store) StartEpoch(ctx context.Context, deviceID string, now time.Time) (uint64, error) {
	var epoch int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE devices SET epoch = epoch + 1, epoch_started_at = ? WHERE id = ? RETURNING epoch`,
			nanos(now), deviceID).Scan(&epoch)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("start epoch: %w", err)
	}
	return uint64(epoch), nil
}

// Epoch implements store.Store.
func (s *Store) Epoch(ctx context.Context, deviceID string) (store.Epoch, error) {
	var epoch, started, enrolled int64
	err := s.db.QueryRowContext(ctx, `SELECT epoch, epoch_started_at, enrolled_at FROM devices WHERE id = ?`, deviceID).Scan(&epoch, &started, &enrolled)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Epoch{}, fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return store.Epoch{}, fmt.Errorf("epoch: %w", err)
	}
	return store.Epoch{Number: uint64(epoch), StartedAt: fromNanos(started), EnrolledAt: fromNanos(enrolled)}, nil
}

// DroppedTotal implements store.Store.
func (s *Store) DroppedTotal(ctx context.Context, deviceID string) (uint64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(m), 0) FROM (SELECT max(dropped_total) AS m FROM reports WHERE device_id = ? GROUP BY epoch)`, deviceID).Scan(&n)
	if err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// satInt64 stores a uint64 count in SQLite's signed integer, saturating.
func satInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// LastSequence implements store.Store.
func (s *Store) LastSequence(ctx context.Context, deviceID string, epoch uint64) (uint64, error) {
	var last int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(sequence), 0) FROM reports WHERE device_id = ? AND epoch = ?`, deviceID, int64(epoch)).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("last sequence: %w", err)
	}
	return uint64(last), nil
}

// SaveReport implements store.Store.
func (s *Store) SaveReport(ctx context.Context, r store.Report) (bool, error) {
	if r.Sequence == 0 || r.Sequence > store.MaxSequence || r.Epoch > store.MaxSequence {
		return false, fmt.Errorf("save report: sequence %d: %w", r.Sequence, store.ErrSequenceRange)
	}
	results, err := json.Marshal(r.Results)
	if err != nil {
		return false, fmt.Errorf("save report: %w", err)
	}
	if r.ObservedAt.IsZero() {
		// A caller that vouches for no time: collection, never later
		// than receipt.
		r.ObservedAt = r.CollectedAt
		if r.ObservedAt.IsZero() || r.ObservedAt.After(r.ReceivedAt) {
			r.ObservedAt = r.ReceivedAt
		}
	}
	stored := false
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var epoch, lastEpoch, lastSeq, enrolled int64
		err := tx.QueryRowContext(ctx, `SELECT epoch, last_epoch, last_sequence, enrolled_at FROM devices WHERE id = ?`, r.DeviceID).
			Scan(&epoch, &lastEpoch, &lastSeq, &enrolled)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("device %s: %w", r.DeviceID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		before, err := loadSnapshot(ctx, tx, r.DeviceID)
		if err != nil {
			return err
		}
		e, seq := int64(r.Epoch), int64(r.Sequence)
		if e > epoch {
			return fmt.Errorf("epoch %d, device is in %d: %w", r.Epoch, epoch, store.ErrEpochUnknown)
		}
		var hash []byte
		err = tx.QueryRowContext(ctx, `SELECT content_hash FROM reports WHERE device_id = ? AND epoch = ? AND sequence = ?`, r.DeviceID, e, seq).Scan(&hash)
		switch {
		case err == nil:
			if len(hash) == 0 || len(r.ContentHash) == 0 || bytes.Equal(hash, r.ContentHash) {
				// Already stored. A redelivery may carry a larger drop
				// count (drops since the first attempt): keep the largest.
				_, err := tx.ExecContext(ctx, `UPDATE reports SET dropped_total = max(dropped_total, ?) WHERE device_id = ? AND epoch = ? AND sequence = ?`,
					satInt64(r.DroppedTotal), r.DeviceID, e, seq)
				return err
			}
			return fmt.Errorf("epoch %d sequence %d: %w", r.Epoch, r.Sequence, store.ErrReportConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var top sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(sequence) FROM reports WHERE device_id = ? AND epoch = ?`, r.DeviceID, e).Scan(&top); err != nil {
			return err
		}
		if !top.Valid {
			// The epoch's first report: an agent re-enrolled in place
			// goes on numbering from its old outbox.
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(sequence), 0) FROM reports WHERE device_id = ?`, r.DeviceID).Scan(&top.Int64); err != nil {
				return err
			}
		}
		if seq > top.Int64+store.MaxSequenceJump {
			return fmt.Errorf("sequence %d is more than %d past %d: %w", r.Sequence, store.MaxSequenceJump, top.Int64, store.ErrSequenceRange)
		}
		facts, res := r.Facts, string(results)
		if facts == nil {
			facts = []byte{}
		}
		refE, refS, same, err := sameAsNewest(ctx, tx, r.DeviceID, lastEpoch, lastSeq, facts, res)
		if err != nil {
			return err
		}
		if same {
			// A heartbeat: its own collected_at, the rest of the newest
			// report's facts and its results by reference.
			lead, _ := splitLead(facts)
			facts, res = append([]byte{}, lead...), ""
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO reports (device_id, epoch, sequence, received_at, collected_at, collected_at_sent, observed_at, clock_suspect, content_hash,
			agent_version, policy_name, policy_version, dropped_reports, dropped_total, facts, results, facts_epoch, facts_sequence)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.DeviceID, e, seq, nanos(r.ReceivedAt), nanos(r.CollectedAt), sentText(r.CollectedAt), nanos(r.ObservedAt), r.ClockSuspect, r.ContentHash,
			r.AgentVersion, r.PolicyName, r.PolicyVersion, int64(r.DroppedReports), satInt64(r.DroppedTotal), facts, res, refE, refS)
		if err != nil {
			return err
		}
		stored = true
		newest := e == epoch && (e > lastEpoch || seq > lastSeq)
		if !newest {
			// An older report arriving late, or one of an earlier
			// enrolment: history only.
			if _, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?) WHERE id = ?`, nanos(r.ReceivedAt), r.DeviceID); err != nil {
				return err
			}
			return trackAggregates(ctx, tx, before, r.ObservedAt)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?), last_epoch = ?, last_sequence = ? WHERE id = ?`,
			nanos(r.ReceivedAt), e, seq, r.DeviceID); err != nil {
			return err
		}
		if err := updateStates(ctx, tx, r, fromNanos(enrolled)); err != nil {
			return err
		}
		return trackAggregates(ctx, tx, before, r.ObservedAt)
	})
	if err != nil {
		return false, fmt.Errorf("save report: %w", err)
	}
	return stored, nil
}

// sentText is t as RFC 3339, which holds any timestamp an agent can send.
func sentText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// updateStates replaces the device's latest state per rule with the
// report's and records each change of the collector's verdict, at the
// report's ObservedAt. A failing_since carried over is never before
// enrolled nor after ObservedAt.
func updateStates(ctx context.Context, tx *sql.Tx, r store.Report, enrolled time.Time) error {
	prev := map[string]struct {
		v     store.Verdict
		since sql.NullInt64
	}{}
	rows, err := tx.QueryContext(ctx, `SELECT rule_id, collector, failing_since FROM rule_states WHERE device_id = ?`, r.DeviceID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var v string
		var since sql.NullInt64
		if err := rows.Scan(&id, &v, &since); err != nil {
			rows.Close()
			return err
		}
		prev[id] = struct {
			v     store.Verdict
			since sql.NullInt64
		}{store.Verdict(v), since}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	at := nanos(r.ObservedAt)
	if _, err := tx.ExecContext(ctx, `DELETE FROM rule_states WHERE device_id = ?`, r.DeviceID); err != nil {
		return err
	}
	for _, res := range r.Results {
		p, seen := prev[res.RuleID]
		since := sql.NullInt64{}
		if res.Collector == store.Fail {
			since = sql.NullInt64{Int64: at, Valid: true}
			if seen && p.v == store.Fail && p.since.Valid {
				since.Int64 = min(max(p.since.Int64, nanos(enrolled)), at)
			}
		}
		if !seen || p.v != res.Collector {
			if _, err := tx.ExecContext(ctx, `INSERT INTO transitions (device_id, rule_id, from_v, to_v, at, sequence) VALUES (?, ?, ?, ?, ?, ?)`,
				r.DeviceID, res.RuleID, string(p.v), string(res.Collector), at, int64(r.Sequence)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rule_states (device_id, rule_id, title, family, severity, collector, agent, observed, expected, reason, failing_since, updated_at, sequence)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.DeviceID, res.RuleID, res.Title, res.Family, res.Severity, string(res.Collector), string(res.Agent), res.Observed, res.Expected, res.Reason,
			since, at, int64(r.Sequence)); err != nil {
			return err
		}
	}
	return updateCounts(ctx, tx, r.DeviceID)
}

// Reports implements store.Store.
func (s *Store) Reports(ctx context.Context, deviceID string, limit int) ([]store.Report, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT device_id, epoch, sequence, received_at, collected_at, collected_at_sent, observed_at, clock_suspect, content_hash,
		agent_version, policy_name, policy_version, dropped_reports, `+factsOf("p")+`, `+resultsOf("p")+`
		FROM reports p WHERE device_id = ? ORDER BY epoch DESC, sequence DESC LIMIT ?`, deviceID, limit)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	defer rows.Close()
	var out []store.Report
	for rows.Next() {
		var r store.Report
		var epoch, seq, dropped, received, collected, observed int64
		var sent, results string
		if err := rows.Scan(&r.DeviceID, &epoch, &seq, &received, &collected, &sent, &observed, &r.ClockSuspect, &r.ContentHash,
			&r.AgentVersion, &r.PolicyName, &r.PolicyVersion, &dropped, &r.Facts, &results); err != nil {
			return nil, fmt.Errorf("list reports: %w", err)
		}
		r.Epoch, r.Sequence, r.DroppedReports = uint64(epoch), uint64(seq), uint64(dropped)
		r.ReceivedAt, r.CollectedAt, r.ObservedAt = fromNanos(received), fromNanos(collected), fromNanos(observed)
		if t, err := time.Parse(time.RFC3339Nano, sent); err == nil {
			r.CollectedAt = t.UTC()
		}
		if err := json.Unmarshal([]byte(results), &r.Results); err != nil {
			return nil, fmt.Errorf("list reports: decode results: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
