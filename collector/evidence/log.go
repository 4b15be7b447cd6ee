package evidence

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/wardhq/ward/collector/store"
	ev "github.com/wardhq/ward/evidence"
)

// ErrLog is wrapped by Build's errors about the evidence log: a report
// not in it, leaves that do not give the checkpoint's root, a checkpoint
// the log key does not verify, or an earlier checkpoint larger than the
// log.
var ErrLog = errors.New("evidence log")

// DefaultLogInterval is how often `serve` appends to the log.
const DefaultLogInterval = time.Minute

// Log is the collector's Merkle log of sealed reports (docs/evidence.md,
// "The log"): the store that keeps it and the key that signs its
// checkpoints (pki.Authority.LogKey).
type Log struct {
	Store store.LogStore
	Key   *ecdsa.PrivateKey
	Cert  *x509.Certificate
	// Now is the checkpoints' time (default time.Now).
	Now func() time.Time
}

// LogFor returns the log of st signed by key and cert, or nil when st
// keeps no log.
func LogFor(st any, key *ecdsa.PrivateKey, cert *x509.Certificate) *Log {
	ls, ok := st.(store.LogStore)
	if !ok {
		return nil
	}
	return &Log{Store: ls, Key: key, Cert: cert}
}

// Sequence appends the sealed reports not yet in the log and signs a
// checkpoint of the grown log (store.LogStore.AppendLog); it returns how
// many it appended. Its cost is that of the reports appended (the store
// grows the root from its compact range).
func (l *Log) Sequence(ctx context.Context) (int, error) {
	return l.Store.AppendLog(ctx, func(size uint64, root []byte) (store.LogCheckpoint, error) {
		now := time.Now
		if l.Now != nil {
			now = l.Now
		}
		cp := store.LogCheckpoint{Size: size, Root: root, At: now().UTC()}
		sum := sha256.Sum256(ev.CheckpointText(cp.Size, cp.Root, cp.At))
		sig, err := ecdsa.SignASN1(rand.Reader, l.Key, sum[:])
		if err != nil {
			return store.LogCheckpoint{}, fmt.Errorf("sign checkpoint: %w", err)
		}
		cp.Signature = sig
		return cp, nil
	})
}

// Run sequences every interval until ctx ends, logging what it appended
// (debug) and its errors (error); it returns when ctx is done.
func (l *Log) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, err := l.Sequence(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("evidence log append failed", "err", err)
		case n > 0:
			log.Debug("evidence log appended", "reports", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// tree is the log's Merkle tree held in memory: every perfect subtree's
// hash by node id, and the root.
type tree struct {
	size  uint64
	root  []byte
	nodes map[compact.NodeID][]byte
}

var rangeFactory = compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

func newTree(leaves [][]byte) (*tree, error) {
	t := &tree{size: uint64(len(leaves)), nodes: make(map[compact.NodeID][]byte, 2*len(leaves))}
	visit := func(id compact.NodeID, h []byte) { t.nodes[id] = h }
	r := rangeFactory.NewEmptyRange(0)
	for _, h := range leaves {
		if err := r.Append(h, visit); err != nil {
			return nil, err
		}
	}
	if len(leaves) == 0 {
		t.root = rfc6962.DefaultHasher.EmptyRoot()
		return t, nil
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	t.root = root
	return t, nil
}

// hashes fetches and rehashes the nodes of a proof.
func (t *tree) hashes(n proof.Nodes) ([][]byte, error) {
	hs := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, ok := t.nodes[id]
		if !ok {
			return nil, fmt.Errorf("no node %+v in a tree of %d", id, t.size)
		}
		hs[i] = h
	}
	return n.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
}

// logPart is the file's log: f's reports proven leaves of the newest
// checkpoint, after appending what is not yet in the log, and a
// consistency proof from `from` when it is set; nil while the log is
// empty.
func logPart(ctx context.Context, l *Log, f *ev.File, from *ev.Checkpoint) (*ev.Log, error) {
	if _, err := l.Sequence(ctx); err != nil {
		return nil, err
	}
	cp, err := l.Store.LogCheckpoint(ctx)
	if errors.Is(err, store.ErrNotFound) {
		// Nothing sealed yet: no checkpoint to carry (the file then
		// has no report either).
		if from != nil {
			return nil, fmt.Errorf("%w: the log is empty, it cannot extend an earlier checkpoint", ErrLog)
		}
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	leaves, err := l.Store.LogLeaves(ctx, cp.Size)
	if err != nil {
		return nil, err
	}
	if uint64(len(leaves)) != cp.Size {
		return nil, fmt.Errorf("%w: %d leaves for a checkpoint of %d", ErrLog, len(leaves), cp.Size)
	}
	hs := make([][]byte, len(leaves))
	at := make(map[string]uint64, len(leaves))
	for i, lf := range leaves {
		hs[i] = lf.LeafHash
		at[string(lf.LeafHash)] = uint64(i)
	}
	t, err := newTree(hs)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(t.root, cp.Root) {
		return nil, fmt.Errorf("%w: the stored leaves do not give the checkpoint's root (size %d)", ErrLog, cp.Size)
	}
	out := &ev.Log{Certificate: l.Cert.Raw, Checkpoint: ev.Checkpoint{Size: cp.Size, Root: cp.Root, At: cp.At.UTC(), Signature: cp.Signature}, Inclusions: []ev.Inclusion{}}
	if err := ev.VerifyCheckpoint(l.Cert, out.Checkpoint); err != nil {
		return nil, fmt.Errorf("%w: the log key's certificate does not verify the newest checkpoint (log.key replaced?): %v", ErrLog, err)
	}
	for di, d := range f.Devices {
		for ri, r := range d.Reports {
			idx, ok := at[string(ev.LeafHash(r.Statement))]
			if !ok {
				return nil, fmt.Errorf("%w: device %s report %d is not in the log", ErrLog, d.DeviceID, ri)
			}
			n, err := proof.Inclusion(idx, t.size)
			if err != nil {
				return nil, err
			}
			p, err := t.hashes(n)
			if err != nil {
				return nil, err
			}
			out.Inclusions = append(out.Inclusions, ev.Inclusion{Device: di, Report: ri, LeafIndex: idx, Hashes: p})
		}
	}
	if from != nil {
		if from.Size > t.size {
			return nil, fmt.Errorf("%w: the earlier checkpoint is of %d reports, the log has %d", ErrLog, from.Size, t.size)
		}
		n, err := proof.Consistency(from.Size, t.size)
		if err != nil {
			return nil, err
		}
		p, err := t.hashes(n)
		if err != nil {
			return nil, err
		}
		out.Consistency = &ev.Consistency{FromSize: from.Size, FromRoot: from.Root, Hashes: p}
	}
	return out, nil
}
