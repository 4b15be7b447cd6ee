package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

var _ store.Dashboard = (*Store)(nil)

// Users.

// CreateUser implements store.Dashboard.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	n, err := s.exec(ctx, `INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		u.Name, u.Role, u.Hash, nanos(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("user %s: %w", u.Name, store.ErrExists)
	}
	return nil
}

// User implements store.Dashboard.
func (s *Store) User(ctx context.Context, name string) (store.User, error) {
	us, err := s.users(ctx, `WHERE name = ?`, name)
	if err != nil {
		return store.User{}, err
	}
	if len(us) == 0 {
		return store.User{}, fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	}
	return us[0], nil
}

// Users implements store.Dashboard.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	return s.users(ctx, `ORDER BY name`)
}

func (s *Store) users(ctx context.Context, where string, args ...any) ([]store.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, hash, created_at FROM users `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		var u store.User
		var created int64
		if err := rows.Scan(&u.Name, &u.Role, &u.Hash, &created); err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		u.CreatedAt = fromNanos(created)
		out = append(out, u)
	}
	return out, rows.Err()
}

// Sessions.

// CreateSession implements store.Dashboard. It also deletes expired
// sessions, so the table does not grow without bound.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, nanos(se.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, user, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			se.IDHash, se.User, se.CSRF, nanos(se.CreatedAt), nanos(se.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session implements store.Dashboard.
func (s *Store) Session(ctx context.Context, idHash []byte, now time.Time) (store.Session, error) {
	var se store.Session
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT s.id_hash, s.user, u.role, s.csrf, s.created_at, s.expires_at FROM sessions s JOIN users u ON u.name = s.user
		WHERE s.id_hash = ? AND s.expires_at > ?`, idHash, nanos(now)).Scan(&se.IDHash, &se.User, &se.Role, &se.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("session: %w", err)
	}
	se.CreatedAt, se.ExpiresAt = fromNanos(created), fromNanos(expires)
	return se, nil
}

// DeleteSession implements store.Dashboard.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Audit log.

