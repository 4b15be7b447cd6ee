package store

import (
	"context"
	"strings"
	"time"
)

// Overview is what the dashboard's overview and device pages read on top
// of Dashboard: the rule states failing now, most urgent first, and a
// device's administrative history. Both read bounded, indexed ranges, so
// they cost the same at 15 devices and at a million.
type Overview interface {
	// FailingNow lists the FAIL states of non-revoked devices for the
	// (group, rule) pairs of q.Rules, most urgent first: by deadline
	// (failing_since + grace), so the overdue come first, then, for rules
	// without a grace period, by failing_since; ties by device and rule.
	// A state under an active device waiver (at q.Now) is left out and
	// counted in Waived; a group-wide waiver is the caller's to leave out
	// of q.Rules. At most q.Limit rows (0: 50); Total, Overdue and Counts
	// count every state, listed or not.
	FailingNow(ctx context.Context, q FailingQuery) (FailingPage, error)
	// AuditFor returns the audit entries whose target is one of targets
	// (a device id, a group), newest first, at most limit (0: 100).
	AuditFor(ctx context.Context, targets []string, limit int) ([]AuditEntry, error)
}

// FailingQuery selects the failing-now rows of FailingNow.
type FailingQuery struct {
	// Rules are the (group, rule) pairs to list, each with its grace
	// period in that group's policy (0: the rule has no deadline).
	Rules []DeadlineRule
	Now   time.Time
	Limit int
}

// Failing is one rule failing now on one device.
type Failing struct {
	DeviceID     string    `json:"device_id"`
	Hostname     string    `json:"hostname"`
	Group        string    `json:"group"`
	RuleID       string    `json:"rule_id"`
	Title        string    `json:"rule_title"`
	Severity     string    `json:"severity"`
	FailingSince time.Time `json:"failing_since"`
	// Deadline is FailingSince + the rule's grace; nil without a grace.
	// Under a connected grace (docs/connectivity.md), it is the report's
	// time plus the grace left (ConnectedDeadline), and Paused says the
	// device's latest round found no connection: not overdue.
	Deadline *time.Time `json:"deadline,omitempty"`
	Paused   bool       `json:"deadline_paused,omitempty"`
	// Seen is the device's last report (its enrolment without one): the
	// caller judges staleness with it.
	Seen time.Time `json:"seen"`
}

// Overdue reports whether the row is past its deadline at now.
func (f Failing) Overdue(now time.Time) bool {
	return f.Deadline != nil && !f.Paused && !now.Before(*f.Deadline)
}

// CompareFailing orders failing rows as FailingNow lists them: by
// deadline, rows without one last, then by failing since, device and rule.
func CompareFailing(a, b Failing) int {
	switch {
	case a.Deadline != nil && b.Deadline == nil:
		return -1
	case a.Deadline == nil && b.Deadline != nil:
		return 1
	case a.Deadline != nil && !a.Deadline.Equal(*b.Deadline):
		return a.Deadline.Compare(*b.Deadline)
	case !a.FailingSince.Equal(b.FailingSince):
		return a.FailingSince.Compare(b.FailingSince)
	case a.DeviceID != b.DeviceID:
		return strings.Compare(a.DeviceID, b.DeviceID)
	}
	return strings.Compare(a.RuleID, b.RuleID)
}

// FailingPage is the outcome of FailingNow.
type FailingPage struct {
	Rows []Failing `json:"rows"`
	// Total is how many FAIL states there are for the rules, and Overdue
	// how many of them are past their deadline, waived ones left out.
	Total   int `json:"total"`
	Overdue int `json:"overdue"`
	// Waived is how many FAIL states an active device waiver covers.
	Waived int `json:"waived"`
	// Counts are Total and Overdue per (group, rule) of the query, in
	// its order, duplicates dropped: what a chart per rule reads.
	Counts []FailingCount `json:"counts"`
}

// FailingCount is how many FAIL states one rule has in one group, waived
// ones left out, and how many of those are overdue.
type FailingCount struct {
	Group   string `json:"group"`
	RuleID  string `json:"rule_id"`
	Failing int    `json:"failing"`
	Overdue int    `json:"overdue"`
}
