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

var _ store.Admin = (*Store)(nil)

// UserList implements store.Admin.
func (s *Store) UserList(ctx context.Context, now time.Time) ([]store.UserInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.name, u.role, u.created_at, count(se.id_hash), max(se.created_at)
		FROM users u LEFT JOIN sessions se ON se.user = u.name AND se.expires_at > ?
		GROUP BY u.name ORDER BY u.name`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("user list: %w", err)
	}
	defer rows.Close()
	var out []store.UserInfo
	for rows.Next() {
		var u store.UserInfo
		var created int64
		var last sql.NullInt64
		if err := rows.Scan(&u.Name, &u.Role, &created, &u.Sessions, &last); err != nil {
			return nil, fmt.Errorf("user list: %w", err)
		}
		u.CreatedAt, u.LastSession = fromNanos(created), fromNull(last)
		out = append(out, u)
	}
	return out, rows.Err()
}

// adminTx runs fn in a write job on the user name's row, with its role
// read first (ErrNotFound without one), then writes the audit entry.
// fn returns false for no change: then no entry is written. The writer
// runs one job at a time, so the last-admin check and the change see
// the same users.
func (s *Store) adminTx(ctx context.Context, name string, e store.AuditEntry, fn func(tx *sql.Tx, role string) (bool, error)) (bool, error) {
	changed := false
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var role string
		err := tx.QueryRowContext(ctx, `SELECT role FROM users WHERE name = ?`, name).Scan(&role)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if changed, err = fn(tx, role); err != nil || !changed {
			return err
		}
		if e.Target == "" {
			e.Target = name
		}
		_, err = tx.ExecContext(ctx, qAudit, nanos(e.At), e.Actor, e.Action, e.Target, e.Detail)
		return err
	})
	return changed, err
}

// lastAdmin reports whether name, an admin, is the only one.
func lastAdmin(ctx context.Context, tx *sql.Tx, name string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE role = ? AND name != ?`, store.RoleAdmin, name).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("user %s is the only admin: %w", name, store.ErrLastAdmin)
	}
	return nil
}

// RemoveUser implements store.Admin.
func (s *Store) RemoveUser(ctx context.Context, name string, e store.AuditEntry) error {
	_, err := s.adminTx(ctx, name, e, func(tx *sql.Tx, role string) (bool, error) {
		if role == store.RoleAdmin {
			if err := lastAdmin(ctx, tx, name); err != nil {
				return false, err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user = ?`, name); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("remove user: %w", err)
	}
	return nil
}

// SetUserRole implements store.Admin.
func (s *Store) SetUserRole(ctx context.Context, name, role string, e store.AuditEntry) (bool, error) {
	changed, err := s.adminTx(ctx, name, e, func(tx *sql.Tx, cur string) (bool, error) {
		if cur == role {
			return false, nil
		}
		if cur == store.RoleAdmin {
			if err := lastAdmin(ctx, tx, name); err != nil {
				return false, err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE name = ?`, role, name)
		return err == nil, err
	})
	if err != nil {
		return false, fmt.Errorf("set role: %w", err)
	}
	return changed, nil
}

// SetUserPassword implements store.Admin.
func (s *Store) SetUserPassword(ctx context.Context, name string, hash []byte, e store.AuditEntry) error {
	_, err := s.adminTx(ctx, name, e, func(tx *sql.Tx, _ string) (bool, error) {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET hash = ? WHERE name = ?`, hash, name); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user = ?`, name)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// EndSessions implements store.Admin.
func (s *Store) EndSessions(ctx context.Context, name string, e store.AuditEntry) (int, error) {
	var live int
	_, err := s.adminTx(ctx, name, e, func(tx *sql.Tx, _ string) (bool, error) {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE user = ? AND expires_at > ?`, name, nanos(e.At)).Scan(&live); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user = ?`, name)
		return err == nil, err
	})
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	return live, nil
}

// AuditQuery implements store.Admin. The filters on actor and action use
// the indexes of migration 15 (migration_admin.go).
func (s *Store) AuditQuery(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	where, args := auditWhere(f)
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, action, target, detail FROM audit`+where+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit query: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// auditWhere is the WHERE clause of f and its arguments, the limit last.
func auditWhere(f store.AuditFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Actor != "" {
		conds, args = append(conds, "actor = ?"), append(args, f.Actor)
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			// A range on the index, not LIKE (whose escaping differs).
			conds, args = append(conds, "action >= ? AND action < ?"), append(args, f.Action, f.Action[:len(f.Action)-1]+"/")
		} else {
			conds, args = append(conds, "action = ?"), append(args, f.Action)
		}
	}
	if f.Target != "" {
		conds, args = append(conds, "target = ?"), append(args, f.Target)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "at >= ?"), append(args, nanos(f.Since))
	}
	if f.Before > 0 {
		conds, args = append(conds, "id < ?"), append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Hostnames implements store.Admin.
func (s *Store) Hostnames(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		chunk := ids[:n]
		ids = ids[n:]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, `SELECT id, hostname FROM devices WHERE id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("hostnames: %w", err)
		}
		for rows.Next() {
			var id, host string
			if err := rows.Scan(&id, &host); err != nil {
				rows.Close()
				return nil, fmt.Errorf("hostnames: %w", err)
			}
			out[id] = host
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("hostnames: %w", err)
		}
	}
	return out, nil
}

