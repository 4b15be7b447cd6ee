package store

import (
	"context"
	"time"
)

// ReportState is what the collector reads about a device before it
// evaluates a report: its epoch (Epoch) and, per rule failing now, when
// it started failing (FailingSince). A store that implements
// ReportStateReader answers both in one read.
type ReportState struct {
	Epoch        Epoch
	FailingSince map[string]time.Time
	// FirstSealed is the lowest sequence of a sealed report stored in
	// the current epoch (0: none), as SealedFrom.FirstSealed.
	FirstSealed uint64
}

// ReportStateReader is implemented by stores that read a ReportState in
// one call; the collector falls back to Epoch and FailingSince.
type ReportStateReader interface {
	// ReportState returns the device's ReportState (ErrNotFound if no
	// such device).
	ReportState(ctx context.Context, deviceID string) (ReportState, error)
}
