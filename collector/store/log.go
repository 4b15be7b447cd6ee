package store

import (
	"context"
	"time"
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

// SignCheckpoint signs the log of leaves (their leaf hashes, by index):
// it returns the checkpoint of len(leaves) to store.
type SignCheckpoint func(leaves [][]byte) (LogCheckpoint, error)

// LogStore keeps the evidence log; both backends implement it
// (storetest.RunLogConformance).
type LogStore interface {
	// AppendLog appends, in one transaction, every sealed report not yet
	// in the log, in (received_at, device_id, epoch, sequence) order, then
	// has sign sign the grown log and stores its checkpoint. It returns
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