// TokenRollout implements store.Admin: the token's enrolments and
// re-binds are the audit entries each enrolment wrote in its own
// transaction (actor "token ID"), joined to the devices, with the agent
// version of each device's latest report (agents upgrade in place). A
// device enrolled and later re-bound with the same token counts once, by
// its first entry (SQLite takes the bare columns from the min(at) row).
func (s *Store) TokenRollout(ctx context.Context, tokenID string) (store.Rollout, error) {
	var out store.Rollout
	ts, err := s.Tokens(ctx)
	if err != nil {
		return out, err
	}
	found := false
	for _, t := range ts {
		if t.ID == tokenID {
			out.Token, found = t, true
		}
	}
	if !found {
		return out, fmt.Errorf("token %s: %w", tokenID, store.ErrNotFound)
	}
	actor := "token " + tokenID
	rows, err := s.db.QueryContext(ctx, `SELECT a.target, a.action, min(a.at), coalesce(nullif(p.agent_version, ''), d.agent_version)
		FROM audit a INDEXED BY audit_actor JOIN devices d ON d.id = a.target
		LEFT JOIN reports p ON p.device_id = d.id AND p.epoch = d.last_epoch AND p.sequence = d.last_sequence
		WHERE a.actor = ? AND a.action IN ('device.enrol', 'device.rebind')
		GROUP BY a.target`, actor)
	if err != nil {
		return out, fmt.Errorf("rollout: %w", err)
	}
	type did struct {
		by, version string
		at          time.Time
	}
	what := map[string]did{}
	for rows.Next() {
		var id string
		var d did
		var at int64
		if err := rows.Scan(&id, &d.by, &at, &d.version); err != nil {
			rows.Close()
			return out, fmt.Errorf("rollout: %w", err)
		}
		d.at = fromNanos(at)
		what[id] = d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("rollout: %w", err)
	}
	drows, err := s.db.QueryContext(ctx, deviceSelect+` WHERE d.id IN (SELECT target FROM audit INDEXED BY audit_actor WHERE actor = ? AND action IN ('device.enrol', 'device.rebind'))`, actor)
	if err != nil {
		return out, fmt.Errorf("rollout: %w", err)
	}
	ds, err := scanDevices(drows)
	if err != nil {
		return out, fmt.Errorf("rollout: %w", err)
	}
	for _, d := range ds {
		w := what[d.ID]
		d.AgentVersion = w.version
		out.Devices = append(out.Devices, store.RolloutDevice{Device: d, By: w.by, At: w.at})
	}
	store.SortRollout(out.Devices)
	return out, nil
}

// insertAudit writes e in tx, its Target target when empty.
func insertAudit(ctx context.Context, tx *sql.Tx, e store.AuditEntry, target string) error {
	if e.Target == "" {
		e.Target = target
	}
	_, err := tx.ExecContext(ctx, qAudit, nanos(e.At), e.Actor, e.Action, e.Target, e.Detail)
	return err
}

// RevokeDeviceAudited implements store.Admin.
func (s *Store) RevokeDeviceAudited(ctx context.Context, id string, retire bool, e store.AuditEntry) error {
	set := `revoked_at = coalesce(revoked_at, ?1)`
	if retire {
		set += `, retired_at = coalesce(retired_at, ?1)`
	}
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := revokeWith(ctx, tx, id, e.At, set); err != nil {
			return err
		}
		return insertAudit(ctx, tx, e, id)
	})
	if err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	return nil
}

// CreateWaiverAudited implements store.Admin.
func (s *Store) CreateWaiverAudited(ctx context.Context, w store.Waiver, e store.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO waivers (id, device_id, grp, rule_id, reason, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.DeviceID, w.Group, w.RuleID, w.Reason, w.CreatedBy, nanos(w.CreatedAt), nanos(w.ExpiresAt)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, e, w.ID)
	})
	if err != nil {
		return fmt.Errorf("create waiver: %w", err)
	}
	return nil
}

// RevokeWaiverAudited implements store.Admin.
func (s *Store) RevokeWaiverAudited(ctx context.Context, id string, e store.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE waivers SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, nanos(e.At), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("waiver %s: %w", id, store.ErrNotFound)
			}
			return err
		}
		return insertAudit(ctx, tx, e, id)
	})
	if err != nil {
		return fmt.Errorf("revoke waiver: %w", err)
	}
	return nil
}

// CreateUserAudited implements store.Admin.
func (s *Store) CreateUserAudited(ctx context.Context, u store.User, e store.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			u.Name, u.Role, u.Hash, nanos(u.CreatedAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("user %s: %w", u.Name, store.ErrExists)
			}
			return err
		}
		return insertAudit(ctx, tx, e, u.Name)
	})
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// CreateTokenAudited implements store.Admin.
func (s *Store) CreateTokenAudited(ctx context.Context, t store.Token, e store.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, hash, grp, uses, uses_left, created_at, expires_at, rebind_device) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Hash, t.Group, t.Uses, t.UsesLeft, nanos(t.CreatedAt), nanos(t.ExpiresAt), t.RebindDevice); err != nil {
			return err
		}
		return insertAudit(ctx, tx, e, t.ID)
	})
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// RevokeTokenAudited implements store.Admin.
func (s *Store) RevokeTokenAudited(ctx context.Context, id string, e store.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, nanos(e.At), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("token %s: %w", id, store.ErrNotFound)
			}
			return err
		}
		return insertAudit(ctx, tx, e, id)
	})
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// SetPolicyAudited implements store.Admin.
func (s *Store) SetPolicyAudited(ctx context.Context, p store.GroupPolicy, e store.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO policies (grp, name, version, document, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (grp) DO UPDATE SET name = excluded.name, version = excluded.version, document = excluded.document, updated_at = excluded.updated_at`,
			p.Group, p.Name, p.Version, p.Document, nanos(p.UpdatedAt)); err != nil {
			return err
		}
		if err := recordSetPolicy(ctx, tx, p); err != nil {
			return err
		}
		return insertAudit(ctx, tx, e, p.Group)
	})
	if err != nil {
		return fmt.Errorf("set policy: %w", err)
	}
	return nil
}
