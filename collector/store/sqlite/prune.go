package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pruneBatch bounds the reports one prune transaction deletes.
const pruneBatch = 2000

// PruneReports implements store.Pruner: it deletes the reports received
// before before, except per device its newest report, the newest one
// received before before (what StateAsOf, export --as-of, shows for any
// time inside the window until the next report), and per epoch the
// report with the highest sequence and the one with the largest drop
// count (LastSequence and DroppedTotal). Transitions and rule states are
// kept. A pruned report that holds the facts of kept heartbeats first
// hands them to the oldest of those. It returns how many reports it
// deleted.
func (s *Store) PruneReports(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n := 0
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = pruneOnce(ctx, tx, nanos(before))
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune reports: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

func pruneOnce(ctx context.Context, tx *sql.Tx, before int64) (int, error) {
	for _, q := range []string{
		`CREATE TEMP TABLE IF NOT EXISTS prune_doomed (device_id TEXT NOT NULL, epoch INTEGER NOT NULL, sequence INTEGER NOT NULL, PRIMARY KEY (device_id, epoch, sequence))`,
		`DELETE FROM temp.prune_doomed`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, err
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO temp.prune_doomed (device_id, epoch, sequence)
		SELECT p.device_id, p.epoch, p.sequence FROM reports p JOIN devices d ON d.id = p.device_id
		WHERE p.received_at < ?1
		AND NOT (p.epoch = d.last_epoch AND p.sequence = d.last_sequence)
		AND (p.epoch, p.sequence) IS NOT (SELECT q.epoch, q.sequence FROM reports q WHERE q.device_id = p.device_id AND q.received_at < ?1 ORDER BY q.epoch DESC, q.sequence DESC LIMIT 1)
		AND p.sequence IS NOT (SELECT max(q.sequence) FROM reports q WHERE q.device_id = p.device_id AND q.epoch = p.epoch)
		AND p.sequence IS NOT (SELECT q.sequence FROM reports q WHERE q.device_id = p.device_id AND q.epoch = p.epoch ORDER BY q.dropped_total DESC, q.sequence DESC LIMIT 1)
		LIMIT ?2`, before, pruneBatch)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	// Holders about to go whose facts kept heartbeats still refer to.
	rows, err := tx.QueryContext(ctx, `SELECT h.device_id, h.epoch, h.sequence, r.epoch, r.sequence
		FROM temp.prune_doomed h JOIN reports r ON r.device_id = h.device_id AND r.facts_epoch = h.epoch AND r.facts_sequence = h.sequence
		WHERE NOT EXISTS (SELECT 1 FROM temp.prune_doomed x WHERE x.device_id = r.device_id AND x.epoch = r.epoch AND x.sequence = r.sequence)
		ORDER BY h.device_id, h.epoch, h.sequence, r.epoch, r.sequence`)
	if err != nil {
		return 0, err
	}
	type move struct {
		dev          string
		e, s, te, ts int64
	}
	var moves []move
	for rows.Next() {
		var m move
		if err := rows.Scan(&m.dev, &m.e, &m.s, &m.te, &m.ts); err != nil {
			rows.Close()
			return 0, err
		}
		if k := len(moves); k > 0 && moves[k-1].dev == m.dev && moves[k-1].e == m.e && moves[k-1].s == m.s {
			continue // the oldest kept referrer becomes the holder
		}
		moves = append(moves, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, m := range moves {
		// The new holder keeps its own collected_at (splitLead).
		var hf, lead []byte
		var hr string
		if err := tx.QueryRowContext(ctx, `SELECT facts, results FROM reports WHERE device_id = ? AND epoch = ? AND sequence = ?`, m.dev, m.e, m.s).Scan(&hf, &hr); err != nil {
			return 0, err
		}
		if err := tx.QueryRowContext(ctx, `SELECT facts FROM reports WHERE device_id = ? AND epoch = ? AND sequence = ?`, m.dev, m.te, m.ts).Scan(&lead); err != nil {
			return 0, err
		}
		_, rest := splitLead(hf)
		facts := append(append([]byte{}, lead...), rest...)
		if _, err := tx.ExecContext(ctx, `UPDATE reports SET facts = ?, results = ?, facts_epoch = NULL, facts_sequence = NULL
			WHERE device_id = ? AND epoch = ? AND sequence = ?`, facts, hr, m.dev, m.te, m.ts); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE reports SET facts_epoch = ?4, facts_sequence = ?5
			WHERE device_id = ?1 AND facts_epoch = ?2 AND facts_sequence = ?3`, m.dev, m.e, m.s, m.te, m.ts); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM reports WHERE (device_id, epoch, sequence) IN (SELECT device_id, epoch, sequence FROM temp.prune_doomed)`); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM temp.prune_doomed`); err != nil {
		return 0, err
	}
	return int(n), nil
}
