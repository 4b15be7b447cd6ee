package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
)

var _ store.Admin = (*Store)(nil)

// UserList implements store.Admin.
func (s *Store) UserList(ctx context.Context, now time.Time) ([]store.UserInfo, error) {
	rows, err := s.qm().Query(ctx, `SELECT u.name, u.role, u.created_at, count(se.id_hash), max(se.created_at)
		FROM users u LEFT JOIN sessions se ON se."user" = u.name AND se.expires_at > ?
		GROUP BY u.name, u.role, u.created_at ORDER BY u.name`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("user list: %w", err)
	}
	defer rows.Close()
	var out []store.UserInfo
	for rows.Next() {
		var u store.UserInfo
		var created int64
		var last *int64
		if err := rows.Scan(&u.Name, &u.Role, &created, &u.Sessions, &last); err != nil {
			return nil, fmt.Errorf("user list: %w", err)
		}
		u.CreatedAt, u.LastSession = fromNanos(created), fromNull(last)
		out = append(out, u)
	}
	return out, rows.Err()
}

// adminTx runs fn in a transaction holding the locks of the user's row
// and of every admin's row, with the user's role read (ErrNotFound
// without one), then writes the audit entry; fn returns false for no
// change, and then no entry is written. Locking the admins' rows makes
// two collectors' concurrent demotions of the last two admins take turns:
// the second, after the first commits, sees one admin left.
func (s *Store) adminTx(ctx context.Context, name string, e store.AuditEntry, fn func(q qmarks, role string, otherAdmins int) (bool, error)) (bool, error) {
	changed := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		q := qmarks{tx}
		rows, err := q.Query(ctx, `SELECT name, role FROM users WHERE name = ? OR role = ? ORDER BY name FOR UPDATE`, name, store.RoleAdmin)
		if err != nil {
			return err
		}
		role, others := "", 0
		for rows.Next() {
			var n, r string
			if err := rows.Scan(&n, &r); err != nil {
				rows.Close()
				return err
			}
			switch {
			case n == name:
				role = r
			case r == store.RoleAdmin:
				others++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if role == "" {
			return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
		}
		if changed, err = fn(q, role, others); err != nil || !changed {
			return err
		}
		if e.Target == "" {
			e.Target = name
		}
		_, err = q.Exec(ctx, `INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`, nanos(e.At), e.Actor, e.Action, e.Target, e.Detail)
		return err
	})
	return changed, classify(err)
}

func onlyAdmin(name string) error {
	return fmt.Errorf("user %s is the only admin: %w", name, store.ErrLastAdmin)
}

