package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
)

// Chains of sealed reports (docs/evidence.md, "Chains"), as in the SQLite
// store: the seal is kept with its report, and SaveReport records the
// gaps and forks a sealed report makes (store.Chain). The chain's reads
// join the report's reads under its device's row lock; its writes join
// the report's writes.

// sealArgs are the seal columns of the report's INSERT (all NULL for
// none).
func sealArgs(seal *store.ReportSeal) []any {
	if seal == nil {
		return []any{nil, nil, nil, nil, nil, nil}
	}
	var prev any
	if len(seal.PrevHash) > 0 {
		prev = seal.PrevHash
	}
	return []any{seal.Statement, seal.Hash, prev, seal.KeyID, seal.Signature, satInt64(store.SealedDropped(seal.Statement))}
}

// chainReads is what queueChainReads reads for a sealed report.
type chainReads struct {
	n store.ChainNeighbours
}

func scanLinks(rows pgx.Rows) ([]store.ChainLink, error) {
	var out []store.ChainLink
	for rows.Next() {
		var seq int64
		var dropped *int64
		var l store.ChainLink
		if err := rows.Scan(&seq, &l.Hash, &l.PrevHash, &dropped); err != nil {
			return nil, err
		}
		l.Sequence = uint64(seq)
		if dropped != nil && *dropped > 0 {
			l.Dropped = uint64(*dropped)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// queueChainReads queues into rb the reads of the sealed report r's
// chain, into cr.
func queueChainReads(rb *pgx.Batch, r store.Report, cr *chainReads) {
	e, seq := int64(r.Epoch), int64(r.Sequence)
	one := func(dst **store.ChainLink) func(pgx.Rows) error {
		return func(rows pgx.Rows) error {
			ls, err := scanLinks(rows)
			if err == nil && len(ls) > 0 {
				*dst = &ls[0]
			}
			return err
		}
	}
	rb.Queue(`SELECT sequence, seal_hash, seal_prev_hash, seal_dropped FROM reports
		WHERE device_id = $1 AND epoch = $2 AND sequence < $3 AND seal_hash IS NOT NULL ORDER BY sequence DESC LIMIT 1`, r.DeviceID, e, seq).
		Query(one(&cr.n.Prev))
	rb.Queue(`SELECT sequence, seal_hash, seal_prev_hash, seal_dropped FROM reports
		WHERE device_id = $1 AND epoch = $2 AND sequence > $3 AND seal_hash IS NOT NULL ORDER BY sequence LIMIT 1`, r.DeviceID, e, seq).
		Query(one(&cr.n.Next))
	if len(r.Seal.PrevHash) > 0 {
		rb.Queue(`SELECT sequence, seal_hash, seal_prev_hash, seal_dropped FROM reports
			WHERE device_id = $1 AND epoch = $2 AND seal_prev_hash = $3 AND sequence <> $4`, r.DeviceID, e, r.Seal.PrevHash, seq).
			Query(func(rows pgx.Rows) error {
				var err error
				cr.n.Claimants, err = scanLinks(rows)
				return err
			})
	}
	rb.Queue(`SELECT after_sequence, before_sequence, dropped, recorded_at FROM chain_gaps
		WHERE device_id = $1 AND epoch = $2 AND after_sequence < $3 AND before_sequence > $3 ORDER BY after_sequence DESC LIMIT 1`, r.DeviceID, e, seq).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var after, before, dropped, at int64
				if err := rows.Scan(&after, &before, &dropped, &at); err != nil {
					return err
				}
				cr.n.Gap = &store.ChainGap{DeviceID: r.DeviceID, Epoch: r.Epoch, After: uint64(after), Before: uint64(before), Dropped: uint64(dropped), RecordedAt: fromNanos(at)}
			}
			return rows.Err()
		})
}

// queueChainWrites queues into w the gaps and forks the sealed report r
// makes (store.Chain) from what queueChainReads read.
func queueChainWrites(w *pgx.Batch, r store.Report, cr *chainReads) {
	e := int64(r.Epoch)
	link := store.ChainLink{Sequence: r.Sequence, Hash: r.Seal.Hash, PrevHash: r.Seal.PrevHash, Dropped: store.SealedDropped(r.Seal.Statement)}
	c := store.Chain(r.DeviceID, r.Epoch, link, cr.n, r.ReceivedAt)
	if c.DeleteGap != nil {
		w.Queue(`DELETE FROM chain_gaps WHERE device_id = $1 AND epoch = $2 AND after_sequence = $3`, r.DeviceID, e, satInt64(*c.DeleteGap))
	}
	for _, g := range c.Gaps {
		w.Queue(`INSERT INTO chain_gaps (device_id, epoch, after_sequence, before_sequence, dropped, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (device_id, epoch, after_sequence) DO UPDATE SET before_sequence = excluded.before_sequence, dropped = excluded.dropped, recorded_at = excluded.recorded_at`,
			r.DeviceID, e, satInt64(g.After), satInt64(g.Before), satInt64(g.Dropped), nanos(g.RecordedAt))
	}
	for _, f := range c.Forks {
		w.Queue(`INSERT INTO chain_forks (device_id, epoch, sequence, prev_hash, hash, other, other_sequence, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT DO NOTHING`,
			r.DeviceID, e, satInt64(f.Sequence), orEmpty(f.PrevHash), orEmpty(f.Hash), orEmpty(f.Other), satInt64(f.OtherSequence), nanos(f.RecordedAt))
	}
}

