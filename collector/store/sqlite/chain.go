package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Chains of sealed reports (docs/evidence.md, "Chains"): the seal is kept
// with its report, and SaveReport records the gaps and forks a sealed
// report makes (store.Chain) in the writer's transaction.

const (
	qChainPrev = `SELECT sequence, seal_hash, seal_prev_hash, seal_dropped FROM reports
		WHERE device_id = ? AND epoch = ? AND sequence < ? AND seal_hash IS NOT NULL ORDER BY sequence DESC LIMIT 1`
	qChainNext = `SELECT sequence, seal_hash, seal_prev_hash, seal_dropped FROM reports
		WHERE device_id = ? AND epoch = ? AND sequence > ? AND seal_hash IS NOT NULL ORDER BY sequence LIMIT 1`
	qChainClaimants = `SELECT sequence, seal_hash, seal_prev_hash, seal_dropped FROM reports
		WHERE device_id = ? AND epoch = ? AND seal_prev_hash = ? AND seal_prev_hash IS NOT NULL AND sequence <> ?`
	qChainGapAt = `SELECT after_sequence, before_sequence, dropped, recorded_at FROM chain_gaps
		WHERE device_id = ? AND epoch = ? AND after_sequence < ? AND before_sequence > ? ORDER BY after_sequence DESC LIMIT 1`
	qChainDeleteGap  = `DELETE FROM chain_gaps WHERE device_id = ? AND epoch = ? AND after_sequence = ?`
	qChainInsertGap  = `INSERT OR REPLACE INTO chain_gaps (device_id, epoch, after_sequence, before_sequence, dropped, recorded_at) VALUES (?, ?, ?, ?, ?, ?)`
	qChainInsertFork = `INSERT OR IGNORE INTO chain_forks (device_id, epoch, sequence, prev_hash, hash, other, other_sequence, recorded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qFirstSealed = `SELECT min(sequence) FROM reports WHERE device_id = ? AND epoch = ? AND seal_hash IS NOT NULL`
	qSealHash    = `SELECT seal_hash FROM reports WHERE device_id = ? AND epoch = ? AND sequence = ?`
)

// chainWrites are the chain's statements the writer prepares.
var chainWrites = []string{qChainPrev, qChainNext, qChainClaimants, qChainGapAt, qChainDeleteGap, qChainInsertGap, qChainInsertFork}

// sealArgs are the seal columns of qInsertReport for seal (all NULL for
// none).
func sealArgs(seal *store.ReportSeal) []any {
	if seal == nil {
		return []any{nil, nil, nil, nil, nil, nil}
	}
	return []any{seal.Statement, seal.Hash, orNull(seal.PrevHash), seal.KeyID, seal.Signature, satInt64(store.SealedDropped(seal.Statement))}
}

// orNull is b, or NULL when it is empty.
func orNull(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// writeChain records the gaps and forks the sealed report r makes in its
// epoch, before r is inserted.
func writeChain(ctx context.Context, tx ptx, r store.Report) error {
	e, seq := int64(r.Epoch), int64(r.Sequence)
	link := store.ChainLink{Sequence: r.Sequence, Hash: r.Seal.Hash, PrevHash: r.Seal.PrevHash, Dropped: store.SealedDropped(r.Seal.Statement)}
	var n store.ChainNeighbours
	var err error
	if n.Prev, err = chainLink(tx.QueryRowContext(ctx, qChainPrev, r.DeviceID, e, seq)); err != nil {
		return err
	}
	if n.Next, err = chainLink(tx.QueryRowContext(ctx, qChainNext, r.DeviceID, e, seq)); err != nil {
		return err
	}
	if len(link.PrevHash) > 0 {
		rows, err := tx.QueryContext(ctx, qChainClaimants, r.DeviceID, e, link.PrevHash, seq)
		if err != nil {
			return err
		}
		for rows.Next() {
			l, err := scanLink(rows)
			if err != nil {
				rows.Close()
				return err
			}
			n.Claimants = append(n.Claimants, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	var after, before, dropped, at int64
	switch err := tx.QueryRowContext(ctx, qChainGapAt, r.DeviceID, e, seq, seq).Scan(&after, &before, &dropped, &at); {
	case err == nil:
		n.Gap = &store.ChainGap{DeviceID: r.DeviceID, Epoch: r.Epoch, After: uint64(after), Before: uint64(before), Dropped: uint64(dropped), RecordedAt: fromNanos(at)}
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	c := store.Chain(r.DeviceID, r.Epoch, link, n, r.ReceivedAt)
	if c.DeleteGap != nil {
		if _, err := tx.ExecContext(ctx, qChainDeleteGap, r.DeviceID, e, satInt64(*c.DeleteGap)); err != nil {
			return err
		}
	}
	for _, g := range c.Gaps {
		if _, err := tx.ExecContext(ctx, qChainInsertGap, r.DeviceID, e, satInt64(g.After), satInt64(g.Before), satInt64(g.Dropped), nanos(g.RecordedAt)); err != nil {
			return err
		}
	}
	for _, f := range c.Forks {
		if _, err := tx.ExecContext(ctx, qChainInsertFork, r.DeviceID, e, satInt64(f.Sequence), orEmpty(f.PrevHash), orEmpty(f.Hash), orEmpty(f.Other),
			satInt64(f.OtherSequence), nanos(f.RecordedAt)); err != nil {
			return err
		}
	}
	return nil
}

// orEmpty is b, never NULL.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

type scanner interface{ Scan(...any) error }

func scanLink(row scanner) (store.ChainLink, error) {
	var seq int64
	var dropped sql.NullInt64
	var l store.ChainLink
	if err := row.Scan(&seq, &l.Hash, &l.PrevHash, &dropped); err != nil {
		return store.ChainLink{}, err
	}
	l.Sequence, l.Dropped = uint64(seq), uint64(max(dropped.Int64, 0))
	return l, nil
}

// chainLink is the link row holds, nil for none.
func chainLink(row *sql.Row) (*store.ChainLink, error) {
	l, err := scanLink(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

var _ store.Chains = (*Store)(nil)
var _ store.SealedFrom = (*Store)(nil)
var _ store.EvidenceStore = (*Store)(nil)

// FirstSealed implements store.SealedFrom.
func (s *Store) FirstSealed(ctx context.Context, deviceID string, epoch uint64) (uint64, error) {
	var first sql.NullInt64
	if err := s.queryRow(ctx, qFirstSealed, deviceID, satInt64(epoch)).Scan(&first); err != nil {
		return 0, fmt.Errorf("first sealed report: %w", err)
	}
	return uint64(max(first.Int64, 0)), nil
}

// SealHash implements store.SealedFrom.
func (s *Store) SealHash(ctx context.Context, deviceID string, epoch, sequence uint64) ([]byte, error) {
	var h []byte
	err := s.queryRow(ctx, qSealHash, deviceID, satInt64(epoch), satInt64(sequence)).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("seal hash: %w", err)
	}
	return h, nil
}

// qEvidenceReports is a device's (?3) reports with facts, results and
// seals; EvidenceReports adds the selection by observed_at.
var qEvidenceReports = `SELECT device_id, epoch, sequence, received_at, collected_at, collected_at_sent, observed_at, clock_suspect, content_hash,
	agent_version, policy_name, policy_version, dropped_reports, dropped_total, ` + factsOf("p") + `, ` + resultsOf("p") + `,
	seal_statement, seal_hash, seal_prev_hash, seal_key_id, seal_signature, feed_serial
	FROM reports p WHERE device_id = ?3`

// EvidenceReports implements store.EvidenceStore.
func (s *Store) EvidenceReports(ctx context.Context, deviceID string, from, to time.Time) ([]store.Report, error) {
	f, t := nanos(from), nanos(to)
	q := `SELECT * FROM (` + qEvidenceReports + ` AND observed_at < ?1 ORDER BY observed_at DESC, epoch DESC, sequence DESC LIMIT 1)
		UNION ALL SELECT * FROM (` + qEvidenceReports + ` AND observed_at >= ?1 AND observed_at < ?2)
		UNION ALL SELECT * FROM (` + qEvidenceReports + ` AND observed_at >= ?2 ORDER BY observed_at, epoch, sequence LIMIT 1)
		ORDER BY 2, 3`
	rows, err := s.db.QueryContext(ctx, q, f, t, deviceID)
	if err != nil {
		return nil, fmt.Errorf("evidence reports: %w", err)
	}
	defer rows.Close()
	var out []store.Report
	for rows.Next() {
		var r store.Report
		var epoch, seq, dropped, total, received, collected, observed, feedSerial int64
		var sent, results string
		var st, hash, prev, kid, sig []byte
		if err := rows.Scan(&r.DeviceID, &epoch, &seq, &received, &collected, &sent, &observed, &r.ClockSuspect, &r.ContentHash,
			&r.AgentVersion, &r.PolicyName, &r.PolicyVersion, &dropped, &total, &r.Facts, &results, &st, &hash, &prev, &kid, &sig, &feedSerial); err != nil {
			return nil, fmt.Errorf("evidence reports: %w", err)
		}
		r.Epoch, r.Sequence, r.DroppedReports, r.DroppedTotal, r.FeedSerial = uint64(epoch), uint64(seq), uint64(dropped), uint64(total), uint64(feedSerial)
		r.ReceivedAt, r.CollectedAt, r.ObservedAt = fromNanos(received), fromNanos(collected), fromNanos(observed)
		if t, err := time.Parse(time.RFC3339Nano, sent); err == nil {
			r.CollectedAt = t.UTC()
		}
		if err := json.Unmarshal([]byte(results), &r.Results); err != nil {
			return nil, fmt.Errorf("evidence reports: decode results: %w", err)
		}
		if hash != nil {
			r.Seal = &store.ReportSeal{Statement: st, Hash: hash, PrevHash: prev, KeyID: kid, Signature: sig}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ChainGaps implements store.EvidenceStore.
func (s *Store) ChainGaps(ctx context.Context, deviceID string) ([]store.ChainGap, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT epoch, after_sequence, before_sequence, dropped, recorded_at FROM chain_gaps
		WHERE device_id = ? ORDER BY epoch, after_sequence`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("chain gaps: %w", err)
	}
	defer rows.Close()
	var out []store.ChainGap
	for rows.Next() {
		var e, after, before, dropped, at int64
		if err := rows.Scan(&e, &after, &before, &dropped, &at); err != nil {
			return nil, fmt.Errorf("chain gaps: %w", err)
		}
		out = append(out, store.ChainGap{DeviceID: deviceID, Epoch: uint64(e), After: uint64(after), Before: uint64(before), Dropped: uint64(dropped), RecordedAt: fromNanos(at)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chain gaps: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	drops, err := s.db.QueryContext(ctx, `SELECT epoch, coalesce(max(seal_dropped), 0), min(sequence) FROM reports WHERE device_id = ? GROUP BY epoch`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("chain gaps: %w", err)
	}
	defer drops.Close()
	e := map[uint64]store.EpochDrops{}
	for drops.Next() {
		var ep, total, first int64
		if err := drops.Scan(&ep, &total, &first); err != nil {
			return nil, fmt.Errorf("chain gaps: %w", err)
		}
		e[uint64(ep)] = store.EpochDrops{Total: uint64(total), FirstSeq: uint64(first)}
	}
	if err := drops.Err(); err != nil {
		return nil, fmt.Errorf("chain gaps: %w", err)
	}
	store.AttributeDrops(out, e)
	return out, rows.Err()
}

// ChainForks implements store.EvidenceStore.
func (s *Store) ChainForks(ctx context.Context, deviceID string) ([]store.ChainFork, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT epoch, sequence, prev_hash, hash, other, other_sequence, recorded_at FROM chain_forks
		WHERE device_id = ? ORDER BY epoch, sequence, other_sequence`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("chain forks: %w", err)
	}
	defer rows.Close()
	var out []store.ChainFork
	for rows.Next() {
		f := store.ChainFork{DeviceID: deviceID}
		var e, seq, other, at int64
		if err := rows.Scan(&e, &seq, &f.PrevHash, &f.Hash, &f.Other, &other, &at); err != nil {
			return nil, fmt.Errorf("chain forks: %w", err)
		}
		f.Epoch, f.Sequence, f.OtherSequence, f.RecordedAt = uint64(e), uint64(seq), uint64(other), fromNanos(at)
		out = append(out, f)
	}
	return out, rows.Err()
}