// RemoveUser implements store.Admin.
func (s *Store) RemoveUser(ctx context.Context, name string, e store.AuditEntry) error {
	_, err := s.adminTx(ctx, name, e, func(q qmarks, role string, others int) (bool, error) {
		if role == store.RoleAdmin && others == 0 {
			return false, onlyAdmin(name)
		}
		if _, err := q.Exec(ctx, `DELETE FROM sessions WHERE "user" = ?`, name); err != nil {
			return false, err
		}
		_, err := q.Exec(ctx, `DELETE FROM users WHERE name = ?`, name)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("remove user: %w", err)
	}
	return nil
}

// SetUserRole implements store.Admin.
func (s *Store) SetUserRole(ctx context.Context, name, role string, e store.AuditEntry) (bool, error) {
	changed, err := s.adminTx(ctx, name, e, func(q qmarks, cur string, others int) (bool, error) {
		if cur == role {
			return false, nil
		}
		if cur == store.RoleAdmin && others == 0 {
			return false, onlyAdmin(name)
		}
		_, err := q.Exec(ctx, `UPDATE users SET role = ? WHERE name = ?`, role, name)
		return err == nil, err
	})
	if err != nil {
		return false, fmt.Errorf("set role: %w", err)
	}
	return changed, nil
}

// SetUserPassword implements store.Admin.
func (s *Store) SetUserPassword(ctx context.Context, name string, hash []byte, e store.AuditEntry) error {
	_, err := s.adminTx(ctx, name, e, func(q qmarks, _ string, _ int) (bool, error) {
		if _, err := q.Exec(ctx, `UPDATE users SET hash = ? WHERE name = ?`, hash, name); err != nil {
			return false, err
		}
		_, err := q.Exec(ctx, `DELETE FROM sessions WHERE "user" = ?`, name)
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
	_, err := s.adminTx(ctx, name, e, func(q qmarks, _ string, _ int) (bool, error) {
		if err := q.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE "user" = ? AND expires_at > ?`, name, nanos(e.At)).Scan(&live); err != nil {
			return false, err
		}
		_, err := q.Exec(ctx, `DELETE FROM sessions WHERE "user" = ?`, name)
		return err == nil, err
	})
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	return live, nil
}

// AuditQuery implements store.Admin, on the indexes of migration 007.
func (s *Store) AuditQuery(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	where, args := auditWhere(f)
	rows, err := s.qm().Query(ctx, `SELECT id, at, actor, action, target, detail FROM audit`+where+` ORDER BY id DESC LIMIT ?`, args...)
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
			// A range on the index ("C" collation: bytewise), not LIKE.
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
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, hostname FROM devices WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("hostnames: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, host string
		if err := rows.Scan(&id, &host); err != nil {
			return nil, fmt.Errorf("hostnames: %w", err)
		}
		out[id] = host
	}
	return out, rows.Err()
}

// TokenRollout implements store.Admin: the token's enrolments and
// re-binds are the audit entries each enrolment wrote in its own
// transaction (actor "token ID"), joined to the devices, with the agent
// version of each device's latest report (agents upgrade in place).
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
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (a.target) a.target, a.action, a.at, coalesce(nullif(p.agent_version, ''), d.agent_version)
		FROM audit a JOIN devices d ON d.id = a.target
		LEFT JOIN reports p ON p.device_id = d.id AND p.epoch = d.last_epoch AND p.sequence = d.last_sequence
		WHERE a.actor = $1 AND a.action IN ('device.enrol', 'device.rebind')
		ORDER BY a.target, a.at, a.id`, "token "+tokenID)
	if err != nil {
		return out, fmt.Errorf("rollout: %w", err)
	}
	type did struct {
		by, version string
		at          time.Time
	}
	what := map[string]did{}
	var ids []string
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
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("rollout: %w", err)
	}
	drows, err := s.pool.Query(ctx, deviceSelect+` WHERE d.id = ANY($1)`, ids)
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
func insertAudit(ctx context.Context, q querier, e store.AuditEntry, target string) error {
	if e.Target == "" {
		e.Target = target
	}
	return audit(ctx, q, e.At, e.Actor, e.Action, e.Target, e.Detail)
}

// RevokeDeviceAudited implements store.Admin.
func (s *Store) RevokeDeviceAudited(ctx context.Context, id string, retire bool, e store.AuditEntry) error {
	if err := s.revokeAudited(ctx, id, e.At, retire, &e); err != nil {
		return fmt.Errorf("revoke device: %w", classify(err))
	}
	return nil
}

// CreateWaiverAudited implements store.Admin. Other collectors learn of
// the waiver on commit (NotifyChange).
func (s *Store) CreateWaiverAudited(ctx context.Context, w store.Waiver, e store.AuditEntry) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := (qmarks{tx}).Exec(ctx, `INSERT INTO waivers (id, device_id, grp, rule_id, reason, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.DeviceID, w.Group, w.RuleID, w.Reason, w.CreatedBy, nanos(w.CreatedAt), nanos(w.ExpiresAt)); err != nil {
			return err
		}
		if err := insertAudit(ctx, tx, e, w.ID); err != nil {
			return err
		}
		return NotifyChange(ctx, tx, store.Change{Kind: store.ChangeWaiver, ID: w.ID})
	})
	if err != nil {
		return fmt.Errorf("create waiver: %w", classify(err))
	}
	return nil
}

// RevokeWaiverAudited implements store.Admin.
func (s *Store) RevokeWaiverAudited(ctx context.Context, id string, e store.AuditEntry) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res, err := (qmarks{tx}).Exec(ctx, `UPDATE waivers SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, nanos(e.At), id)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("waiver %s: %w", id, store.ErrNotFound)
		}
		if err := insertAudit(ctx, tx, e, id); err != nil {
			return err
		}
		return NotifyChange(ctx, tx, store.Change{Kind: store.ChangeWaiver, ID: id})
	})
	if err != nil {
		return fmt.Errorf("revoke waiver: %w", classify(err))
	}
	return nil
}

// CreateUserAudited implements store.Admin.
func (s *Store) CreateUserAudited(ctx context.Context, u store.User, e store.AuditEntry) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res, err := (qmarks{tx}).Exec(ctx, `INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			u.Name, u.Role, u.Hash, nanos(u.CreatedAt))
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("user %s: %w", u.Name, store.ErrExists)
		}
		return insertAudit(ctx, tx, e, u.Name)
	})
	if err != nil {
		return fmt.Errorf("create user: %w", classify(err))
	}
	return nil
}

// CreateTokenAudited implements store.Admin.
func (s *Store) CreateTokenAudited(ctx context.Context, t store.Token, e store.AuditEntry) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO tokens (id, hash, grp, uses, uses_left, created_at, expires_at, rebind_device) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.ID, t.Hash, t.Group, t.Uses, t.UsesLeft, nanos(t.CreatedAt), nanos(t.ExpiresAt), t.RebindDevice); err != nil {
			return err
		}
		return insertAudit(ctx, tx, e, t.ID)
	})
	if err != nil {
		return fmt.Errorf("create token: %w", classify(err))
	}
	return nil
}

// RevokeTokenAudited implements store.Admin.
func (s *Store) RevokeTokenAudited(ctx context.Context, id string, e store.AuditEntry) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, nanos(e.At), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
		}
		return insertAudit(ctx, tx, e, id)
	})
	if err != nil {
		return fmt.Errorf("revoke token: %w", classify(err))
	}
	return nil
}

// SetPolicyAudited implements store.Admin. Other collectors learn of the
// policy on commit (NotifyChange).
func (s *Store) SetPolicyAudited(ctx context.Context, p store.GroupPolicy, e store.AuditEntry) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO policies (grp, name, version, document, updated_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (grp) DO UPDATE SET name = excluded.name, version = excluded.version, document = excluded.document, updated_at = excluded.updated_at`,
			p.Group, p.Name, p.Version, p.Document, nanos(p.UpdatedAt)); err != nil {
			return err
		}
		if err := recordSetPolicy(ctx, tx, p); err != nil {
			return err
		}
		if err := insertAudit(ctx, tx, e, p.Group); err != nil {
			return err
		}
		return NotifyChange(ctx, tx, store.Change{Kind: store.ChangePolicy, ID: p.Group})
	})
	if err != nil {
		return fmt.Errorf("set policy: %w", classify(err))
	}
	return nil
}