// AddAudit implements store.Dashboard.
func (s *Store) AddAudit(ctx context.Context, e store.AuditEntry) error {
	_, err := s.exec(ctx, `INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		nanos(e.At), e.Actor, e.Action, e.Target, e.Detail)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Audit implements store.Dashboard.
func (s *Store) Audit(ctx context.Context, limit int) ([]store.AuditEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Waivers.

// CreateWaiver implements store.Dashboard.
func (s *Store) CreateWaiver(ctx context.Context, w store.Waiver) error {
	_, err := s.exec(ctx, `INSERT INTO waivers (id, device_id, grp, rule_id, reason, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.DeviceID, w.Group, w.RuleID, w.Reason, w.CreatedBy, nanos(w.CreatedAt), nanos(w.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create waiver: %w", err)
	}
	return nil
}

// Waivers implements store.Dashboard.
func (s *Store) Waivers(ctx context.Context) ([]store.Waiver, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, device_id, grp, rule_id, reason, created_by, created_at, expires_at, revoked_at FROM waivers ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("waivers: %w", err)
	}
	defer rows.Close()
	var out []store.Waiver
	for rows.Next() {
		var w store.Waiver
		var created, expires int64
		var revoked sql.NullInt64
		if err := rows.Scan(&w.ID, &w.DeviceID, &w.Group, &w.RuleID, &w.Reason, &w.CreatedBy, &created, &expires, &revoked); err != nil {
			return nil, fmt.Errorf("waivers: %w", err)
		}
		w.CreatedAt, w.ExpiresAt, w.RevokedAt = fromNanos(created), fromNanos(expires), fromNull(revoked)
		out = append(out, w)
	}
	return out, rows.Err()
}

// RevokeWaiver implements store.Dashboard.
func (s *Store) RevokeWaiver(ctx context.Context, id string, now time.Time) error {
	n, err := s.exec(ctx, `UPDATE waivers SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, nanos(now), id)
	if err != nil {
		return fmt.Errorf("revoke waiver: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("waiver %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Fleet views: see fleet.go.

// LatestFacts implements store.Dashboard.
func (s *Store) LatestFacts(ctx context.Context, group string, fn func(store.LatestFacts) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, d.hostname, `+factsOf("p")+`,
		coalesce((SELECT group_concat(rule_id, ' ') FROM rule_states r WHERE r.device_id = d.id AND r.collector = 'FAIL'), '')
		FROM devices d JOIN reports p ON p.device_id = d.id AND p.epoch = d.last_epoch AND p.sequence = d.last_sequence
		WHERE d.grp = ? AND d.revoked_at IS NULL ORDER BY d.hostname, d.id`, group)
	if err != nil {
		return fmt.Errorf("latest facts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var lf store.LatestFacts
		var failing string
		if err := rows.Scan(&lf.DeviceID, &lf.Hostname, &lf.Facts, &failing); err != nil {
			return fmt.Errorf("latest facts: %w", err)
		}
		lf.Failing = map[string]bool{}
		for _, id := range strings.Fields(failing) {
			lf.Failing[id] = true
		}
		if err := fn(lf); err != nil {
			return err
		}
	}
	return rows.Err()
}

// StateAsOf implements store.Dashboard: per device the newest report by
// (epoch, sequence) observed at or before t (reports_observed finds
// them). A rule's "since" is the time of its last verdict change at or
// before that report.
func (s *Store) StateAsOf(ctx context.Context, t time.Time, fn func(store.StateRow) error) error {
	at := nanos(t)
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, d.hostname, d.grp, d.revoked_at, p.sequence, p.observed_at, p.received_at, p.policy_name, p.policy_version, `+resultsOf("p")+`
		FROM devices d JOIN reports p ON p.device_id = d.id
		WHERE d.enrolled_at <= ?
		AND (p.epoch, p.sequence) = (SELECT epoch, sequence FROM reports q WHERE q.device_id = d.id AND q.observed_at <= ? ORDER BY epoch DESC, sequence DESC LIMIT 1)
		ORDER BY d.hostname, d.id`, at, at)
	if err != nil {
		return fmt.Errorf("state as of: %w", err)
	}
	type rep struct {
		dev, host, grp, policy, results string
		seq, observed, received         int64
		version                         int
		revoked                         sql.NullInt64
	}
	var reps []rep
	for rows.Next() {
		var r rep
		if err := rows.Scan(&r.dev, &r.host, &r.grp, &r.revoked, &r.seq, &r.observed, &r.received, &r.policy, &r.version, &r.results); err != nil {
			rows.Close()
			return fmt.Errorf("state as of: %w", err)
		}
		reps = append(reps, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("state as of: %w", err)
	}
	for _, r := range reps {
		var results []store.RuleResult
		if err := json.Unmarshal([]byte(r.results), &results); err != nil {
			return fmt.Errorf("state as of: decode results: %w", err)
		}
		since := map[string]time.Time{}
		trows, err := s.db.QueryContext(ctx, `SELECT rule_id, max(at) FROM transitions WHERE device_id = ? AND sequence <= ? GROUP BY rule_id`, r.dev, r.seq)
		if err != nil {
			return fmt.Errorf("state as of: %w", err)
		}
		for trows.Next() {
			var id string
			var when int64
			if err := trows.Scan(&id, &when); err != nil {
				trows.Close()
				return fmt.Errorf("state as of: %w", err)
			}
			since[id] = fromNanos(when)
		}
		trows.Close()
		sort.SliceStable(results, func(i, j int) bool { return results[i].RuleID < results[j].RuleID })
		for _, res := range results {
			if res.Collector == "" {
				continue // a rule only the agent's policy had: not in effect
			}
			row := store.StateRow{
				DeviceID: r.dev, Hostname: r.host, Group: r.grp, RuleID: res.RuleID, Title: res.Title,
				PolicyName: r.policy, PolicyVersion: r.version, Status: res.Collector,
				Observed: res.Observed, Expected: res.Expected, ReportedAt: fromNanos(r.observed), ReceivedAt: fromNanos(r.received),
				Severity: res.Severity, Reason: res.Reason,
				GraceConnected: res.GraceConnected, GraceUsed: res.GraceUsed, DeadlinePaused: res.DeadlinePaused,
			}
			if rv := fromNull(r.revoked); rv != nil && !rv.After(t) {
				row.RevokedAt = rv
			}
			if w, ok := since[res.RuleID]; ok {
				row.Since = &w
			}
			if err := fn(row); err != nil {
				return err
			}
		}
	}
	return nil
}
