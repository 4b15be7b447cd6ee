package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// rebindTarget picks the device an enrolment re-binds, with its current
// certificate serial and what re-binds it (store.RebindByToken or
// store.RebindByProof); by is empty when a new device is to be created.
// A re-bind token names its device; a proof names a device certificate,
// which re-binds only when it is the device's current, unrevoked one in
// the token's group. The machine id is never consulted: anyone can send it.
func rebindTarget(ctx context.Context, tx rowQuerier, p store.EnrollParams, group, tokenDevice string) (id, serial, by string, err error) {
	if tokenDevice != "" {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT cert_serial, revoked_at FROM devices WHERE id = ?`, tokenDevice).Scan(&serial, &revoked)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked.Valid) {
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
	err = tx.QueryRowContext(ctx, `SELECT cert_serial FROM devices
		WHERE id = ? AND grp = ? AND revoked_at IS NULL AND cert_serial = ?
		AND NOT EXISTS (SELECT 1 FROM revoked_serials WHERE serial = ?)`,
		p.ProvenDevice, group, p.ProvenSerial, p.ProvenSerial).Scan(&serial)
	if errors.Is(err, sql.ErrNoRows) {
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
func auditEnrolment(ctx context.Context, tx ptx, p store.EnrollParams, tokenID, group, deviceID, oldSerial, by string) ([]string, error) {
	add := func(action, detail string) error {
		_, err := tx.ExecContext(ctx, qAudit,
			nanos(p.Now), "token "+tokenID, action, deviceID, detail)
		return err
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
	rows, err := tx.QueryContext(ctx, qDuplicates,
		group, p.Info.MachineID, deviceID)
	if err != nil {
		return nil, err
	}
	var dups []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		dups = append(dups, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(dups) > 0 {
		if err := add("device.duplicate", "same machine id and group as "+strings.Join(dups, ", ")); err != nil {
			return nil, err
		}
	}
	return dups, nil
}

// RetireDevice implements store.Store.
func (s *Store) RetireDevice(ctx context.Context, id string, now time.Time) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return revokeWith(ctx, tx, id, now, `revoked_at = coalesce(revoked_at, ?1), retired_at = coalesce(retired_at, ?1)`)
	})
	if err != nil {
		return fmt.Errorf("retire device: %w", err)
	}
	return nil
}

// Duplicates implements store.Store.
func (s *Store) Duplicates(ctx context.Context) ([]store.DuplicateSet, error) {
	rows, err := s.db.QueryContext(ctx, deviceSelect+` WHERE d.revoked_at IS NULL AND d.machine_id != '' AND EXISTS (
		SELECT 1 FROM devices o WHERE o.grp = d.grp AND o.machine_id = d.machine_id AND o.id != d.id AND o.revoked_at IS NULL)
		ORDER BY d.grp, d.machine_id, d.enrolled_at, d.id`)
	if err != nil {
		return nil, fmt.Errorf("duplicates: %w", err)
	}
	ds, err := scanDevices(rows)
	if err != nil {
		return nil, fmt.Errorf("duplicates: %w", err)
	}
	var out []store.DuplicateSet
	for _, d := range ds {
		if n := len(out); n > 0 && out[n-1].Group == d.Group && out[n-1].MachineID == d.MachineID {
			out[n-1].Devices = append(out[n-1].Devices, d)
			continue
		}
		out = append(out, store.DuplicateSet{Group: d.Group, MachineID: d.MachineID, Devices: []store.Device{d}})
	}
	return out, nil
}
