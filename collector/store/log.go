package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The evidence log (docs/evidence.md, "The log"): a Merkle log (RFC 6962)
// of every sealed report, its leaf evidence.LeafHash of the report's
// statement, and the signed checkpoints of its growth.

// LogLeaf is a report in the log.
type LogLeaf struct {
	Index    uint64
	DeviceID string
	Epoch    uint64
	Sequence uint64
	LeafHash []byte
}

// LogCheckpoint is a signed size and root of the log.
type LogCheckpoint struct {
	Size      uint64
	Root      []byte
	At        time.Time
	Signature []byte
}

// SignCheckpoint signs the log of size leaves whose RFC 6962 root is
// root: it returns the checkpoint to store.
type SignCheckpoint func(size uint64, root []byte) (LogCheckpoint, error)

// LogRange is what a store keeps to grow the log without reading its
// leaves: the compact range of the whole log (the hashes of the perfect
// subtrees it is made of, at most one per bit of its size).
type LogRange struct {
	Size   uint64
	Hashes [][]byte
}

var logRanges = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Grow appends leaf hashes to the log r stands for and returns the grown
// range and its root.
func (r LogRange) Grow(leaves [][]byte) (LogRange, []byte, error) {
	cr, err := logRanges.NewRange(0, r.Size, r.Hashes)
	if err != nil {
		return LogRange{}, nil, fmt.Errorf("log range: %w", err)
	}
	for _, h := range leaves {
		if err := cr.Append(h, nil); err != nil {
			return LogRange{}, nil, fmt.Errorf("log range: %w", err)
		}
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if cr.End() > 0 {
		if root, err = cr.GetRootHash(nil); err != nil {
			return LogRange{}, nil, fmt.Errorf("log range: %w", err)
		}
	}
	return LogRange{Size: cr.End(), Hashes: cr.Hashes()}, root, nil
}

// EncodeHashes and DecodeHashes keep a range's hashes in one column.
func (r LogRange) EncodeHashes() []byte { return bytes.Join(r.Hashes, nil) }

// DecodeLogRange is the range of size whose hashes EncodeHashes wrote.
func DecodeLogRange(size uint64, b []byte) (LogRange, error) {
	if len(b)%32 != 0 {
		return LogRange{}, fmt.Errorf("log range: %d bytes of hashes", len(b))
	}
	r := LogRange{Size: size}
	for i := 0; i < len(b); i += 32 {
		r.Hashes = append(r.Hashes, b[i:i+32:i+32])
	}
	return r, nil
}

// LogStore keeps the evidence log; both backends implement it
// (storetest.RunLogConformance).
type LogStore interface {
	// AppendLog appends, in one transaction, every sealed report not yet
	// in the log, in (received_at, device_id, epoch, sequence) order, then
	// has sign sign the grown log and stores its checkpoint. Its cost is
	// that of the reports appended, not of the log: the reports not yet
	// logged are marked (reports.logged, a partial index) and the root
	// grows from the stored compact range (LogRange, table log_range). It returns
	// the leaves appended; with none it stores no checkpoint and does not
	// call sign. On PostgreSQL collectors sharing the database append one
	// at a time (pg_advisory_xact_lock), so they agree on the order.
	AppendLog(ctx context.Context, sign SignCheckpoint) (appended int, err error)
	// LogCheckpoint returns the newest checkpoint (ErrNotFound before the
	// first).
	LogCheckpoint(ctx context.Context) (LogCheckpoint, error)
	// LogLeaves returns the first size leaves of the log, by index (a
	// leaf's place in the tree is its place in this list).
	LogLeaves(ctx context.Context, size uint64) ([]LogLeaf, error)
}

// LogTx is a backend's transaction as AppendLogIn uses it: each method
// is one statement (or batch) in the backend's SQL.
type LogTx interface {
	// Unlogged lists the sealed reports not yet in the log, in log order
	// (received_at, device_id, epoch, sequence), with their leaf hashes.
	Unlogged(ctx context.Context) ([]LogLeaf, error)
	// Range returns the stored compact range (ok false: none stored).
	Range(ctx context.Context) (r LogRange, ok bool, err error)
	// LeafHashes lists every leaf hash by index.
	LeafHashes(ctx context.Context) ([][]byte, error)
	// AddLeaves stores leaves after the highest index and marks their
	// reports logged.
	AddLeaves(ctx context.Context, leaves []LogLeaf) error
	// Save stores the grown range and its checkpoint.
	Save(ctx context.Context, r LogRange, cp LogCheckpoint) error
}

// AppendLogIn is AppendLog in the backend's transaction tx, one
// algorithm for both backends: the unlogged reports are appended, the
// root grows from the stored range (built again from the leaves when it
// is missing), sign signs it, and range and checkpoint are stored.
func AppendLogIn(ctx context.Context, tx LogTx, sign SignCheckpoint) (int, error) {
	add, err := tx.Unlogged(ctx)
	if err != nil || len(add) == 0 {
		return 0, err
	}
	r, ok, err := tx.Range(ctx)
	if err != nil {
		return 0, err
	}
	if !ok {
		all, err := tx.LeafHashes(ctx)
		if err != nil {
			return 0, err
		}
		if r, _, err = (LogRange{}).Grow(all); err != nil {
			return 0, err
		}
	}
	if err := tx.AddLeaves(ctx, add); err != nil {
		return 0, err
	}
	hashes := make([][]byte, len(add))
	for i, l := range add {
		hashes[i] = l.LeafHash
	}
	grown, root, err := r.Grow(hashes)
	if err != nil {
		return 0, err
	}
	cp, err := sign(grown.Size, root)
	if err != nil {
		return 0, err
	}
	if cp.Size != grown.Size {
		return 0, fmt.Errorf("checkpoint of size %d for %d leaves", cp.Size, grown.Size)
	}
	if err := tx.Save(ctx, grown, cp); err != nil {
		return 0, err
	}
	return len(add), nil
}
