package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
)

// pruneBatch bounds the reports one prune transaction deletes.
const pruneBatch = 2000

// PruneReports implements store.Pruner as the SQLite store does: it
// deletes the reports observed before before, except per device its
// newest report, the newest one observed before before, and per epoch the
// report with the highest sequence and the one with the largest drop
// count. A pruned report that holds the facts of kept heartbeats first
// hands them to the oldest of those. Each batch holds the device's row
// lock, so no report of the device is stored (and no heartbeat made to
// refer to a report being pruned) meanwhile.
func (s *Store) PruneReports(ctx context.Context, before time.Time) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM devices ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("prune reports: %w", err)
	}
	devices, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("prune reports: %w", err)
	}
	total := 0
	for _, dev := range devices {
		for {
			n := 0
			err := s.tx(ctx, func(tx pgx.Tx) error {
				var err error
				n, err = pruneOnce(ctx, tx, dev, nanos(before))
				return err
			})
			if err != nil {
				return total, fmt.Errorf("prune reports of %s: %w", dev, classify(err))
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
func pruneOnce(ctx context.Context, tx pgx.Tx, dev string, before int64) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM devices WHERE id = $1 FOR UPDATE`, dev); err != nil {
		return 0, err
	}
	// What stays: the newest report, the newest before the window, and
	// per epoch the highest sequence and the largest drop count.
	rows, err := tx.Query(ctx, `WITH keep AS (
			SELECT last_epoch AS epoch, last_sequence AS sequence FROM devices WHERE id = $1
			UNION SELECT * FROM (SELECT epoch, sequence FROM reports WHERE device_id = $1 AND observed_at < $2 ORDER BY epoch DESC, sequence DESC LIMIT 1) newest_before
			UNION SELECT epoch, max(sequence) FROM reports WHERE device_id = $1 GROUP BY epoch
			UNION SELECT epoch, sequence FROM (SELECT epoch, sequence, row_number() OVER (PARTITION BY epoch ORDER BY dropped_total DESC, sequence DESC) AS rn
				FROM reports WHERE device_id = $1) most_dropped WHERE rn = 1)
		SELECT p.epoch, p.sequence FROM reports p
		WHERE p.device_id = $1 AND p.observed_at < $2 AND NOT EXISTS (SELECT 1 FROM keep k WHERE k.epoch = p.epoch AND k.sequence = p.sequence)
		ORDER BY p.epoch, p.sequence LIMIT $3`, dev, before, pruneBatch)
	if err != nil {
		return 0, err
	}
	var es, ss []int64
	var e, sq int64
	if _, err := pgx.ForEachRow(rows, []any{&e, &sq}, func() error {
		es, ss = append(es, e), append(ss, sq)
		return nil
	}); err != nil {
		return 0, err
	}
	if len(es) == 0 {
		return 0, nil
	}
	// Holders about to go whose facts kept heartbeats still refer to:
	// the oldest kept referrer becomes the holder.
	rows, err = tx.Query(ctx, `SELECT DISTINCT ON (h.e, h.s) h.e, h.s, r.epoch, r.sequence
		FROM unnest($2::bigint[], $3::bigint[]) AS h(e, s)
		JOIN reports r ON r.device_id = $1 AND r.facts_epoch = h.e AND r.facts_sequence = h.s
		WHERE NOT EXISTS (SELECT 1 FROM unnest($2::bigint[], $3::bigint[]) AS x(e, s) WHERE x.e = r.epoch AND x.s = r.sequence)
		ORDER BY h.e, h.s, r.epoch, r.sequence`, dev, es, ss)
	if err != nil {
		return 0, err
	}
	type move struct{ e, s, te, ts int64 }
	var moves []move
	var m move
	if _, err := pgx.ForEachRow(rows, []any{&m.e, &m.s, &m.te, &m.ts}, func() error {
		moves = append(moves, m)
		return nil
	}); err != nil {
		return 0, err
	}
	for _, m := range moves {
		// The new holder keeps its own collected_at (splitLead).
		var hf, lead []byte
		var hr string
		if err := tx.QueryRow(ctx, `SELECT facts, results FROM reports WHERE device_id = $1 AND epoch = $2 AND sequence = $3`, dev, m.e, m.s).Scan(&hf, &hr); err != nil {
			return 0, err
		}
		if err := tx.QueryRow(ctx, `SELECT facts FROM reports WHERE device_id = $1 AND epoch = $2 AND sequence = $3`, dev, m.te, m.ts).Scan(&lead); err != nil {
			return 0, err
		}
		_, rest := splitLead(hf)
		facts := append(append([]byte{}, lead...), rest...)
		if _, err := tx.Exec(ctx, `UPDATE reports SET facts = $1, results = $2, facts_epoch = NULL, facts_sequence = NULL
			WHERE device_id = $3 AND epoch = $4 AND sequence = $5`, facts, hr, dev, m.te, m.ts); err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `UPDATE reports SET facts_epoch = $4, facts_sequence = $5
			WHERE device_id = $1 AND facts_epoch = $2 AND facts_sequence = $3`, dev, m.e, m.s, m.te, m.ts); err != nil {
			return 0, err
		}
	}
	tag, err := tx.Exec(ctx, `DELETE FROM reports WHERE device_id = $1 AND (epoch, sequence) IN (SELECT * FROM unnest($2::bigint[], $3::bigint[]))`, dev, es, ss)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// ActiveWaivers implements store.WaiverSource: the waivers active at now
// for the device, its own and its group's, by rule then expiry.
func (s *Store) ActiveWaivers(ctx context.Context, deviceID, group string, now time.Time) ([]store.Waiver, error) {
	t := nanos(now)
	rows, err := s.pool.Query(ctx, `SELECT id, device_id, grp, rule_id, reason, created_by, created_at, expires_at, revoked_at FROM waivers
		WHERE ((device_id = $1 AND device_id <> '') OR (device_id = '' AND grp = $2))
		  AND created_at <= $3 AND expires_at > $3 AND (revoked_at IS NULL OR revoked_at > $3)
		ORDER BY rule_id, expires_at, reason, id`, deviceID, group, t)
	if err != nil {
		return nil, fmt.Errorf("active waivers: %w", err)
	}
	defer rows.Close()
	var out []store.Waiver
	for rows.Next() {
		var w store.Waiver
		var created, expires int64
		var revoked *int64
		if err := rows.Scan(&w.ID, &w.DeviceID, &w.Group, &w.RuleID, &w.Reason, &w.CreatedBy, &created, &expires, &revoked); err != nil {
			return nil, fmt.Errorf("active waivers: %w", err)
		}
		w.CreatedAt, w.ExpiresAt, w.RevokedAt = fromNanos(created), fromNanos(expires), fromNull(revoked)
		out = append(out, w)
	}
	return out, rows.Err()
}
