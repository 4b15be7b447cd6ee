package store

import (
	"context"
	"time"
)

// SignIn is what the dashboard's second factor (TOTP) and OpenID Connect
// sign-in need on top of Dashboard (docs/signin.md). Both stores
// implement it.
type SignIn interface {
	// SetTOTP stores a new, unconfirmed TOTP secret (already sealed by
	// the caller) for the user, replacing an unconfirmed one. It refuses
	// (ErrExists) while a confirmed one is in place: only a reset removes
	// that. ErrNotFound if there is no such user.
	SetTOTP(ctx context.Context, user string, sealed []byte, now time.Time) error
	// TOTP returns the user's TOTP record (ErrNotFound if none).
	TOTP(ctx context.Context, user string) (TOTP, error)
	// ConfirmTOTP turns the user's unconfirmed secret on, recording step
	// as used (ErrNotFound if there is no unconfirmed secret).
	ConfirmTOTP(ctx context.Context, user string, step int64, now time.Time) error
	// UseTOTPStep records step as the user's last used time step if it is
	// later than the last one, and reports whether it was: a code is good
	// once, even with several collectors on one store.
	UseTOTPStep(ctx context.Context, user string, step int64) (bool, error)
	// DeleteTOTP removes the user's TOTP record, confirmed or not, and
	// the user's half-done sign-ins (ErrNotFound if there was none).
	DeleteTOTP(ctx context.Context, user string) error

	// CreatePendingSignIn stores a sign-in whose password was right and
	// that waits for its second factor. Expired ones are deleted.
	CreatePendingSignIn(ctx context.Context, p PendingSignIn) error
	// PendingSignIn returns the unexpired pending sign-in with this id
	// hash (ErrNotFound if none or expired at now).
	PendingSignIn(ctx context.Context, idHash []byte, now time.Time) (PendingSignIn, error)
	// DeletePendingSignIn deletes one; a missing one is no error.
	DeletePendingSignIn(ctx context.Context, idHash []byte) error

	// LinkOIDC returns the user for an OpenID Connect identity (issuer,
	// subject), creating it under l.Name (with no password) on its first
	// sign-in, and sets its role to l.Role. A first sign-in under a name
	// another user already has is refused with ErrExists: an identity
	// provider never takes over a local account.
	LinkOIDC(ctx context.Context, l OIDCLink) (User, error)
}

// TOTP is a user's time-based one-time password secret. Secret is sealed
// by the dashboard (the store never sees it in the clear).
type TOTP struct {
	User        string
	Secret      []byte
	CreatedAt   time.Time
	ConfirmedAt *time.Time // nil until the first code confirms it
	LastStep    int64      // the last time step a code was accepted for
}

// PendingSignIn is a sign-in between its password and its second factor.
// Only the SHA-256 of its id is stored.
type PendingSignIn struct {
	IDHash    []byte
	User      string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OIDCLink is an identity asserted by an OpenID Connect provider.
type OIDCLink struct {
	Issuer  string
	Subject string
	Name    string // the user name on first sign-in (the e-mail address)
	Role    string
	At      time.Time
}
