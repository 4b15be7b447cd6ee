package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
)

// enrolToken is the token row an enrolment reads.
type enrolToken struct {
	id, group, rebindDevice string
}

// usableToken looks the token of p up (with lock, holding its row until
// the transaction ends) and says why it cannot enrol
// (store.ErrTokenInvalid, Revoked, Expired, UsedUp), if so.
func usableToken(ctx context.Context, q querier, p store.EnrollParams, lock bool) (enrolToken, error) {
	var (
		t        enrolToken
		hash     []byte
		usesLeft int64
		expires  int64
		revoked  *int64
	)
	query := `SELECT id, hash, grp, uses_left, expires_at, revoked_at, rebind_device FROM tokens WHERE hash = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	err := q.QueryRow(ctx, query, p.TokenHash).Scan(&t.id, &hash, &t.group, &usesLeft, &expires, &revoked, &t.rebindDevice)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !constantTimeEqual(hash, p.TokenHash)) {
		return enrolToken{}, store.ErrTokenInvalid
	}
	if err != nil {
		return enrolToken{}, err
	}
	switch {
	case revoked != nil:
		return enrolToken{}, store.ErrTokenRevoked
	case !p.Now.Before(fromNanos(expires)):
		return enrolToken{}, store.ErrTokenExpired
	case usesLeft <= 0:
		return enrolToken{}, store.ErrTokenUsedUp
	}
	return t, nil
}

// Enroll implements store.Store. The token and the device to re-bind are
// looked up read-only first, so a refused token takes no lock and the
// certificate is signed before the write transaction; the transaction
// locks the token row and the re-bound device's row, checks both again,
// and signs once more only if the device it resolves is another one (a
// re-bind raced with a revocation or another re-bind). A certificate
// signed for an enrolment that then fails is neither stored nor returned.
func (s *Store) Enroll(ctx context.Context, p store.EnrollParams, sign func(string) (store.Issued, error)) (store.Enrolment, error) {
	t, err := usableToken(ctx, s.pool, p, false)
	if err != nil {
		return store.Enrolment{}, fmt.Errorf("enroll: %w", err)
	}
	signedFor, _, by, err := rebindTarget(ctx, s.pool, p, t.group, t.rebindDevice, false)
	if err != nil {
		return store.Enrolment{}, fmt.Errorf("enroll: %w", err)
	}
	if by == "" {
		signedFor = p.NewID
	}
	issued, err := sign(signedFor)
	if err != nil {
		return store.Enrolment{}, fmt.Errorf("enroll: sign certificate: %w", err)
	}
	var out store.Enrolment
	err = s.tx(ctx, func(tx pgx.Tx) error {
		t, err := usableToken(ctx, tx, p, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET uses_left = uses_left - 1 WHERE id = $1`, t.id); err != nil {
			return err
		}
		deviceID, oldSerial, by, err := rebindTarget(ctx, tx, p, t.group, t.rebindDevice, true)
		if err != nil {
			return err
		}
		if by != "" {
			out.Rebound, out.RebindBy = true, by
		} else {
			deviceID = p.NewID
		}
		if deviceID != signedFor {
			if issued, err = sign(deviceID); err != nil {
				return fmt.Errorf("sign certificate: %w", err)
			}
		}
		out.Issued = issued
		i := p.Info
		if out.Rebound {
			if err := revokeSerial(ctx, tx, oldSerial, deviceID, p.Now); err != nil {
				return err
			}
			if err := dropPending(ctx, tx, deviceID, p.Now); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE devices SET hostname = $1, platform = $2, os_name = $3, os_version = $4, architecture = $5, agent_version = $6, cert_serial = $7, cert_not_after = $8 WHERE id = $9`,
				i.Hostname, i.Platform, i.OSName, i.OSVersion, i.Architecture, i.AgentVersion, issued.Serial, nanos(issued.NotAfter), deviceID)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO devices (id, grp, hostname, platform, os_name, os_version, architecture, machine_id, agent_version, enrolled_at, cert_serial, cert_not_after)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				deviceID, t.group, i.Hostname, i.Platform, i.OSName, i.OSVersion, i.Architecture, i.MachineID, i.AgentVersion, nanos(p.Now), issued.Serial, nanos(issued.NotAfter))
		}
		if err != nil {
			return err
		}
		if out.Duplicates, err = auditEnrolment(ctx, tx, p, t.id, t.group, deviceID, oldSerial, out.RebindBy); err != nil {
			return err
		}
		out.Device, err = deviceQuery(ctx, tx, deviceID)
		return err
	})
	if err != nil {
		return store.Enrolment{}, fmt.Errorf("enroll: %w", classify(err))
	}
	return out, nil
}

// rebindTarget picks the device an enrolment re-binds, with its current
// certificate serial and what re-binds it (store.RebindByToken or
// store.RebindByProof); by is empty when a new device is to be created.
// A re-bind token names its device; a proof names a device certificate,
// which re-binds only when it is the device's current, unrevoked one in
// the token's group. The machine id is never consulted: anyone can send
// it. With lock, the device's row is locked until the transaction ends.
func rebindTarget(ctx context.Context, q querier, p store.EnrollParams, group, tokenDevice string, lock bool) (id, serial, by string, err error) {
	forUpdate := ""
	if lock {
		forUpdate = ` FOR UPDATE`
	}
	if tokenDevice != "" {
		var revoked *int64
		err := q.QueryRow(ctx, `SELECT cert_serial, revoked_at FROM devices WHERE id = $1`+forUpdate, tokenDevice).Scan(&serial, &revoked)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && revoked != nil) {
			return "", "", "", store.ErrRebindTarget
		}
		if err != nil {
			return "", "", "", err
		}
		return tokenDevice, serial, store.RebindByToken, nil
	}
	if p.ProvenDevice == "" || p.ProvenSerial == "" {
		return "", "", "", nil
	}
	err = q.QueryRow(ctx, `SELECT cert_serial FROM devices
		WHERE id = $1 AND grp = $2 AND revoked_at IS NULL AND cert_serial = $3
		AND NOT EXISTS (SELECT 1 FROM revoked_serials WHERE serial = $3)`+forUpdate,
		p.ProvenDevice, group, p.ProvenSerial).Scan(&serial)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", "", nil
	}
	if err != nil {
		return "", "", "", err
	}
	return p.ProvenDevice, serial, store.RebindByProof, nil
}

// auditEnrolment writes what an enrolment did to the audit log and returns
// a new device's likely duplicates: the other non-revoked devices of its
// group with its non-empty machine id.
func auditEnrolment(ctx context.Context, tx pgx.Tx, p store.EnrollParams, tokenID, group, deviceID, oldSerial, by string) ([]string, error) {
	add := func(action, detail string) error {
		return audit(ctx, tx, p.Now, "token "+tokenID, action, deviceID, detail)
	}
	switch by {
	case store.RebindByToken:
		return nil, add("device.rebind", "by re-bind token "+tokenID+"; certificate "+oldSerial+" revoked")
	case store.RebindByProof:
		return nil, add("device.rebind", "by proof of its key (certificate "+oldSerial+", now revoked)")
	}
	if err := add("device.enrol", "new device in group "+group); err != nil {
		return nil, err
	}
	if p.Info.MachineID == "" {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT id FROM devices WHERE grp = $1 AND machine_id = $2 AND id <> $3 AND revoked_at IS NULL ORDER BY enrolled_at, id`,
		group, p.Info.MachineID, deviceID)
	if err != nil {
		return nil, err
	}
	dups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if len(dups) > 0 {
		if err := add("device.duplicate", "same machine id and group as "+strings.Join(dups, ", ")); err != nil {
			return nil, err
		}
	}
	return dups, nil
}

