package store

import (
	"context"
	"errors"
	"time"
)

// ErrExists: a user (or other named record) with this key already exists.
var ErrExists = errors.New("already exists")

// Dashboard is what the web dashboard and the export commands need on top
// of Store. The SQLite store implements it.
type Dashboard interface {
	Store
	Overview
	// Admin: users, the audit log's filters, rollouts (admin.go).
	Admin

	// CreateUser stores a new user (ErrExists if the name is taken).
	CreateUser(ctx context.Context, u User) error
	// User returns one user (ErrNotFound if none).
	User(ctx context.Context, name string) (User, error)
	// Users lists every user, by name.
	Users(ctx context.Context) ([]User, error)

	// CreateSession stores a session (its id's hash only).
	CreateSession(ctx context.Context, s Session) error
	// Session returns the unexpired session with this id hash, with its
	// user's current role (ErrNotFound if none or expired at now).
	Session(ctx context.Context, idHash []byte, now time.Time) (Session, error)
	// DeleteSession ends a session; deleting a missing one is no error.
	DeleteSession(ctx context.Context, idHash []byte) error

	// AddAudit appends an entry to the audit log.
	AddAudit(ctx context.Context, e AuditEntry) error
	// Audit returns the newest entries first, at most limit.
	Audit(ctx context.Context, limit int) ([]AuditEntry, error)

	// CreateWaiver stores a waiver.
	CreateWaiver(ctx context.Context, w Waiver) error
	// Waivers lists every waiver (active, expired and revoked), newest first.
	Waivers(ctx context.Context) ([]Waiver, error)
	// RevokeWaiver ends a waiver early (ErrNotFound if none).
	RevokeWaiver(ctx context.Context, id string, now time.Time) error

	// FleetCounts counts devices by status, like Device.Status.
	FleetCounts(ctx context.Context, now time.Time, staleAfter time.Duration) (FleetCounts, error)
	// FailingByRule counts, per rule, the devices (neither revoked nor
	// stale) whose latest verdict for it is FAIL, most first.
	FailingByRule(ctx context.Context, now time.Time, staleAfter time.Duration) ([]RuleCount, error)
	// PastDeadline lists rule states failing since at or before
	// now - grace for each (group, rule), oldest first, at most limit,
	// and how many there are in all. Revoked devices are left out.
	PastDeadline(ctx context.Context, rules []DeadlineRule, now time.Time, limit int) ([]Overdue, int, error)
	// Groups lists the groups that have devices.
	Groups(ctx context.Context) ([]string, error)
	// ListDevices filters, sorts and pages devices in the database: the
	// page after q.After or before q.Before (keyset paging), or at
	// q.Offset without a cursor; with each device's failing rules and
	// deadlines (DevicePage.Listing, devlist.go).
	ListDevices(ctx context.Context, q DeviceQuery) (DevicePage, error)
	// Trend classifies the fleet's devices at the end of each of days
	// days ending with the day of to (UTC days), from the transitions.
	Trend(ctx context.Context, to time.Time, days int) ([]TrendPoint, error)
	// LatestFacts calls fn for every non-revoked device of the group
	// that has reported, with its latest report's facts.
	LatestFacts(ctx context.Context, group string, fn func(LatestFacts) error) error
	// StateAsOf calls fn with every rule result of every device as it
	// stood at t, by device: from its newest report by (epoch, sequence)
	// among those observed at or before t (Report.ObservedAt, the
	// collected time the collector vouches for), however late it was
	// received.
	// A device revoked by t is there too, with its last state and
	// StateRow.RevokedAt, so an export as of then still accounts for it.
	StateAsOf(ctx context.Context, t time.Time, fn func(StateRow) error) error
}

// Roles.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// User is a dashboard user. Hash is the password's bcrypt hash.
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// Session is a signed-in browser. Only the SHA-256 of its id is stored.
type Session struct {
	IDHash    []byte
	User      string
	Role      string // the user's role, filled in by Session
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuditEntry is one administrative action.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail"`
}