// orEmpty is b, never NULL.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

var _ store.Chains = (*Store)(nil)
var _ store.SealedFrom = (*Store)(nil)
var _ store.EvidenceStore = (*Store)(nil)

// FirstSealed implements store.SealedFrom.
func (s *Store) FirstSealed(ctx context.Context, deviceID string, epoch uint64) (uint64, error) {
	var first *int64
	err := s.pool.QueryRow(ctx, `SELECT min(sequence) FROM reports WHERE device_id = $1 AND epoch = $2 AND seal_hash IS NOT NULL`, deviceID, satInt64(epoch)).Scan(&first)
	if err != nil {
		return 0, fmt.Errorf("first sealed report: %w", err)
	}
	if first == nil || *first < 0 {
		return 0, nil
	}
	return uint64(*first), nil
}

// SealHash implements store.SealedFrom.
func (s *Store) SealHash(ctx context.Context, deviceID string, epoch, sequence uint64) ([]byte, error) {
	var h []byte
	err := s.pool.QueryRow(ctx, `SELECT seal_hash FROM reports WHERE device_id = $1 AND epoch = $2 AND sequence = $3`,
		deviceID, satInt64(epoch), satInt64(sequence)).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("seal hash: %w", err)
	}
	return h, nil
}

// EvidenceReports implements store.EvidenceStore.
func (s *Store) EvidenceReports(ctx context.Context, deviceID string, from, to time.Time) ([]store.Report, error) {
	sel := `SELECT p.device_id, p.epoch, p.sequence, p.received_at, p.collected_at, p.collected_at_sent, p.observed_at, p.clock_suspect, p.content_hash,
		p.agent_version, p.policy_name, p.policy_version, p.dropped_reports, p.dropped_total, p.facts, p.results, p.facts_epoch IS NOT NULL, h.facts, h.results,
		p.seal_statement, p.seal_hash, p.seal_prev_hash, p.seal_key_id, p.seal_signature, p.feed_serial
		FROM reports p` + heartbeatJoin + ` WHERE p.device_id = $1`
	q := `(` + sel + ` AND p.observed_at < $2 ORDER BY p.observed_at DESC, p.epoch DESC, p.sequence DESC LIMIT 1)
		UNION ALL (` + sel + ` AND p.observed_at >= $2 AND p.observed_at < $3)
		UNION ALL (` + sel + ` AND p.observed_at >= $3 ORDER BY p.observed_at, p.epoch, p.sequence LIMIT 1)
		ORDER BY 2, 3`
	rows, err := s.pool.Query(ctx, q, deviceID, nanos(from), nanos(to))
	if err != nil {
		return nil, fmt.Errorf("evidence reports: %w", err)
	}
	defer rows.Close()
	var out []store.Report
	for rows.Next() {
		var r store.Report
		var epoch, seq, dropped, total, received, collected, observed, suspect, feedSerial int64
		var sent, results string
		var ref bool
		var hfacts []byte
		var hresults *string
		var st, hash, prev, kid, sig []byte
		if err := rows.Scan(&r.DeviceID, &epoch, &seq, &received, &collected, &sent, &observed, &suspect, &r.ContentHash,
			&r.AgentVersion, &r.PolicyName, &r.PolicyVersion, &dropped, &total, &r.Facts, &results, &ref, &hfacts, &hresults,
			&st, &hash, &prev, &kid, &sig, &feedSerial); err != nil {
			return nil, fmt.Errorf("evidence reports: %w", err)
		}
		r.Epoch, r.Sequence, r.DroppedReports, r.DroppedTotal, r.ClockSuspect, r.FeedSerial = uint64(epoch), uint64(seq), uint64(dropped), uint64(total), suspect != 0, uint64(feedSerial)
		r.ReceivedAt, r.CollectedAt, r.ObservedAt = fromNanos(received), fromNanos(collected), fromNanos(observed)
		if t, err := time.Parse(time.RFC3339Nano, sent); err == nil {
			r.CollectedAt = t.UTC()
		}
		r.Facts, results = whole(ref, r.Facts, results, hfacts, hresults)
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
	rows, err := s.pool.Query(ctx, `SELECT epoch, after_sequence, before_sequence, dropped, recorded_at FROM chain_gaps
		WHERE device_id = $1 ORDER BY epoch, after_sequence`, deviceID)
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
	drops, err := s.pool.Query(ctx, `SELECT epoch, coalesce(max(seal_dropped), 0), min(sequence) FROM reports WHERE device_id = $1 GROUP BY epoch`, deviceID)
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
	rows, err := s.pool.Query(ctx, `SELECT epoch, sequence, prev_hash, hash, other, other_sequence, recorded_at FROM chain_forks
		WHERE device_id = $1 ORDER BY epoch, sequence, other_sequence`, deviceID)
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
