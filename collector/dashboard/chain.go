package dashboard

import (
	"context"
	"fmt"

	"github.com/wardhq/ward/collector/store"
)

// The device page's Chain section (docs/evidence.md, "Chains"): the gaps
// in the device's sealed reports, told apart into the reports its agent
// says it dropped and those nobody accounts for, and the forks.

// chainReader is what the Chain section reads.
type chainReader interface {
	ChainGaps(ctx context.Context, deviceID string) ([]store.ChainGap, error)
	ChainForks(ctx context.Context, deviceID string) ([]store.ChainFork, error)
}

type chainGapRow struct {
	store.ChainGap
	Missing, Unexplained uint64
	// Text names the missing sequences: "reports 2 to 4 (between 1 and 5)".
	Text string
}

type chainForkRow struct {
	store.ChainFork
	Text string
}

// chainData is the Chain section; nil when there is nothing to show.
type chainData struct {
	Gaps  []chainGapRow
	Forks []chainForkRow
	// Missing, Dropped and Unexplained total the gaps.
	Missing, Dropped, Unexplained uint64
}

// chainOf reads the device's gaps and forks (nil, nil: none, or a store
// that keeps no chains).
func chainOf(ctx context.Context, st any, deviceID string) (*chainData, error) {
	cr, ok := st.(chainReader)
	if !ok {
		return nil, nil
	}
	gaps, err := cr.ChainGaps(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	forks, err := cr.ChainForks(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	if len(gaps) == 0 && len(forks) == 0 {
		return nil, nil
	}
	d := &chainData{}
	for _, g := range gaps {
		row := chainGapRow{ChainGap: g, Missing: g.Missing(), Unexplained: g.Missing() - min(g.Dropped, g.Missing())}
		row.Text = fmt.Sprintf("report %d", g.After+1)
		if row.Missing > 1 {
			row.Text = fmt.Sprintf("reports %d to %d", g.After+1, g.Before-1)
		}
		row.Text += fmt.Sprintf(" (between %d and %d)", g.After, g.Before)
		d.Missing += row.Missing
		d.Dropped += row.Missing - row.Unexplained
		d.Unexplained += row.Unexplained
		d.Gaps = append(d.Gaps, row)
	}
	for _, f := range forks {
		text := fmt.Sprintf("report %d names predecessor %s, which report %d (%s) also claims", f.Sequence, short(f.PrevHash), f.OtherSequence, short(f.Other))
		if f.OtherSequence+1 == f.Sequence {
			text = fmt.Sprintf("report %d names predecessor %s, but the stored report %d is %s", f.Sequence, short(f.PrevHash), f.OtherSequence, short(f.Other))
		}
		d.Forks = append(d.Forks, chainForkRow{ChainFork: f, Text: text})
	}
	return d, nil
}

// short is a hash's first 8 bytes in hex, for reading.
func short(b []byte) string {
	if len(b) == 0 {
		return "(none)"
	}
	return fmt.Sprintf("%x…", b[:min(8, len(b))])
}
