package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Backends return them (possibly wrapped); test with errors.Is.
var (
	// ErrNotFound: no such device, token or group policy.
	ErrNotFound = errors.New("not found")
	// ErrTokenInvalid: no token has this hash.
	ErrTokenInvalid = errors.New("enrolment token is not valid")
	// ErrTokenExpired: the token's ttl has passed.
	ErrTokenExpired = errors.New("enrolment token has expired")
	// ErrTokenUsedUp: the token has no uses left.
	ErrTokenUsedUp = errors.New("enrolment token has no uses left")
	// ErrTokenRevoked: an administrator revoked the token.
	ErrTokenRevoked = errors.New("enrolment token was revoked")
	// ErrRebindTarget: a re-bind token's device is revoked or gone.
	ErrRebindTarget = errors.New("the re-bind token's device is revoked or gone")
	// ErrNotCurrent: a certificate is not the device's current one (nor,
	// for PromoteCertificate, its pending renewal), or the device is revoked.
	ErrNotCurrent = errors.New("certificate is not the device's current one")
)

// Store is the collector's storage. Every method is safe for concurrent
// use; every write is one transaction.
type Store interface {
	// CreateToken stores a new enrolment token (its hash only).
	CreateToken(ctx context.Context, t Token) error
	// Tokens lists every token, newest first.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes the token with this id (ErrNotFound if none).
	RevokeToken(ctx context.Context, id string, now time.Time) error

	// Enroll consumes one use of the token whose hash is p.TokenHash and
	// creates a device, or re-binds an existing one: the device of a
	// re-bind token (ErrRebindTarget if it is revoked or gone), or the
	// device p.ProvenDevice when it is in the token's group, not revoked
	// and p.ProvenSerial is its current, unrevoked certificate. The
	// machine id never selects a device; a new device that shares its
	// group and machine id with others lists them in Duplicates. sign is
	// called with the chosen device id, before the write transaction
	// when a read-only look-up has picked it (so no certificate is signed
	// while the store holds its locks), and again inside the transaction
	// if that resolves another device id (a concurrent re-bind or
	// revocation); a certificate signed for an enrolment that then fails
	// is neither stored nor returned. If sign fails nothing is written.
	// A re-bound device's previous certificate
	// serial is revoked. Each enrolment, re-bind and likely duplicate is
	// written to the audit log in the same transaction. Token problems are
	// ErrTokenInvalid, ErrTokenExpired, ErrTokenUsedUp or ErrTokenRevoked.
	Enroll(ctx context.Context, p EnrollParams, sign func(deviceID string) (Issued, error)) (Enrolment, error)

	// Device returns one device with its verdict counts (ErrNotFound if none).
	Device(ctx context.Context, id string) (Device, error)
	// Devices lists every device with its verdict counts, by id.
	Devices(ctx context.Context) ([]Device, error)
	// RevokeDevice marks the device and its current certificate revoked.
	RevokeDevice(ctx context.Context, id string, now time.Time) error
	// RetireDevice retires a device (ErrNotFound if none): it is revoked
	// like RevokeDevice, so it leaves the fleet's counts and its
	// certificate is refused, and marked retired; its history is kept.
	RetireDevice(ctx context.Context, id string, now time.Time) error
	// Duplicates lists the likely duplicates: per group and non-empty
	// machine id shared by two or more non-revoked devices, those devices.
	Duplicates(ctx context.Context) ([]DuplicateSet, error)
	// SerialRevoked reports whether a certificate serial was revoked.
	SerialRevoked(ctx context.Context, serial string) (bool, error)
	// RenewCertificate issues the device a pending certificate (sign is
	// called inside the transaction) when currentSerial is its current,
	// unrevoked one (ErrNotCurrent otherwise; ErrNotFound for no device).
	// A pending certificate issued before is revoked. The current one
	// stays valid until PromoteCertificate. Audited.
	RenewCertificate(ctx context.Context, deviceID, currentSerial string, sign func() (Issued, error), now time.Time) (Issued, error)
	// PromoteCertificate makes the device's pending certificate, serial,
	// its current one and revokes the previous current one; a serial that
	// is already current is no change. ErrNotCurrent when serial is
	// neither. Audited.
	PromoteCertificate(ctx context.Context, deviceID, serial string, now time.Time) error

	// SaveReport stores a report once per (device, epoch, sequence). It
	// returns stored=false, and changes nothing, when the same report
	// (same ContentHash, or either hash empty) is already stored, and
	// ErrReportConflict when a different one is. A sequence out of range
	// is ErrSequenceRange; an epoch after the device's current one is
	// ErrEpochUnknown. A report of the device's current epoch that is
	// newer by (epoch, sequence) than its newest updates the latest state
	// per rule from ObservedAt (failing_since set on the first FAIL, kept
	// while failing but never before the device's enrolment, cleared
	// otherwise) and records transitions; an older one, or one of an
	// earlier epoch, is kept in the report history only. It also sets
	// last_seen.
	SaveReport(ctx context.Context, r Report) (stored bool, err error)
	// FailingSince returns, per rule id, when the device's rule started
	// failing (the collector's verdict), for rules failing now.
	FailingSince(ctx context.Context, deviceID string) (map[string]time.Time, error)
	// Reports returns the device's reports, newest first, at most limit
	// (0: all).
	Reports(ctx context.Context, deviceID string, limit int) ([]Report, error)
	// RuleStates returns the latest state per rule of the device, by rule id.
	RuleStates(ctx context.Context, deviceID string) ([]RuleState, error)
	// Transitions returns the device's verdict changes, oldest first.
	Transitions(ctx context.Context, deviceID string) ([]Transition, error)

	// SetPolicy stores (replaces) the policy of a group.
	SetPolicy(ctx context.Context, p GroupPolicy) error
	// Policy returns the policy of a group (ErrNotFound if it has none).
	Policy(ctx context.Context, group string) (GroupPolicy, error)
	// Policies lists every group policy, by group.
	Policies(ctx context.Context) ([]GroupPolicy, error)

	ReportIdentity

	// Ping checks the store is usable.
	Ping(ctx context.Context) error
	// Health checks the store can keep what it acknowledges: it answers,
	// passed its latest integrity check (ErrCorrupt otherwise) and has
	// room to write (ErrDiskFull otherwise). It is cheap enough for every
	// readiness probe; slow checks run in the background and Health
	// returns their latest outcome.
	Health(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// WaiverSource is the part of Dashboard the gRPC server needs to send each
// device its active waivers with its policy. A store without it sends none.
type WaiverSource interface {
	// ActiveWaivers lists the waivers active at now (as Waiver.ActiveAt)
	// that cover the device: its own and its group's.
	ActiveWaivers(ctx context.Context, deviceID, group string, now time.Time) ([]Waiver, error)
}

// ErrPolicyConflict: a policy set would change what a name and version
// mean (different content under the same version) or go back a version.
var ErrPolicyConflict = errors.New("policy version conflict")

// CheckPolicyChange judges next as the group's new policy over cur (nil:
// the group has none): a policy is identified by name, version and
// content, so the same name and version must keep the same document, and
// the version may not go back. It returns unchanged when next is exactly
// the current policy (setting it again is no change).
func CheckPolicyChange(cur *GroupPolicy, next GroupPolicy) (unchanged bool, err error) {
	if cur == nil || cur.Name != next.Name {
		return false, nil
	}
	switch {
	case next.Version == cur.Version && bytes.Equal(next.Document, cur.Document):
		return true, nil
	case next.Version == cur.Version:
		return false, fmt.Errorf("%w: group %s already uses %s version %d with different content (sha256 %x, this file sha256 %x); raise the version to change it",
			ErrPolicyConflict, next.Group, next.Name, next.Version, sha256.Sum256(cur.Document), sha256.Sum256(next.Document))
	case next.Version < cur.Version:
		return false, fmt.Errorf("%w: group %s uses %s version %d; version %d is older", ErrPolicyConflict, next.Group, next.Name, cur.Version, next.Version)
	}
	return false, nil
}