// RenewCertificate implements store.Store. sign is called inside the
// transaction, with the device's row locked, as the contract says: a
// renewal is one device's, so the lock holds up nobody else.
func (s *Store) RenewCertificate(ctx context.Context, deviceID, currentSerial string, sign func() (store.Issued, error), now time.Time) (store.Issued, error) {
	var issued store.Issued
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var serial string
		var next *string
		var revoked *int64
		err := tx.QueryRow(ctx, `SELECT cert_serial, next_cert_serial, revoked_at FROM devices WHERE id = $1 FOR UPDATE`, deviceID).Scan(&serial, &next, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if revoked != nil || serial != currentSerial {
			return store.ErrNotCurrent
		}
		if issued, err = sign(); err != nil {
			return fmt.Errorf("sign certificate: %w", err)
		}
		// A renewal the agent never used (it crashed before saving, or
		// asks again) is superseded: its serial can never become current.
		if next != nil {
			if err := revokeSerial(ctx, tx, *next, deviceID, now); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE devices SET next_cert_serial = $1, next_cert_not_after = $2 WHERE id = $3`,
			issued.Serial, nanos(issued.NotAfter), deviceID); err != nil {
			return err
		}
		return audit(ctx, tx, now, "device "+deviceID, "device.cert.renew", deviceID,
			fmt.Sprintf("certificate %s issued, valid until %s; %s stays valid until the new one is used",
				issued.Serial, issued.NotAfter.UTC().Format(time.RFC3339), serial))
	})
	if err != nil {
		return store.Issued{}, fmt.Errorf("renew certificate: %w", classify(err))
	}
	return issued, nil
}

// PromoteCertificate implements store.Store.
func (s *Store) PromoteCertificate(ctx context.Context, deviceID, serial string, now time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var old string
		var next *string
		var notAfter *int64
		err := tx.QueryRow(ctx, `SELECT cert_serial, next_cert_serial, next_cert_not_after FROM devices WHERE id = $1 AND revoked_at IS NULL FOR UPDATE`, deviceID).
			Scan(&old, &next, &notAfter)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotCurrent
		}
		if err != nil {
			return err
		}
		if old == serial {
			return nil // promoted by a concurrent call
		}
		if next == nil || *next != serial || notAfter == nil {
			return store.ErrNotCurrent
		}
		if err := revokeSerial(ctx, tx, old, deviceID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE devices SET cert_serial = $1, cert_not_after = $2, next_cert_serial = NULL, next_cert_not_after = NULL WHERE id = $3`,
			serial, *notAfter, deviceID); err != nil {
			return err
		}
		return audit(ctx, tx, now, "device "+deviceID, "device.cert.promote", deviceID,
			"certificate "+serial+" used; certificate "+old+" revoked")
	})
	if err != nil && !errors.Is(err, store.ErrNotCurrent) {
		return fmt.Errorf("promote certificate: %w", classify(err))
	}
	return err
}

// dropPending revokes and forgets a device's pending renewed certificate,
// as every re-bind, revocation and retirement must.
func dropPending(ctx context.Context, tx pgx.Tx, deviceID string, now time.Time) error {
	var next *string
	err := tx.QueryRow(ctx, `SELECT next_cert_serial FROM devices WHERE id = $1`, deviceID).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && next == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := revokeSerial(ctx, tx, *next, deviceID, now); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE devices SET next_cert_serial = NULL, next_cert_not_after = NULL WHERE id = $1`, deviceID)
	return err
}