// Waiver exempts one rule on a device (DeviceID set) or on every device
// of a group (Group set) until ExpiresAt.
type Waiver struct {
	ID        string     `json:"id"`
	DeviceID  string     `json:"device_id,omitempty"`
	Group     string     `json:"group,omitempty"`
	RuleID    string     `json:"rule_id"`
	Reason    string     `json:"reason"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// ActiveAt reports whether the waiver applies at t: created, not expired,
// not revoked. Expiry needs no job: it is judged whenever it is read.
func (w Waiver) ActiveAt(t time.Time) bool {
	return !t.Before(w.CreatedAt) && t.Before(w.ExpiresAt) && (w.RevokedAt == nil || t.Before(*w.RevokedAt))
}

// Covers reports whether the waiver is for this rule on this device.
func (w Waiver) Covers(deviceID, group, ruleID string) bool {
	if w.RuleID != ruleID {
		return false
	}
	if w.DeviceID != "" {
		return w.DeviceID == deviceID
	}
	return w.Group == group
}

// FindWaiver returns the first waiver in ws active at t for the rule on
// the device, or nil.
func FindWaiver(ws []Waiver, t time.Time, deviceID, group, ruleID string) *Waiver {
	for i := range ws {
		if ws[i].Covers(deviceID, group, ruleID) && ws[i].ActiveAt(t) {
			return &ws[i]
		}
	}
	return nil
}

// Waived is the status a waived result is shown with: never PASS.
const Waived Verdict = "WAIVED"

// FleetCounts is the number of devices per status. Devices excludes
// revoked ones, as fleet summary does.
type FleetCounts struct {
	Devices   int `json:"devices"`
	Compliant int `json:"compliant"`
	Failing   int `json:"failing"`
	Unknown   int `json:"unknown"`
	Stale     int `json:"stale"`
	Revoked   int `json:"revoked"`
}

// RuleCount is how many devices fail a rule.
type RuleCount struct {
	RuleID  string `json:"rule_id"`
	Title   string `json:"title"`
	Devices int    `json:"devices"`
}

// DeadlineRule is a rule with a grace period in a group.
type DeadlineRule struct {
	Group  string
	RuleID string
	Grace  time.Duration
}

// Overdue is a rule failing on a device past its deadline.
type Overdue struct {
	DeviceID     string
	Hostname     string
	Group        string
	RuleID       string
	Title        string
	FailingSince time.Time
	Deadline     time.Time
}

// Device list sort keys; a leading "-" sorts descending.
const (
	SortHostname = "hostname"
	SortLastSeen = "last_seen"
	SortGroup    = "group"
	SortFail     = "fail"
	// The sorts of devlist.go.
	SortOS           = "os"
	SortAgentVersion = "agent_version"
	SortCert         = "cert"
	SortStatus       = "status"
	SortFailingSince = "failing_since"
	SortDeadline     = "deadline"
)

// DeviceQuery selects a page of devices.
type DeviceQuery struct {
	Now        time.Time
	StaleAfter time.Duration
	// Status, if set, keeps devices with that status only.
	Status DeviceStatus
	// RuleID, if set, keeps the non-revoked devices whose latest verdict
	// for it is FAIL.
	RuleID string
	Group  string
	// OS matches os_name exactly.
	OS string
	// Search matches hostnames containing it (case-insensitive).
	Search string
	// CertExpiring keeps non-revoked devices whose certificate expired or
	// expires within CertWarning of Now.
	CertExpiring bool
	// The filters of devlist.go.
	DeviceFilters
	// Sort is a Sort* key, "-" prefixed for descending (default hostname).
	// Ties are broken by id, in the same direction.
	Sort  string
	Limit int
	// After is DevicePage.Next of the previous page: the next page starts
	// after that device. A cursor is tied to its Sort (ErrBadCursor with
	// another), not to the filters.
	After string
	// Before is DevicePage.Prev of the following page: the page ends
	// just before that device (After wins when both are set).
	Before string
	// Offset skips devices, without a cursor; it costs what it skips.
	Offset int
}

// DevicePage is one page of ListDevices.
type DevicePage struct {
	Devices []Device
	// Total is how many devices match. It is exact when TotalExact is
	// set; otherwise the filter has no maintained count, counting stopped
	// (at DeviceCountBound matches, or after a bounded number of devices
	// looked at) and Total is a lower bound: "Total or more".
	Total      int
	TotalExact bool
	// Next is the cursor of the following page, empty on the last one.
	Next string
	// Prev is the cursor (DeviceQuery.Before) of the page before, empty
	// on the first one.
	Prev string
	// Listing has, per device id of Devices, its failing rules and
	// deadlines (devlist.go).
	Listing map[string]DeviceListing
}

// DeviceCountBound is where ListDevices stops counting the matches of a
// filter that has no maintained count (it also looks at no more than
// 20,000 devices), so a page never costs a count of the whole fleet.
const DeviceCountBound = 500

// ErrBadCursor: DeviceQuery.After is not a cursor of this sort.
var ErrBadCursor = errors.New("bad device list cursor")

// TrendPoint is the fleet at the end of a UTC day, from stored history.
// Staleness is not part of history: a device counts with its last verdicts.
type TrendPoint struct {
	Day       time.Time `json:"day"`
	Compliant int       `json:"compliant"`
	Failing   int       `json:"failing"`
	Unknown   int       `json:"unknown"`
}

// LatestFacts is a device's latest facts and its currently failing rules.
type LatestFacts struct {
	DeviceID string
	Hostname string
	Facts    []byte // wardv1.Facts, protobuf wire format
	Failing  map[string]bool
}

// StateRow is one rule result of one device at a point in time, standing
// alone: everything an auditor needs is in the row.
type StateRow struct {
	DeviceID      string     `json:"device_id"`
	Hostname      string     `json:"hostname"`
	Group         string     `json:"group"`
	RuleID        string     `json:"rule_id"`
	Title         string     `json:"rule_title"`
	PolicyName    string     `json:"policy_name"`
	PolicyVersion int        `json:"policy_version"`
	Status        Verdict    `json:"status"`
	Observed      string     `json:"observed"`
	Expected      string     `json:"expected"`
	Since         *time.Time `json:"since,omitempty"`
	// ReportedAt is the report's observed time (Report.ObservedAt): when
	// the state was collected, as the collector vouches. ReceivedAt is
	// when the report arrived, which for a report queued offline is
	// later.
	ReportedAt time.Time `json:"reported_at"`
	ReceivedAt time.Time `json:"received_at"`
	Waiver     string    `json:"waiver,omitempty"`
	// Severity and Reason (why a verdict is UNKNOWN) are the rule's, as
	// the collector evaluated it.
	Severity string `json:"severity,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// RevokedAt is set when the device was revoked at or before the time
	// asked for: its rows are its last state before the revocation.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// GraceConnected, GraceUsed and DeadlinePaused are the agent's
	// connected-grace accounting in the report (store.RuleResult).
	GraceConnected bool          `json:"grace_connected,omitempty"`
	GraceUsed      time.Duration `json:"grace_used,omitempty"`
	DeadlinePaused bool          `json:"deadline_paused,omitempty"`
}
