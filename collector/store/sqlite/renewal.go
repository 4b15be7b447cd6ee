package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RenewCertificate implements store.Store.
func (s *Store) RenewCertificate(ctx context.Context, deviceID, currentSerial string, sign func() (store.Issued, error), now time.Time) (store.Issued, error) {
	var issued store.Issued
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var serial string
		var next sql.NullString
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT cert_serial, next_cert_serial, revoked_at FROM devices WHERE id = ?`, deviceID).Scan(&serial, &next, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if revoked.Valid || serial != currentSerial {
			return store.ErrNotCurrent
		}
		if issued, err = sign(); err != nil {
			return fmt.Errorf("sign certificate: %w", err)
		}
		// A renewal the agent never used (it crashed before saving, or
		// asks again) is superseded: its serial can never become current.
		if next.Valid {
			if err := revokeSerial(ctx, tx, next.String, deviceID, now); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET next_cert_serial = ?, next_cert_not_after = ? WHERE id = ?`,
			issued.Serial, nanos(issued.NotAfter), deviceID); err != nil {
			return err
		}
		return audit(ctx, tx, now, "device "+deviceID, "device.cert.renew", deviceID,
			fmt.Sprintf("certificate %s issued, valid until %s; %s stays valid until the new one is used",
				issued.Serial, issued.NotAfter.UTC().Format(time.RFC3339), serial))
	})
	if err != nil {
		return store.Issued{}, fmt.Errorf("renew certificate: %w", err)
	}
	return issued, nil
}

// PromoteCertificate implements store.Store.
func (s *Store) PromoteCertificate(ctx context.Context, deviceID, serial string, now time.Time) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var old string
		var next sql.NullString
		var notAfter sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT cert_serial, next_cert_serial, next_cert_not_after FROM devices WHERE id = ? AND revoked_at IS NULL`, deviceID).
			Scan(&old, &next, &notAfter)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotCurrent
		}
		if err != nil {
			return err
		}
		if old == serial {
			return nil // promoted by a concurrent call
		}
		if !next.Valid || next.String != serial {
			return store.ErrNotCurrent
		}
		if err := revokeSerial(ctx, tx, old, deviceID, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET cert_serial = ?, cert_not_after = ?, next_cert_serial = NULL, next_cert_not_after = NULL WHERE id = ?`,
			serial, notAfter.Int64, deviceID); err != nil {
			return err
		}
		return audit(ctx, tx, now, "device "+deviceID, "device.cert.promote", deviceID,
			"certificate "+serial+" used; certificate "+old+" revoked")
	})
	if err != nil && !errors.Is(err, store.ErrNotCurrent) {
		return fmt.Errorf("promote certificate: %w", err)
	}
	return err
}

// dropPending revokes and forgets a device's pending renewed certificate,
// as every re-bind, revocation and retirement must.
func dropPending(ctx context.Context, tx *sql.Tx, deviceID string, now time.Time) error {
	var next sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT next_cert_serial FROM devices WHERE id = ?`, deviceID).Scan(&next); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	}
	if !next.Valid {
		return nil
	}
	if err := revokeSerial(ctx, tx, next.String, deviceID, now); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE devices SET next_cert_serial = NULL, next_cert_not_after = NULL WHERE id = ?`, deviceID)
	return err
}

func revokeSerial(ctx context.Context, tx *sql.Tx, serial, deviceID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO revoked_serials (serial, device_id, revoked_at) VALUES (?, ?, ?)`, serial, deviceID, nanos(now))
	return err
}

func audit(ctx context.Context, tx *sql.Tx, now time.Time, actor, action, target, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		nanos(now), actor, action, target, detail)
	return err
}
