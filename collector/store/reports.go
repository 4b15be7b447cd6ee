package store

import (
	"context"
	"errors"
	"time"
)

// Report identity: see docs/enrolment.md, "Report identity and clocks".
var (
	// ErrReportConflict: a different report is already stored under the
	// same (device, epoch, sequence). The agent renumbers and resends.
	ErrReportConflict = errors.New("a different report is stored under this sequence")
	// ErrSequenceRange: the sequence is 2^53 or more, or implausibly far
	// ahead of the last one stored for the device (see MaxSequenceJump).
	ErrSequenceRange = errors.New("sequence is out of range")
	// ErrEpochUnknown: the report names an epoch the collector has not
	// assigned to the device yet.
	ErrEpochUnknown = errors.New("epoch is not assigned to this device")
)

// Sequence bounds. A sequence is never 2^53 or more (so it is exact in
// every JSON reader and in every backend's integers), and is at most
// MaxSequenceJump past the highest sequence stored for the device in the
// report's epoch (in the device's whole history, when the epoch has no
// report yet). So no report can push a device's newest sequence where
// honest reports never reach it.
const (
	MaxSequence     = 1<<53 - 1
	MaxSequenceJump = 100000
)

// Epoch is one enrolment (or re-bind) of a device: the collector numbers
// them 1, 2, … per device. Devices enrolled before epochs existed are in
// epoch 0 until their next re-bind.
type Epoch struct {
	Number    uint64    `json:"epoch"`
	StartedAt time.Time `json:"started_at"`
	// EnrolledAt is when the device was first enrolled (epoch 1's start).
	EnrolledAt time.Time `json:"enrolled_at"`
}

// ReportIdentity is the part of Store that numbers enrolments and
// identifies reports by (device, epoch, sequence).
type ReportIdentity interface {
	// StartEpoch starts the device's next epoch at now and returns it
	// (ErrNotFound if no such device).
	StartEpoch(ctx context.Context, deviceID string, now time.Time) (uint64, error)
	// Epoch returns the device's current epoch (ErrNotFound if none).
	Epoch(ctx context.Context, deviceID string) (Epoch, error)
	// DroppedTotal is how many reports the device's agent dropped or
	// quarantined before they reached the collector: per epoch the largest
	// cumulative count it sent, summed over epochs. A redelivery never
	// counts a drop twice.
	DroppedTotal(ctx context.Context, deviceID string) (uint64, error)
	// LastSequence returns the highest sequence stored for the device in
	// epoch (0 if none).
	LastSequence(ctx context.Context, deviceID string, epoch uint64) (uint64, error)
}
