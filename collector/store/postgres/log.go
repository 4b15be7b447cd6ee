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
		var err error
		n, err = store.AppendLogIn(ctx, logTx{tx}, sign)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("append log: %w", classify(err))
	}
	return n, nil
}

// logTx is store.LogTx in PostgreSQL's SQL.
type logTx struct{ tx pgx.Tx }

func (t logTx) Unlogged(ctx context.Context) ([]store.LogLeaf, error) {
	rows, err := t.tx.Query(ctx, `SELECT device_id, epoch, sequence, seal_statement FROM reports
		WHERE seal_hash IS NOT NULL AND NOT logged
		ORDER BY received_at, device_id, epoch, sequence`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.LogLeaf
	for rows.Next() {
		var l store.LogLeaf
		var epoch, seq int64
		var stmt []byte
		if err := rows.Scan(&l.DeviceID, &epoch, &seq, &stmt); err != nil {
			return nil, err
		}
		l.Epoch, l.Sequence, l.LeafHash = uint64(epoch), uint64(seq), evidence.LeafHash(stmt)
		out = append(out, l)
	}
	return out, rows.Err()
}

func (t logTx) Range(ctx context.Context) (store.LogRange, bool, error) {
	var size int64
	var hashes []byte
	err := t.tx.QueryRow(ctx, `SELECT size, hashes FROM log_range WHERE id = 1`).Scan(&size, &hashes)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.LogRange{}, false, nil
	}
	if err != nil {
		return store.LogRange{}, false, err
	}
	r, err := store.DecodeLogRange(uint64(size), hashes)
	return r, err == nil, err
}

func (t logTx) LeafHashes(ctx context.Context) ([][]byte, error) {
	rows, err := t.tx.Query(ctx, `SELECT leaf_hash FROM log_leaves ORDER BY idx`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}

func (t logTx) AddLeaves(ctx context.Context, leaves []store.LogLeaf) error {
	var next int64
	if err := t.tx.QueryRow(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves`).Scan(&next); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for i, l := range leaves {
		b.Queue(`INSERT INTO log_leaves (idx, device_id, epoch, sequence, leaf_hash) VALUES ($1, $2, $3, $4, $5)`,
			next+int64(i), l.DeviceID, int64(l.Epoch), int64(l.Sequence), l.LeafHash)
		b.Queue(`UPDATE reports SET logged = true WHERE device_id = $1 AND epoch = $2 AND sequence = $3`,
			l.DeviceID, int64(l.Epoch), int64(l.Sequence))
	}
	return t.tx.SendBatch(ctx, b).Close()
}

func (t logTx) Save(ctx context.Context, r store.LogRange, cp store.LogCheckpoint) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO log_range (id, size, hashes) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET size = excluded.size, hashes = excluded.hashes`, int64(r.Size), r.EncodeHashes()); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO log_checkpoints (size, root, at, signature) VALUES ($1, $2, $3, $4)`,
		int64(cp.Size), cp.Root, nanos(cp.At), cp.Signature)
	return err
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
