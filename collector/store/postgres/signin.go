package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
)

var _ store.SignIn = (*Store)(nil)

// SetTOTP implements store.SignIn.
func (s *Store) SetTOTP(ctx context.Context, user string, sealed []byte, now time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		q := qmarks{tx}
		var n int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM users WHERE name = ?`, user).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("user %s: %w", user, store.ErrNotFound)
		}
		res, err := q.Exec(ctx, `INSERT INTO user_totp ("user", secret, created_at) VALUES (?, ?, ?)
			ON CONFLICT ("user") DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_step = 0
			WHERE user_totp.confirmed_at IS NULL`, user, sealed, nanos(now))
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("user %s has a confirmed second factor: %w", user, store.ErrExists)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set totp: %w", err)
	}
	return nil
}

// TOTP implements store.SignIn.
func (s *Store) TOTP(ctx context.Context, user string) (store.TOTP, error) {
	t := store.TOTP{User: user}
	var created int64
	var confirmed *int64
	err := s.qm().QueryRow(ctx, `SELECT secret, created_at, confirmed_at, last_step FROM user_totp WHERE "user" = ?`, user).
		Scan(&t.Secret, &created, &confirmed, &t.LastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.TOTP{}, fmt.Errorf("totp of %s: %w", user, store.ErrNotFound)
	}
	if err != nil {
		return store.TOTP{}, fmt.Errorf("totp of %s: %w", user, err)
	}
	t.CreatedAt = fromNanos(created)
	if confirmed != nil {
		c := fromNanos(*confirmed)
		t.ConfirmedAt = &c
	}
	return t, nil
}

// ConfirmTOTP implements store.SignIn.
func (s *Store) ConfirmTOTP(ctx context.Context, user string, step int64, now time.Time) error {
	res, err := s.qm().Exec(ctx, `UPDATE user_totp SET confirmed_at = ?, last_step = ? WHERE "user" = ? AND confirmed_at IS NULL`, nanos(now), step, user)
	if err != nil {
		return fmt.Errorf("confirm totp: %w", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("confirm totp: no unconfirmed secret for %s: %w", user, store.ErrNotFound)
	}
	return nil
}

// UseTOTPStep implements store.SignIn. The UPDATE's row lock makes two
// collectors given the same code agree on which one used it.
func (s *Store) UseTOTPStep(ctx context.Context, user string, step int64) (bool, error) {
	res, err := s.qm().Exec(ctx, `UPDATE user_totp SET last_step = ? WHERE "user" = ? AND confirmed_at IS NOT NULL AND last_step < ?`, step, user, step)
	if err != nil {
		return false, fmt.Errorf("use totp step: %w", err)
	}
	return res.RowsAffected() == 1, nil
}

// DeleteTOTP implements store.SignIn.
func (s *Store) DeleteTOTP(ctx context.Context, user string) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		q := qmarks{tx}
		res, err := q.Exec(ctx, `DELETE FROM user_totp WHERE "user" = ?`, user)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("no second factor for %s: %w", user, store.ErrNotFound)
		}
		_, err = q.Exec(ctx, `DELETE FROM pending_signins WHERE "user" = ?`, user)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete totp: %w", err)
	}
	return nil
}

// CreatePendingSignIn implements store.SignIn.
func (s *Store) CreatePendingSignIn(ctx context.Context, p store.PendingSignIn) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		q := qmarks{tx}
		if _, err := q.Exec(ctx, `DELETE FROM pending_signins WHERE expires_at <= ?`, nanos(p.CreatedAt)); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO pending_signins (id_hash, "user", csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			p.IDHash, p.User, p.CSRF, nanos(p.CreatedAt), nanos(p.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create pending sign-in: %w", err)
	}
	return nil
}

// PendingSignIn implements store.SignIn.
func (s *Store) PendingSignIn(ctx context.Context, idHash []byte, now time.Time) (store.PendingSignIn, error) {
	var p store.PendingSignIn
	var created, expires int64
	err := s.qm().QueryRow(ctx, `SELECT id_hash, "user", csrf, created_at, expires_at FROM pending_signins WHERE id_hash = ? AND expires_at > ?`,
		idHash, nanos(now)).Scan(&p.IDHash, &p.User, &p.CSRF, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.PendingSignIn{}, fmt.Errorf("pending sign-in: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.PendingSignIn{}, fmt.Errorf("pending sign-in: %w", err)
	}
	p.CreatedAt, p.ExpiresAt = fromNanos(created), fromNanos(expires)
	return p, nil
}

// DeletePendingSignIn implements store.SignIn.
func (s *Store) DeletePendingSignIn(ctx context.Context, idHash []byte) error {
	if _, err := s.qm().Exec(ctx, `DELETE FROM pending_signins WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete pending sign-in: %w", err)
	}
	return nil
}

// LinkOIDC implements store.SignIn. Two first sign-ins of one identity
// at once: the second INSERT into user_oidc fails on its key and that
// sign-in is refused; the next one finds the link.
func (s *Store) LinkOIDC(ctx context.Context, l store.OIDCLink) (store.User, error) {
	name := l.Name
	err := s.tx(ctx, func(tx pgx.Tx) error {
		q := qmarks{tx}
		err := q.QueryRow(ctx, `SELECT "user" FROM user_oidc WHERE issuer = ? AND subject = ?`, l.Issuer, l.Subject).Scan(&name)
		if err == nil {
			_, err = q.Exec(ctx, `UPDATE users SET role = ? WHERE name = ?`, l.Role, name)
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		res, err := q.Exec(ctx, `INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			name, l.Role, []byte{}, nanos(l.At))
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("user %s: %w", name, store.ErrExists)
		}
		_, err = q.Exec(ctx, `INSERT INTO user_oidc (issuer, subject, "user") VALUES (?, ?, ?)`, l.Issuer, l.Subject, name)
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("link oidc identity: %w", err)
	}
	return s.User(ctx, name)
}
