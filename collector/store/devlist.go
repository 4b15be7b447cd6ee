package store

import (
	"cmp"
	"slices"
	"time"
)

// The device list's filters and columns beyond DeviceQuery's first ones
// (docs/device-list.md): what a security manager asks of the list is who
// fails what since when and who is overdue, so a page carries, per
// device, its failing rules, the earliest failing since and the next
// deadline, and can be filtered and sorted by them.

// Seen values: how recently a device was heard from, whatever its
// verdicts (DeviceFilters.Seen).
const (
	// SeenFresh: not revoked, seen (or, without a report, enrolled)
	// within the staleness threshold.
	SeenFresh = "fresh"
	// SeenStale: not revoked, not seen within the threshold.
	SeenStale = "stale"
	// SeenNever: not revoked and no report received yet, fresh or stale.
	SeenNever = "never"
	// SeenRevoked: revoked.
	SeenRevoked = "revoked"
)

// DeviceFilters are the device list's filters beyond the first ones of
// DeviceQuery. Each one set narrows the list; unset ones keep everyone.
type DeviceFilters struct {
	// Groups, if set, keeps the devices of these groups (a policy's
	// groups: the caller knows which policy each group is held to,
	// including the embedded default the store never sees).
	Groups []string
	// AgentVersion matches the agent version exactly.
	AgentVersion string
	// Seen is a Seen* value.
	Seen string
	// CertWithin keeps non-revoked devices whose certificate expired or
	// expires within this of Now (CertExpiring is CertWithin CertWarning).
	CertWithin time.Duration
	// Deadlines are the graces of the rules that have one, per group.
	// They give the listing's deadlines, the Overdue filter and the
	// deadline sort; a failing rule without one has no deadline.
	Deadlines []DeadlineRule
	// Overdue keeps non-revoked devices failing a rule past its deadline
	// (failing since at or before Now - grace).
	Overdue bool
}

// Sorts are the device list's sort keys, each also "-" prefixed.
var Sorts = []string{SortHostname, SortGroup, SortOS, SortAgentVersion, SortStatus, SortFail, SortFailingSince, SortDeadline, SortLastSeen, SortCert}

// StatusOrder is the order of the status sort, ascending: the worst first.
var StatusOrder = []DeviceStatus{StatusFailing, StatusUnknown, StatusStale, StatusCompliant, StatusRevoked}

// FailingShown is how many failing rules a listing names; the rest are
// counted (DeviceListing.FailingMore).
const FailingShown = 3

// FailingRule is one failing rule of a listed device.
type FailingRule struct {
	RuleID string    `json:"rule_id"`
	Title  string    `json:"title"`
	Since  time.Time `json:"failing_since"`
	// Deadline is Since plus the rule's grace; nil without a grace.
	Deadline *time.Time `json:"deadline,omitempty"`
	Overdue  bool       `json:"overdue,omitempty"`
	// Paused: a connected-grace deadline not running (ConnectedDeadline).
	Paused bool `json:"deadline_paused,omitempty"`
}

// DeviceListing is what the list shows of a device beyond Device: its
// failing rules, the first FailingShown by deadline (then since, then
// id; those without a deadline last), the number of the others, the
// earliest failing since and the next deadline. A revoked device has
// none: it is out of the fleet.
type DeviceListing struct {
	Failing      []FailingRule `json:"failing_rules,omitempty"`
	FailingMore  int           `json:"failing_more,omitempty"`
	FailingSince *time.Time    `json:"failing_since,omitempty"`
	NextDeadline *time.Time    `json:"next_deadline,omitempty"`
	// Overdue says some failing rule is past its deadline.
	Overdue bool `json:"overdue,omitempty"`
}

// FailState is a FAIL rule state of a non-revoked device, as the
// listings are built from.
type FailState struct {
	DeviceID, Group, RuleID, Title string
	Since                          time.Time
	// Connected-grace accounting (docs/connectivity.md): At is the time
	// of the report that set it.
	GraceConnected, DeadlinePaused bool
	GraceUsed                      time.Duration
	At                             time.Time
}

// Graces indexes deadline rules by group and rule.
func Graces(rules []DeadlineRule) map[[2]string]time.Duration {
	m := make(map[[2]string]time.Duration, len(rules))
	for _, r := range rules {
		if r.Grace > 0 {
			m[[2]string{r.Group, r.RuleID}] = r.Grace
		}
	}
	return m
}

// Listings builds the listings of the failing states, per device.
func Listings(states []FailState, graces map[[2]string]time.Duration, now time.Time) map[string]DeviceListing {
	per := map[string][]FailingRule{}
	for _, st := range states {
		f := FailingRule{RuleID: st.RuleID, Title: st.Title, Since: st.Since}
		if g, ok := graces[[2]string{st.Group, st.RuleID}]; ok {
			dl := st.Since.Add(g)
			if st.GraceConnected {
				dl, f.Paused = ConnectedDeadline(st.At, g, st.GraceUsed, st.DeadlinePaused)
			}
			f.Deadline, f.Overdue = &dl, !f.Paused && !dl.After(now)
		}
		per[st.DeviceID] = append(per[st.DeviceID], f)
	}
	out := make(map[string]DeviceListing, len(per))
	for id, fs := range per {
		slices.SortFunc(fs, func(a, b FailingRule) int {
			switch {
			case a.Deadline != nil && b.Deadline == nil:
				return -1
			case a.Deadline == nil && b.Deadline != nil:
				return 1
			case a.Deadline != nil:
				if c := a.Deadline.Compare(*b.Deadline); c != 0 {
					return c
				}
			}
			return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.RuleID, b.RuleID))
		})
		var l DeviceListing
		for _, f := range fs {
			if l.FailingSince == nil || f.Since.Before(*l.FailingSince) {
				since := f.Since
				l.FailingSince = &since
			}
			if f.Deadline != nil && (l.NextDeadline == nil || f.Deadline.Before(*l.NextDeadline)) {
				l.NextDeadline = f.Deadline
			}
			l.Overdue = l.Overdue || f.Overdue
		}
		l.Failing = fs[:min(len(fs), FailingShown)]
		l.FailingMore = len(fs) - len(l.Failing)
		out[id] = l
	}
	return out
}
