package store

import "time"

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
// used, and whether it is paused (the round found no connection, so the
// deadline is not running). A paused state is never overdue: it is
// listed apart. A state whose grace is not connected is due at
// failing_since + grace; ConnectedDeadline is only for the others.
func ConnectedDeadline(at time.Time, grace, used time.Duration, paused bool) (deadline time.Time, isPaused bool) {
	left := max(grace-used, 0)
	return at.Add(left), paused
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
