package evidence

import "time"

// DefaultCoverage is how long a report stands for the device's state
// when no later report follows sooner: past it, the device is
// unobserved.
const DefaultCoverage = 24 * time.Hour

// Summary is what a file's facts say over its period, computed by
// Summarize from the reports and policies in the file alone.
type Summary struct {
	// CoverageSeconds is how long one report stands for the state (at
	// most, until the next report).
	CoverageSeconds int64           `json:"coverage_seconds"`
	Devices         []DeviceSummary `json:"devices"`
}

// DeviceSummary is one device's summary.
type DeviceSummary struct {
	DeviceID string `json:"device_id"`
	// Unobserved are the parts of the period no signed report covers.
	Unobserved []Period `json:"unobserved"`
	// UnobservedSeconds is their total length.
	UnobservedSeconds int64 `json:"unobserved_seconds"`
	// Rules are the rules of the policies in force, each with its
	// verdicts over the period (evaluated by the included policy the
	// report names; a report whose policy is not in the file is UNKNOWN).
	Rules []RuleSummary `json:"rules"`
	// Text is the human-readable summary, a line per rule and one for
	// the unobserved time and each gap and fork.
	Text []string `json:"text"`
}

// RuleSummary is one rule's verdicts over the period.
type RuleSummary struct {
	RuleID string `json:"rule_id"`
	Title  string `json:"title"`
	// Periods cover the observed time, in order, merged where the
	// verdict stays the same.
	Periods []Period `json:"periods"`
}

// Period is a half-open interval of time with what held in it.
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Status is PASS, FAIL or UNKNOWN (empty in Unobserved).
	Status string `json:"status,omitempty"`
}
