package store

import "testing"

// The agent's outbox drops older queued reports after later ones were
// sealed, so a gap's drops are counted only by reports after it; the
// epoch's latest count explains them, oldest missing sequences first.
func TestAttributeDrops(t *testing.T) {
	gaps := []ChainGap{
		{Epoch: 1, After: 1, Before: 6, Dropped: 2}, // 4 missing, 2 counted when 6 was sealed
		{Epoch: 1, After: 7, Before: 10},            // 2 missing
		{Epoch: 2, After: 3, Before: 5},             // 1 missing, epoch 2 said nothing
		{Epoch: 3, After: 2, Before: 9},             // 6 missing
	}
	AttributeDrops(gaps, map[uint64]EpochDrops{
		1: {Total: 5, FirstSeq: 1},
		2: {Total: 0, FirstSeq: 1},
		3: {Total: 4, FirstSeq: 2}, // sequence 1 missing before the first stored: it takes one drop
	})
	want := []uint64{4, 1, 0, 3}
	for i, g := range gaps {
		if g.Dropped != want[i] {
			t.Errorf("gap %d (epoch %d, %d…%d): dropped %d, want %d", i, g.Epoch, g.After, g.Before, g.Dropped, want[i])
		}
	}
	// A count recorded higher than the budget allows stays (it was the
	// agent's word when recorded).
	g := []ChainGap{{Epoch: 1, After: 1, Before: 4, Dropped: 2}}
	AttributeDrops(g, map[uint64]EpochDrops{1: {Total: 1, FirstSeq: 1}})
	if g[0].Dropped != 2 {
		t.Errorf("recorded count lowered to %d", g[0].Dropped)
	}
}
