package store

import (
	"context"
	"sort"
	"time"
)

// EventLog is the collector's outbox for webhooks and the SIEM stream
// (package events, docs/integrations.md): events are appended with
// increasing ids, and every consumer keeps a named cursor, the id of the
// last event it has handled, in the same store. A queued event is thus
// in the database, not in a process's memory: a restart resumes after
// the cursor, and the CLI (a device revoke) adds events a running
// collector then delivers. The delivery log records every attempt.
type EventLog interface {
	// AddEvent appends one event; the id it returns is above every
	// event's before it.
	AddEvent(ctx context.Context, e Event) (int64, error)
	// AddEvents appends events and moves the cursor name from old to next
	// in one transaction (old < 0: the cursor must not exist yet). When
	// the cursor is not at old (another collector on the store moved it
	// first) nothing is written and moved is false.
	AddEvents(ctx context.Context, events []Event, cursor string, old, next int64) (moved bool, err error)
	// EventsAfter returns at most limit events with ids above after, by id.
	EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error)
	// LastEventID is the highest event id there has been (0 for none).
	LastEventID(ctx context.Context) (int64, error)
	// TransitionsAfter returns at most limit transitions (verdict
	// changes of any device) with ids above after, by id.
	TransitionsAfter(ctx context.Context, after int64, limit int) ([]TransitionEntry, error)
	// LastTransitionID is the highest transition id (0 for none).
	LastTransitionID(ctx context.Context) (int64, error)
	// Cursor returns the named cursor; ok is false when it was never set.
	Cursor(ctx context.Context, name string) (value int64, ok bool, err error)
	// MoveCursor moves the cursor from old to next (old < 0: creates it);
	// moved is false, and nothing changes, when it is not at old.
	MoveCursor(ctx context.Context, name string, old, next int64) (moved bool, err error)
	// AddDelivery appends an attempt to the delivery log.
	AddDelivery(ctx context.Context, d Delivery) error
	// Deliveries returns the delivery log, newest first, at most limit
	// (0: all).
	Deliveries(ctx context.Context, limit int) ([]Delivery, error)
	// PassedDeadlines lists the rule states (of non-revoked devices)
	// whose deadline, failing_since plus the (group, rule)'s grace, is
	// after from and at or before to, oldest deadline first, at most
	// limit: the rules that became overdue in that window.
	PassedDeadlines(ctx context.Context, rules []DeadlineRule, from, to time.Time, limit int) ([]Overdue, error)
	// PruneEvents deletes the events recorded, and the delivery log
	// entries made, before before and returns how many rows went.
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
}

// GroupCounter counts devices per group and status from the maintained
// aggregates (as FleetCounts does for the fleet), for /metrics.
type GroupCounter interface {
	// GroupCounts is FleetCounts per group that has devices.
	GroupCounts(ctx context.Context, now time.Time, staleAfter time.Duration) (map[string]FleetCounts, error)
}

// Event is one entry of the outbox. Payload is its JSON object, as
// webhooks and the stream send it (package events builds it).
type Event struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Type     string    `json:"type"`
	DeviceID string    `json:"device_id,omitempty"`
	Payload  []byte    `json:"-"`
	// RecordedAt is when it was written to the outbox (zero: At), what
	// pruning goes by.
	RecordedAt time.Time `json:"recorded_at"`
}

// Recorded is e.RecordedAt, or e.At when that is zero.
func (e Event) Recorded() time.Time {
	if e.RecordedAt.IsZero() {
		return e.At
	}
	return e.RecordedAt
}

// TransitionEntry is a Transition with its id in the store.
type TransitionEntry struct {
	ID int64 `json:"id"`
	Transition
}

// Delivery is one attempt at delivering an event to a sink.
type Delivery struct {
	ID        int64     `json:"id"`
	EventID   int64     `json:"event_id"`
	EventType string    `json:"event_type"`
	Sink      string    `json:"sink"`
	URL       string    `json:"url"`
	Attempt   int       `json:"attempt"`
	At        time.Time `json:"at"`
	// Status is the HTTP status of the answer (0: none, e.g. refused).
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	// Outcome is DeliveryDelivered, DeliveryRetry or DeliveryFailed.
	Outcome  string        `json:"outcome"`
	Duration time.Duration `json:"duration_ns"`
}

// Delivery outcomes.
const (
	// DeliveryDelivered: the receiver answered 2xx.
	DeliveryDelivered = "delivered"
	// DeliveryRetry: the attempt failed; another follows after a backoff.
	DeliveryRetry = "retry"
	// DeliveryFailed: the last attempt failed; the event was given up.
	DeliveryFailed = "failed"
)

// SortOverdue orders overdue rule states by deadline, then device and
// rule, as PassedDeadlines returns them.
func SortOverdue(o []Overdue) {
	sort.Slice(o, func(i, j int) bool {
		if !o[i].Deadline.Equal(o[j].Deadline) {
			return o[i].Deadline.Before(o[j].Deadline)
		}
		if o[i].DeviceID != o[j].DeviceID {
			return o[i].DeviceID < o[j].DeviceID
		}
		return o[i].RuleID < o[j].RuleID
	})
}
