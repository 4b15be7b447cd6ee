package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/evidence"
)

// AppendLog implements store.LogStore as one job of the writer.
func (s *Store) AppendLog(ctx context.Context, sign store.SignCheckpoint) (int, error) {
	var n int
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		n, err = store.AppendLogIn(ctx, logTx{tx}, sign)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("append log: %w", err)
	}
	return n, nil
}

// logTx is store.LogTx in SQLite's SQL.
type logTx struct{ tx *sql.Tx }

func (t logTx) Unlogged(ctx context.Context) ([]store.LogLeaf, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT device_id, epoch, sequence, seal_statement FROM reports
		WHERE seal_hash IS NOT NULL AND logged = 0
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
	err := t.tx.QueryRowContext(ctx, `SELECT size, hashes FROM log_range WHERE id = 1`).Scan(&size, &hashes)
	if errors.Is(err, sql.ErrNoRows) {
		return store.LogRange{}, false, nil
	}
	if err != nil {
		return store.LogRange{}, false, err
	}
	r, err := store.DecodeLogRange(uint64(size), hashes)
	return r, err == nil, err
}

func (t logTx) LeafHashes(ctx context.Context) ([][]byte, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT leaf_hash FROM log_leaves ORDER BY idx`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (t logTx) AddLeaves(ctx context.Context, leaves []store.LogLeaf) error {
	var next int64
	if err := t.tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves`).Scan(&next); err != nil {
		return err
	}
	for i, l := range leaves {
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO log_leaves (idx, device_id, epoch, sequence, leaf_hash) VALUES (?, ?, ?, ?, ?)`,
			next+int64(i), l.DeviceID, int64(l.Epoch), int64(l.Sequence), l.LeafHash); err != nil {
			return err
		}
		if _, err := t.tx.ExecContext(ctx, `UPDATE reports SET logged = 1 WHERE device_id = ? AND epoch = ? AND sequence = ?`,
			l.DeviceID, int64(l.Epoch), int64(l.Sequence)); err != nil {
			return err
		}
	}
	return nil
}

func (t logTx) Save(ctx context.Context, r store.LogRange, cp store.LogCheckpoint) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO log_range (id, size, hashes) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET size = excluded.size, hashes = excluded.hashes`, int64(r.Size), r.EncodeHashes()); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO log_checkpoints (size, root, at, signature) VALUES (?, ?, ?, ?)`,
		int64(cp.Size), cp.Root, nanos(cp.At), cp.Signature)
	return err
}

// LogCheckpoint implements store.LogStore.
func (s *Store) LogCheckpoint(ctx context.Context) (store.LogCheckpoint, error) {
	var c store.LogCheckpoint
	var size, at int64
	err := s.queryRow(ctx, `SELECT size, root, at, signature FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &c.Root, &at, &c.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return c, store.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("log checkpoint: %w", err)
	}
	c.Size, c.At = uint64(size), fromNanos(at)
	return c, nil
}

// LogLeaves implements store.LogStore.
func (s *Store) LogLeaves(ctx context.Context, size uint64) ([]store.LogLeaf, error) {
	rows, err := s.query(ctx, `SELECT idx, device_id, epoch, sequence, leaf_hash FROM log_leaves ORDER BY idx LIMIT ?`, int64(min(size, 1<<62)))
	if err != nil {
		return nil, fmt.Errorf("log leaves: %w", err)
	}
	defer rows.Close()
	var out []store.LogLeaf
	for rows.Next() {
		var l store.LogLeaf
		var idx, epoch, seq int64
		if err := rows.Scan(&idx, &l.DeviceID, &epoch, &seq, &l.LeafHash); err != nil {
			return nil, fmt.Errorf("log leaves: %w", err)
		}
		l.Index, l.Epoch, l.Sequence = uint64(idx), uint64(epoch), uint64(seq)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("log leaves: %w", err)
	}
	return out, nil
}

var _ store.LogStore = (*Store)(nil)
