package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// ErrLastAdmin: the change would leave the dashboard without an admin
// (removing or demoting the only one), so no one could manage it again.
var ErrLastAdmin = errors.New("it would leave no admin")

// Admin is what administration needs on top of Dashboard, from the
// dashboard and the CLI alike. Every change takes the audit entry that
// records it and writes it in the change's own transaction: a change is
// never kept without its audit entry, nor an entry without its change.
// The entry's Target is filled in when empty.
type Admin interface {
	// UserList lists every user with their sessions, by name.
	UserList(ctx context.Context, now time.Time) ([]UserInfo, error)
	// CreateUserAudited is CreateUser with its entry (ErrExists if the
	// name is taken, and then no entry).
	CreateUserAudited(ctx context.Context, u User, e AuditEntry) error
	// RemoveUser deletes a user and ends their sessions (ErrNotFound if
	// none; ErrLastAdmin for the only admin).
	RemoveUser(ctx context.Context, name string, e AuditEntry) error
	// SetUserRole changes a user's role (ErrNotFound if none; ErrLastAdmin
	// when it demotes the only admin). Their sessions keep going with the
	// new role, which Session reads from the user. Setting the role a
	// user has is no change and writes no entry.
	SetUserRole(ctx context.Context, name, role string, e AuditEntry) (changed bool, err error)
	// SetUserPassword replaces a user's password hash and ends their
	// sessions, so whoever knew the old password is signed out
	// (ErrNotFound if none).
	SetUserPassword(ctx context.Context, name string, hash []byte, e AuditEntry) error
	// EndSessions ends every session of a user and returns how many were
	// live at e.At (ErrNotFound if there is no such user).
	EndSessions(ctx context.Context, name string, e AuditEntry) (int, error)

	// RevokeDeviceAudited is RevokeDevice, or with retire RetireDevice,
	// at e.At, with its entry.
	RevokeDeviceAudited(ctx context.Context, id string, retire bool, e AuditEntry) error
	// CreateWaiverAudited is CreateWaiver with its entry (Target: the
	// waiver's id when empty).
	CreateWaiverAudited(ctx context.Context, w Waiver, e AuditEntry) error
	// RevokeWaiverAudited is RevokeWaiver at e.At with its entry.
	RevokeWaiverAudited(ctx context.Context, id string, e AuditEntry) error

	// CreateTokenAudited is CreateToken with its entry (Target: the
	// token's id when empty).
	CreateTokenAudited(ctx context.Context, t Token, e AuditEntry) error
	// RevokeTokenAudited is RevokeToken at e.At with its entry.
	RevokeTokenAudited(ctx context.Context, id string, e AuditEntry) error
	// SetPolicyAudited is SetPolicy with its entry (Target: the group
	// when empty).
	SetPolicyAudited(ctx context.Context, p GroupPolicy, e AuditEntry) error

	// AuditQuery returns the entries that pass f, newest first.
	AuditQuery(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// Hostnames returns the hostname of each of the devices that exist.
	Hostnames(ctx context.Context, ids []string) (map[string]string, error)
	// TokenRollout returns the devices enrolled or re-bound with a token,
	// as the enrolment's audit entries record them (ErrNotFound if there
	// is no such token).
	TokenRollout(ctx context.Context, tokenID string) (Rollout, error)
}

// UserInfo is a user as the users page lists them.
type UserInfo struct {
	User
	// Sessions is the number of live (unexpired) sessions.
	Sessions int `json:"sessions"`
	// LastSession is when the newest of those began.
	LastSession *time.Time `json:"last_session,omitempty"`
}

// AuditFilter selects audit entries. Zero fields select everything.
type AuditFilter struct {
	// Actor matches exactly ("amina", "cli:root", "token tok_…").
	Actor string
	// Action matches exactly, or as a prefix when it ends with "."
	// ("user." is every user action).
	Action string
	// Target matches exactly.
	Target string
	// Since keeps entries at or after it.
	Since time.Time
	// Before keeps entries with an id below it (the next page).
	Before int64
	// Limit is the most entries returned (0: 100).
	Limit int
}

// Rollout is what enrolling with one token has done so far.
type Rollout struct {
	Token Token `json:"token"`
	// Devices are the devices enrolled or re-bound with it, oldest
	// enrolment first.
	Devices []RolloutDevice `json:"devices"`
}

// RolloutDevice is one device of a rollout.
type RolloutDevice struct {
	Device
	// By is "device.enrol" or "device.rebind": what the token did.
	By string `json:"by"`
	// At is when it did it.
	At time.Time `json:"at"`
}

// NeverReported is how many of the rollout's devices have sent no report.
func (r Rollout) NeverReported() int {
	n := 0
	for _, d := range r.Devices {
		if d.LastSeen == nil {
			n++
		}
	}
	return n
}

// AgentVersions counts the rollout's devices by agent version, as each
// device last said ("" is "unknown").
func (r Rollout) AgentVersions() map[string]int {
	out := map[string]int{}
	for _, d := range r.Devices {
		out[d.AgentVersion]++
	}
	return out
}

// SortRollout orders a rollout's devices by when the token enrolled
// them, then by id, as TokenRollout returns them.
func SortRollout(ds []RolloutDevice) {
	slices.SortFunc(ds, func(a, b RolloutDevice) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
