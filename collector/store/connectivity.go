package store

import (
	"context"
	"time"
)

// Reach is whether an endpoint answered a device's round
// (wardv1.Reach): "" when the agent did not say.
type Reach string

// Reaches.
const (
	Reached     Reach = "reached"
	Unreachable Reach = "unreachable"
	NotProbed   Reach = "not_probed"
)

// Connectivity is what a device's round could reach: whether the round
// before delivered its report to the collector, and whether the OS's
// update source answered the agent's probe (docs/connectivity.md).
type Connectivity struct {
	Collector        Reach  `json:"collector,omitempty"`
	UpdateSource     Reach  `json:"update_source,omitempty"`
	UpdateSourceName string `json:"update_source_name,omitempty"`
}

// DeviceConnectivity is a device's latest Connectivity as the collector
// keeps it: At is the observed time of the report that carried it, and
// CollectorAt / UpdateSourceAt the observed time of the latest report
// that found that endpoint reached (nil: never, as far as the collector
// knows).
type DeviceConnectivity struct {
	Connectivity
	At             time.Time  `json:"at"`
	CollectorAt    *time.Time `json:"collector_reached_at,omitempty"`
	UpdateSourceAt *time.Time `json:"update_source_reached_at,omitempty"`
}

// ConnectedDeadline is when a failing rule state of a connected-grace
// rule is due: its report's time (at) plus what is left of grace after
// used (before at when more than grace is used: it fell due that much
// connected time before the report), and whether it is paused (the round found no connection, so the
// deadline is not running). A paused state is never overdue: it is
// listed apart. A state whose grace is not connected is due at
// failing_since + grace; ConnectedDeadline is only for the others.
func ConnectedDeadline(at time.Time, grace, used time.Duration, paused bool) (deadline time.Time, isPaused bool) {
	return at.Add(grace - used), paused
}

// Overdue says whether a failing rule state is past its deadline at
// now: for a connected-grace state, when it is not paused and its
// ConnectedDeadline is at or before now; for the others, when
// failing_since + grace is at or before now. No failing_since: not
// failing, not overdue.
func (st RuleState) Overdue(grace time.Duration, now time.Time) bool {
	if st.FailingSince == nil || st.Collector != Fail {
		return false
	}
	if st.GraceConnected {
		if st.DeadlinePaused {
			return false
		}
		d, _ := ConnectedDeadline(st.UpdatedAt, grace, st.GraceUsed, false)
		return !d.After(now)
	}
	return !st.FailingSince.Add(grace).After(now)
}

// Deadline is when the failing rule state is due under grace (see
// Overdue) and whether it is paused; the zero time when not failing.
func (st RuleState) Deadline(grace time.Duration) (time.Time, bool) {
	if st.FailingSince == nil || st.Collector != Fail {
		return time.Time{}, false
	}
	if st.GraceConnected {
		return ConnectedDeadline(st.UpdatedAt, grace, st.GraceUsed, st.DeadlinePaused)
	}
	return st.FailingSince.Add(grace), false
}

// Paused is a failing rule state whose connected-grace deadline is
// paused: the device's latest round found no connection. It is not
// overdue, and is listed apart (PausedDeadlines).
type Paused struct {
	DeviceID     string        `json:"device_id"`
	Hostname     string        `json:"hostname"`
	Group        string        `json:"group"`
	RuleID       string        `json:"rule_id"`
	Title        string        `json:"title"`
	FailingSince time.Time     `json:"failing_since"`
	GraceUsed    time.Duration `json:"grace_used"`
	// ReportAt is the observed time of the report that said paused.
	ReportAt time.Time `json:"report_at"`
	// NoConnectionSince is the latest time the device was known to reach
	// its collector or its update source (DeviceConnectivity), nil when
	// the collector never saw it reach either.
	NoConnectionSince *time.Time `json:"no_connection_since,omitempty"`
}

// Connectivities is what a store keeps of connected-grace deadlines
// (docs/connectivity.md); both stores implement it.
type Connectivities interface {
	// DeviceConnectivity is the device's latest Connectivity (false: its
	// agent never sent one).
	DeviceConnectivity(ctx context.Context, deviceID string) (DeviceConnectivity, bool, error)
	// PausedDeadlines lists the failing rule states of non-revoked
	// devices whose deadline is paused, oldest failing first, at most
	// limit (<= 0: all), and how many there are in all.
	PausedDeadlines(ctx context.Context, limit int) ([]Paused, int, error)
}

// LastConnected is the later of the times c found the collector or the
// update source reached; nil for never.
func (c DeviceConnectivity) LastConnected() *time.Time {
	switch {
	case c.CollectorAt == nil:
		return c.UpdateSourceAt
	case c.UpdateSourceAt == nil || c.CollectorAt.After(*c.UpdateSourceAt):
		return c.CollectorAt
	}
	return c.UpdateSourceAt
}
