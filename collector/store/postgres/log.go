package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/evidence"
)

// logLock is the pg_advisory_xact_lock key AppendLog holds, so that
// collectors sharing the database append one at a time, in one order
// ("wlog" in ASCII).
const logLock = 0x776c6f67

// AppendLog implements store.LogStore in one transaction under logLock.
func (s *Store) AppendLog(ctx context.Context, sign store.SignCheckpoint) (int, error) {
	var n int
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(logLock)); err != nil {
			return err
		}
		var next int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves`).Scan(&next); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT r.device_id, r.epoch, r.sequence, r.seal_statement FROM reports r
			WHERE r.seal_hash IS NOT NULL AND NOT r.logged
			ORDER BY r.received_at, r.device_id, r.epoch, r.sequence`)
		if err != nil {
			return err
		}
		var add []store.LogLeaf
		for rows.Next() {
			var l store.LogLeaf
			var epoch, seq int64
			var stmt []byte
			if err := rows.Scan(&l.DeviceID, &epoch, &seq, &stmt); err != nil {
				rows.Close()
				return err
			}
			l.Epoch, l.Sequence, l.LeafHash = uint64(epoch), uint64(seq), evidence.LeafHash(stmt)
			add = append(add, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(add) == 0 {
			return nil
		}
		// The range as it was before these leaves.
		r, err := loadRange(ctx, tx)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		hashes := make([][]byte, len(add))
		for i, l := range add {
			b.Queue(`INSERT INTO log_leaves (idx, device_id, epoch, sequence, leaf_hash) VALUES ($1, $2, $3, $4, $5)`,
				next+int64(i), l.DeviceID, int64(l.Epoch), int64(l.Sequence), l.LeafHash)
			b.Queue(`UPDATE reports SET logged = true WHERE device_id = $1 AND epoch = $2 AND sequence = $3`,
				l.DeviceID, int64(l.Epoch), int64(l.Sequence))
			hashes[i] = l.LeafHash
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		grown, root, err := r.Grow(hashes)
		if err != nil {
			return err
		}
		cp, err := sign(grown.Size, root)
		if err != nil {
			return err
		}
		if cp.Size != grown.Size {
			return fmt.Errorf("checkpoint of size %d for %d leaves", cp.Size, grown.Size)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO log_range (id, size, hashes) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET size = excluded.size, hashes = excluded.hashes`, int64(grown.Size), grown.EncodeHashes()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO log_checkpoints (size, root, at, signature) VALUES ($1, $2, $3, $4)`,
			int64(cp.Size), cp.Root, nanos(cp.At), cp.Signature); err != nil {
			return err
		}
		n = len(add)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append log: %w", classify(err))
	}
	return n, nil
}

// loadRange reads the log's compact range, built again from every leaf
// when it is missing (a store whose range was lost; one read of
// log_leaves, once).
func loadRange(ctx context.Context, tx pgx.Tx) (store.LogRange, error) {
	var size int64
	var hashes []byte
	err := tx.QueryRow(ctx, `SELECT size, hashes FROM log_range WHERE id = 1`).Scan(&size, &hashes)
	if err == nil {
		return store.DecodeLogRange(uint64(size), hashes)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.LogRange{}, err
	}
	rows, err := tx.Query(ctx, `SELECT leaf_hash FROM log_leaves ORDER BY idx`)
	if err != nil {
		return store.LogRange{}, err
	}
	leaves, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return store.LogRange{}, err
	}
	r, _, err := store.LogRange{}.Grow(leaves)
	return r, err
}

// LogCheckpoint implements store.LogStore.
func (s *Store) LogCheckpoint(ctx context.Context) (store.LogCheckpoint, error) {
	var c store.LogCheckpoint
	var size, at int64
	err := s.pool.QueryRow(ctx, `SELECT size, root, at, signature FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &c.Root, &at, &c.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, store.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("log checkpoint: %w", classify(err))
	}
	c.Size, c.At = uint64(size), fromNanos(at)
	return c, nil
}

// LogLeaves implements store.LogStore.
func (s *Store) LogLeaves(ctx context.Context, size uint64) ([]store.LogLeaf, error) {
	rows, err := s.pool.Query(ctx, `SELECT idx, device_id, epoch, sequence, leaf_hash FROM log_leaves ORDER BY idx LIMIT $1`, int64(min(size, 1<<62)))
	if err != nil {
		return nil, fmt.Errorf("log leaves: %w", classify(err))
	}
	defer rows.Close()
	var out []store.LogLeaf
	for rows.Next() {
		var l store.LogLeaf
		var idx, epoch, seq int64
		if err := rows.Scan(&idx, &l.DeviceID, &epoch, &seq, &l.LeafHash); err != nil {
			return nil, fmt.Errorf("log leaves: %w", classify(err))
		}
		l.Index, l.Epoch, l.Sequence = uint64(idx), uint64(epoch), uint64(seq)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("log leaves: %w", classify(err))
	}
	return out, nil
}

var _ store.LogStore = (*Store)(nil)
