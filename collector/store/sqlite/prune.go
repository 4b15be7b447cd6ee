package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pruneBatch bounds the reports one prune transaction deletes.
const pruneBatch = 2000

// PruneReports implements store.Pruner: it deletes the reports observed
// (collected, as the collector vouches: the evidence time) before before,
// except per device its newest report, the newest one by (epoch,
// sequence) observed before before (what StateAsOf, export --as-of,
// shows for any time inside the window until the next report), and per
// epoch the report with the highest sequence and the one with the
// largest drop count (LastSequence and DroppedTotal). Transitions and
// rule states are kept. A pruned report that holds the facts of kept heartbeats first
// hands them to the oldest of those. It returns how many reports it
// deleted.
func (s *Store) PruneReports(ctx context.Context, before time.Time) (int, error) {
	var devices []string
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM devices ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("prune reports: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("prune reports: %w", err)
		}
		devices = append(devices, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("prune reports: %w", err)
	}
	total := 0
	for _, dev := range devices {
		for {
			n := 0
			err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				var err error
				n, err = pruneOnce(ctx, tx, dev, nanos(before))
				return err
			})
			if err != nil {
				return total, fmt.Errorf("prune reports of %s: %w", dev, err)
			}
			total += n
			if n < pruneBatch {
				break
			}
		}
	}
	return total, nil
}

// pruneOnce deletes up to pruneBatch of the device's prunable reports.
func pruneOnce(ctx context.Context, tx *sql.Tx, dev string, before int64) (int, error) {
	for _, q := range []string{
		`CREATE TEMP TABLE IF NOT EXISTS prune_doomed (device_id TEXT NOT NULL, epoch INTEGER NOT NULL, sequence INTEGER NOT NULL, PRIMARY KEY (device_id, epoch, sequence))`,
		`CREATE TEMP TABLE IF NOT EXISTS prune_keep (epoch INTEGER NOT NULL, sequence INTEGER NOT NULL, PRIMARY KEY (epoch, sequence))`,
		`DELETE FROM temp.prune_doomed`,
		`DELETE FROM temp.prune_keep`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, err
		}
	}
	// What stays: the newest report, the newest before the window, and
	// per epoch the highest sequence and the largest drop count.
	for _, q := range []string{
		`INSERT OR IGNORE INTO temp.prune_keep SELECT last_epoch, last_sequence FROM devices WHERE id = ?1`,
		`INSERT OR IGNORE INTO temp.prune_keep SELECT epoch, sequence FROM reports WHERE device_id = ?1 AND observed_at < ?2 ORDER BY epoch DESC, sequence DESC LIMIT 1`,
		`INSERT OR IGNORE INTO temp.prune_keep SELECT epoch, max(sequence) FROM reports WHERE device_id = ?1 GROUP BY epoch`,
		`INSERT OR IGNORE INTO temp.prune_keep SELECT epoch, sequence FROM (SELECT epoch, sequence, row_number() OVER (PARTITION BY epoch ORDER BY dropped_total DESC, sequence DESC) AS rn
			FROM reports WHERE device_id = ?1) WHERE rn = 1`,
	} {
		if _, err := tx.ExecContext(ctx, q, dev, before); err != nil {
			return 0, err
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO temp.prune_doomed (device_id, epoch, sequence)
		SELECT p.device_id, p.epoch, p.sequence FROM reports p
		WHERE p.device_id = ?1 AND p.observed_at < ?2
		AND NOT EXISTS (SELECT 1 FROM temp.prune_keep k WHERE k.epoch = p.epoch AND k.sequence = p.sequence)
		LIMIT ?3`, dev, before, pruneBatch)
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
