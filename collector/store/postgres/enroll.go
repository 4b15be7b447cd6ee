package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// enrolView is what an enrolment decides on: the token, the device a
// re-bind token names, the device a proof names (if it is the proven
// certificate's, in the token's group, unrevoked) and a new device's
// likely duplicates.
type enrolView struct {
	tokFound             bool
	tokID, group, rebind string
	hash                 []byte
	usesLeft, expires    int64
	tokRevoked           *int64

	rebindFound   bool
	rebindSerial  string
	rebindRevoked *int64

	provenSerial *string
	dups         []string
}

// queueEnrolReads queues the reads of an enrolment into b. With lock, the
// token row and the device to re-bind are locked (FOR UPDATE, token
// first) until the transaction ends, and the likely duplicates are read.
// Every device look-up goes through the token row, so one round trip
// reads it all.
func queueEnrolReads(b *pgx.Batch, p store.EnrollParams, lock bool, v *enrolView) {
	forUpdate := ""
	if lock {
		forUpdate = ` FOR UPDATE`
	}
	b.Queue(`SELECT id, hash, grp, uses_left, expires_at, revoked_at, rebind_device FROM tokens WHERE hash = $1`+forUpdate, p.TokenHash).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				v.tokFound = true
				if err := rows.Scan(&v.tokID, &v.hash, &v.group, &v.usesLeft, &v.expires, &v.tokRevoked, &v.rebind); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	b.Queue(`SELECT cert_serial, revoked_at FROM devices WHERE id = (SELECT rebind_device FROM tokens WHERE hash = $1 AND rebind_device <> '')`+forUpdate, p.TokenHash).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				v.rebindFound = true
				if err := rows.Scan(&v.rebindSerial, &v.rebindRevoked); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	if p.ProvenDevice != "" && p.ProvenSerial != "" {
		b.Queue(`SELECT cert_serial FROM devices
			WHERE id = $2 AND grp = (SELECT grp FROM tokens WHERE hash = $1) AND revoked_at IS NULL AND cert_serial = $3
			AND NOT EXISTS (SELECT 1 FROM revoked_serials WHERE serial = $3)`+forUpdate, p.TokenHash, p.ProvenDevice, p.ProvenSerial).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var serial string
					if err := rows.Scan(&serial); err != nil {
						return err
					}
					v.provenSerial = &serial
				}
				return rows.Err()
			})
	}
	if lock && p.Info.MachineID != "" {
		b.Queue(`SELECT id FROM devices WHERE grp = (SELECT grp FROM tokens WHERE hash = $1) AND machine_id = $2 AND id <> $3 AND revoked_at IS NULL ORDER BY enrolled_at, id`,
			p.TokenHash, p.Info.MachineID, p.NewID).
			Query(func(rows pgx.Rows) error {
				var err error
				v.dups, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
	}
}

// target says why the token cannot enrol (store.ErrTokenInvalid,
// Revoked, Expired, UsedUp), if so, and otherwise picks the device: the
// one a re-bind token names (store.ErrRebindTarget if it is revoked or
// gone), the one a proof names when it is that device's current,
// unrevoked certificate in the token's group, else p.NewID. It returns
// the device's current serial and what re-binds it (empty: a new
// device). The machine id is never consulted: anyone can send it.
func (v *enrolView) target(p store.EnrollParams) (id, serial, by string, err error) {
	switch {
	case !v.tokFound || !constantTimeEqual(v.hash, p.TokenHash):
		return "", "", "", store.ErrTokenInvalid
	case v.tokRevoked != nil:
		return "", "", "", store.ErrTokenRevoked
	case !p.Now.Before(fromNanos(v.expires)):
		return "", "", "", store.ErrTokenExpired
	case v.usesLeft <= 0:
		return "", "", "", store.ErrTokenUsedUp
	case v.rebind != "":
		if !v.rebindFound || v.rebindRevoked != nil {
			return "", "", "", store.ErrRebindTarget
		}
		return v.rebind, v.rebindSerial, store.RebindByToken, nil
	case v.provenSerial != nil:
		return p.ProvenDevice, *v.provenSerial, store.RebindByProof, nil
	}
	return p.NewID, "", "", nil
}

// Enroll implements store.Store. The token and the device to re-bind are
// read first without a transaction, so a refused token takes no lock and
// the certificate is signed before any lock is taken. Then two round
// trips: one begins the transaction, locks the token row and the
// re-bound device's row and reads them again; the other writes, audits
// and commits. sign is called again in between only if the device id
// resolved under the locks is another (a re-bind raced with a revocation
// or another re-bind). A certificate signed for an enrolment that then
// fails is neither stored nor returned.
func (s *Store) Enroll(ctx context.Context, p store.EnrollParams, sign func(string) (store.Issued, error)) (store.Enrolment, error) {
	out, err := s.enroll(ctx, p, sign)
	if err != nil {
		return store.Enrolment{}, fmt.Errorf("enroll: %w", classify(err))
	}
	return out, nil
}

func (s *Store) enroll(ctx context.Context, p store.EnrollParams, sign func(string) (store.Issued, error)) (store.Enrolment, error) {
	var pre enrolView
	var rb pgx.Batch
	queueEnrolReads(&rb, p, false, &pre)
	if err := s.pool.SendBatch(ctx, &rb).Close(); err != nil {
		return store.Enrolment{}, err
	}
	signedFor, _, _, err := pre.target(p)
	if err != nil {
		return store.Enrolment{}, err
	}
	issued, err := sign(signedFor)
	if err != nil {
		return store.Enrolment{}, fmt.Errorf("sign certificate: %w", err)
	}
	if signedFor == p.NewID && pre.rebind == "" && p.ProvenDevice == "" {
		// A new device (enrolbatch.go).
		out, err := s.enrolNew(ctx, p, issued)
		if !errors.Is(err, errNotNew) {
			return out, err
		}
	}

	pl, err := s.pipeline(ctx)
	if err != nil {
		return store.Enrolment{}, err
	}
	defer pl.close(ctx)
	var v enrolView
	var lb pgx.Batch
	lb.Queue(`BEGIN`)
	queueEnrolReads(&lb, p, true, &v)
	if err := pl.send(ctx, &lb); err != nil {
		return store.Enrolment{}, err
	}
	deviceID, oldSerial, by, err := v.target(p)
	if err != nil {
		return store.Enrolment{}, err
	}
	if deviceID != signedFor {
		if issued, err = sign(deviceID); err != nil {
			return store.Enrolment{}, fmt.Errorf("sign certificate: %w", err)
		}
	}
	out := store.Enrolment{Issued: issued, Rebound: by != "", RebindBy: by}
	now, i := nanos(p.Now), p.Info
	var w pgx.Batch
	w.Queue(`UPDATE tokens SET uses_left = uses_left - 1 WHERE id = $1`, v.tokID)
	auditQ := `INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)`
	actor := "token " + v.tokID
	if out.Rebound {
		// The previous certificate and any pending renewal are revoked.
		w.Queue(`INSERT INTO revoked_serials (serial, device_id, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (serial) DO NOTHING`, oldSerial, deviceID, now)
		w.Queue(`INSERT INTO revoked_serials (serial, device_id, revoked_at) SELECT next_cert_serial, id, $2 FROM devices WHERE id = $1 AND next_cert_serial IS NOT NULL
			ON CONFLICT (serial) DO NOTHING`, deviceID, now)
		w.Queue(`UPDATE devices SET hostname = $1, platform = $2, os_name = $3, os_version = $4, architecture = $5, agent_version = $6, cert_serial = $7, cert_not_after = $8,
			next_cert_serial = NULL, next_cert_not_after = NULL WHERE id = $9`,
			i.Hostname, i.Platform, i.OSName, i.OSVersion, i.Architecture, i.AgentVersion, issued.Serial, nanos(issued.NotAfter), deviceID)
		detail := "by proof of its key (certificate " + oldSerial + ", now revoked)"
		if by == store.RebindByToken {
			detail = "by re-bind token " + v.tokID + "; certificate " + oldSerial + " revoked"
		}
		w.Queue(auditQ, now, actor, "device.rebind", deviceID, detail)
		// Other collectors drop the identity they cached for the revoked
		// certificate (NotifyChange; delivered on commit).
		w.Queue(`SELECT pg_notify($1, $2)`, ChangesChannel, string(store.ChangeDevice)+":"+deviceID)
	} else {
		w.Queue(`INSERT INTO devices (id, grp, hostname, platform, os_name, os_version, architecture, machine_id, agent_version, enrolled_at, cert_serial, cert_not_after)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			deviceID, v.group, i.Hostname, i.Platform, i.OSName, i.OSVersion, i.Architecture, i.MachineID, i.AgentVersion, now, issued.Serial, nanos(issued.NotAfter))
		w.Queue(auditQ, now, actor, "device.enrol", deviceID, "new device in group "+v.group)
		queueAggregates(&w, snapshot{ID: deviceID}, snapshot{ID: deviceID, Exists: true, Group: v.group, Class: aggregate.ClassOf(false, 0, 0, 0), Seen: now}, p.Now)
		if len(v.dups) > 0 {
			// Likely the same machine enrolled again.
			out.Duplicates = v.dups
			w.Queue(auditQ, now, actor, "device.duplicate", deviceID, "same machine id and group as "+strings.Join(v.dups, ", "))
		}
	}
	if p.StartEpoch {
		queueEpoch(&w, p, deviceID, &out.Epoch)
	}
	w.Queue(deviceSelect+` WHERE d.id = $1`, deviceID).Query(func(rows pgx.Rows) error {
		ds, err := scanDevices(rows)
		if err == nil && len(ds) == 1 {
			out.Device = ds[0]
		}
		return err
	})
	if err := pl.commit(ctx, &w); err != nil {
		return store.Enrolment{}, err
	}
	return out, nil
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
