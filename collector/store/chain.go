package store

import (
	"bytes"
	"context"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Chains (docs/evidence.md, "Chains"): SaveReport compares a sealed
// report with the stored sealed reports around it in its epoch and
// records, in the same write, the gaps and forks they make. Both
// backends compute them with Chain, from what they read under the
// device's write lock.

// SealedFrom is implemented by stores that keep sealed reports: the
// collector asks it before it stores an unsealed report, or a sealed
// one chained to nothing, in an epoch that may already have sealed ones.
type SealedFrom interface {
	// FirstSealed is the lowest sequence of a sealed report stored in
	// the device's epoch (0: none).
	FirstSealed(ctx context.Context, deviceID string, epoch uint64) (uint64, error)
	// SealHash is the statement hash of the device's stored report at
	// (epoch, sequence): nil when none is stored or it is unsealed. The
	// collector fills a compact report's prev_hash with it
	// (ReportSeal.prev_as_base).
	SealHash(ctx context.Context, deviceID string, epoch, sequence uint64) ([]byte, error)
}

// Chains is the part of EvidenceStore that reads what SaveReport keeps
// of the chains.
type Chains interface {
	EvidenceReports(ctx context.Context, deviceID string, from, to time.Time) ([]Report, error)
	ChainGaps(ctx context.Context, deviceID string) ([]ChainGap, error)
	ChainForks(ctx context.Context, deviceID string) ([]ChainFork, error)
}

// ChainLink is a stored sealed report as the chain sees it: its
// sequence, statement hash, the hash it chains to and the drop count it
// sealed.
type ChainLink struct {
	Sequence       uint64
	Hash, PrevHash []byte
	Dropped        uint64
}

// ChainNeighbours is what a backend reads, in the epoch of the report
// being stored, for Chain: the stored sealed reports just below and just
// above its sequence (nil: none), the gap its sequence falls in (nil:
// none) and the other stored reports that chain to the same hash.
type ChainNeighbours struct {
	Prev, Next *ChainLink
	Gap        *ChainGap
	Claimants  []ChainLink
}

// ChainChange is what storing a sealed report writes: the gap it falls
// in is replaced (DeleteGap, its After) by the gaps left on either side
// of it, and the forks it makes are added (a fork already recorded for
// the same sequence and other sequence is kept as it was).
type ChainChange struct {
	DeleteGap *uint64
	Gaps      []ChainGap
	Forks     []ChainFork
}

// Chain is the change that storing the sealed report r (at seq, sealed
// as link) makes to its epoch's chain, given its neighbours n. at is
// when it is recorded (the report's receipt).
//
// Gaps are the sequence jumps between consecutive stored sealed reports:
// a report past the last one opens a gap after it, one that falls into
// a gap shrinks or splits it (the parts keep the gap's recorded_at).
// Dropped is the growth of the sealed drop count across the gap, at most
// its size. Forks: another stored report claims the same predecessor, or
// the stored report at seq-1 is not the predecessor r names, or the
// stored report at seq+1 does not name r.
func Chain(deviceID string, epoch uint64, link ChainLink, n ChainNeighbours, at time.Time) ChainChange {
	var c ChainChange
	gapAt := at
	if g := n.Gap; g != nil {
		after := g.After
		c.DeleteGap, gapAt = &after, g.RecordedAt
	}
	if p := n.Prev; p != nil && link.Sequence-p.Sequence > 1 {
		c.Gaps = append(c.Gaps, gapBetween(deviceID, epoch, *p, link, gapAt))
	}
	if x := n.Next; x != nil && x.Sequence-link.Sequence > 1 {
		c.Gaps = append(c.Gaps, gapBetween(deviceID, epoch, link, *x, gapAt))
	}
	fork := func(of ChainLink, other ChainLink) {
		c.Forks = append(c.Forks, ChainFork{DeviceID: deviceID, Epoch: epoch, Sequence: of.Sequence, PrevHash: of.PrevHash, Hash: of.Hash,
			Other: other.Hash, OtherSequence: other.Sequence, RecordedAt: at})
	}
	if len(link.PrevHash) > 0 {
		for _, o := range n.Claimants {
			if o.Sequence != link.Sequence && !bytes.Equal(o.Hash, link.Hash) {
				fork(link, o)
			}
		}
	}
	if p := n.Prev; p != nil && p.Sequence == link.Sequence-1 && !bytes.Equal(link.PrevHash, p.Hash) && !claims(n.Claimants, p.Sequence) {
		fork(link, *p)
	}
	if x := n.Next; x != nil && x.Sequence == link.Sequence+1 && !bytes.Equal(x.PrevHash, link.Hash) {
		fork(*x, link)
	}
	return c
}

// claims reports whether a fork against the report at seq is already
// recorded from the claimants.
func claims(claimants []ChainLink, seq uint64) bool {
	for _, o := range claimants {
		if o.Sequence == seq {
			return true
		}
	}
	return false
}

func gapBetween(deviceID string, epoch uint64, lo, hi ChainLink, at time.Time) ChainGap {
	g := ChainGap{DeviceID: deviceID, Epoch: epoch, After: lo.Sequence, Before: hi.Sequence, RecordedAt: at}
	if hi.Dropped > lo.Dropped {
		g.Dropped = min(hi.Dropped-lo.Dropped, g.Missing())
	}
	return g
}

// SealedDropped is the dropped_total (field 10) of an encoded
// wardv1.ReportStatement: the agent's drop count the seal signs. A
// statement that does not parse counts 0.
func SealedDropped(statement []byte) uint64 {
	var dropped uint64
	b := statement
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == 10 && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0
			}
			dropped, b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0
		}
		b = b[m:]
	}
	return dropped
}

// EpochDrops is what the agent has signed, in one epoch, about reports it
// dropped: the largest dropped_total its seals carry (the unsigned count
// a delivery carries is not evidence, ward-verify could not check it)
// and the lowest sequence stored.
type EpochDrops struct {
	Total    uint64
	FirstSeq uint64
}

// AttributeDrops sets each gap's Dropped from the agent's latest count
// of the epoch, e[gap.Epoch]. A seal's drop count is fixed when its report
// is queued, while the outbox drops older queued reports later, so a
// gap's drops are often counted only by reports after it: the count a
// gap had when it was recorded (the growth across it) is a lower bound.
// Every dropped report is a sequence the collector never stored, so the
// epoch's count is spent on the missing sequences oldest first: those
// before the first stored report, then each gap in order, each at most its
// size. gaps must be sorted by epoch and After.
func AttributeDrops(gaps []ChainGap, e map[uint64]EpochDrops) {
	budget := map[uint64]uint64{}
	for i := range gaps {
		g := &gaps[i]
		d, ok := e[g.Epoch]
		if !ok {
			continue
		}
		left, seen := budget[g.Epoch]
		if !seen {
			left = d.Total
			if d.FirstSeq > 1 {
				left -= min(left, d.FirstSeq-1)
			}
		}
		n := min(g.Missing(), left)
		g.Dropped = max(g.Dropped, n)
		budget[g.Epoch] = left - n
	}
}
