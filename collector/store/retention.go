package store

import (
	"context"
	"time"
)

// Pruner is implemented by stores that can drop old report history
// (docs/durability.md, "Retention").
type Pruner interface {
	// PruneReports deletes the reports observed before before (their
	// ObservedAt, the evidence time), except per device its newest report
	// and the newest one by (epoch, sequence) observed before before (what
	// the state as of any later time needs), and per epoch
	// the reports LastSequence and DroppedTotal are read from.
	// Transitions and rule states are kept. It returns how many reports
	// it deleted.
	PruneReports(ctx context.Context, before time.Time) (int, error)
}
