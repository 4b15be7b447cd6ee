package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wardhq/ward/collector/store"
)

// Users.

// CreateUser implements store.Dashboard.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	res, err := s.qm().Exec(ctx, `INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		u.Name, u.Role, u.Hash, nanos(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if res.RowsAffected() == 0 {
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
	rows, err := s.qm().Query(ctx, `SELECT name, role, hash, created_at FROM users `+where, args...)
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
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := (qmarks{tx}).Exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, nanos(se.CreatedAt)); err != nil {
			return err
		}
		_, err := (qmarks{tx}).Exec(ctx, `INSERT INTO sessions (id_hash, "user", csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
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
	err := s.qm().QueryRow(ctx, `SELECT s.id_hash, s."user", u.role, s.csrf, s.created_at, s.expires_at FROM sessions s JOIN users u ON u.name = s."user"
		WHERE s.id_hash = ? AND s.expires_at > ?`, idHash, nanos(now)).Scan(&se.IDHash, &se.User, &se.Role, &se.CSRF, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
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
	if _, err := s.qm().Exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Audit log.

// AddAudit implements store.Dashboard.
func (s *Store) AddAudit(ctx context.Context, e store.AuditEntry) error {
	_, err := s.qm().Exec(ctx, `INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		nanos(e.At), e.Actor, e.Action, e.Target, e.Detail)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Audit implements store.Dashboard.
func (s *Store) Audit(ctx context.Context, limit int) ([]store.AuditEntry, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.qm().Query(ctx, `SELECT id, at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?`, lim)
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
	_, err := s.qm().Exec(ctx, `INSERT INTO waivers (id, device_id, grp, rule_id, reason, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.DeviceID, w.Group, w.RuleID, w.Reason, w.CreatedBy, nanos(w.CreatedAt), nanos(w.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create waiver: %w", err)
	}
	return nil
}

// Waivers implements store.Dashboard.
func (s *Store) Waivers(ctx context.Context) ([]store.Waiver, error) {
	rows, err := s.qm().Query(ctx, `SELECT id, device_id, grp, rule_id, reason, created_by, created_at, expires_at, revoked_at FROM waivers ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("waivers: %w", err)
	}
	defer rows.Close()
	var out []store.Waiver
	for rows.Next() {
		var w store.Waiver
		var created, expires int64
		var revoked *int64
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
	res, err := s.qm().Exec(ctx, `UPDATE waivers SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, nanos(now), id)
	if err != nil {
		return fmt.Errorf("revoke waiver: %w", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("waiver %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Fleet views.

// statusExpr is Device.Status in SQL; its two parameters are
// now - staleAfter (nanoseconds) and nothing else.
const statusExpr = `CASE
	WHEN d.revoked_at IS NOT NULL THEN 'revoked'
	WHEN coalesce(d.last_seen, d.enrolled_at) < ? THEN 'stale'
	WHEN d.fail_n > 0 THEN 'failing'
	WHEN d.unknown_n > 0 OR d.pass_n = 0 THEN 'unknown'
	ELSE 'compliant' END`

func staleCut(now time.Time, staleAfter time.Duration) int64 { return nanos(now.Add(-staleAfter)) }

// FleetCounts implements store.Dashboard.
func (s *Store) FleetCounts(ctx context.Context, now time.Time, staleAfter time.Duration) (store.FleetCounts, error) {
	rows, err := s.qm().Query(ctx, `SELECT `+statusExpr+` AS st, count(*) FROM devices d GROUP BY st`, staleCut(now, staleAfter))
	if err != nil {
		return store.FleetCounts{}, fmt.Errorf("fleet counts: %w", err)
	}
	defer rows.Close()
	var c store.FleetCounts
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return store.FleetCounts{}, fmt.Errorf("fleet counts: %w", err)
		}
		switch store.DeviceStatus(st) {
		case store.StatusCompliant:
			c.Compliant = n
		case store.StatusFailing:
			c.Failing = n
		case store.StatusUnknown:
			c.Unknown = n
		case store.StatusStale:
			c.Stale = n
		case store.StatusRevoked:
			c.Revoked = n
		}
	}
	c.Devices = c.Compliant + c.Failing + c.Unknown + c.Stale
	return c, rows.Err()
}

// FailingByRule implements store.Dashboard.
func (s *Store) FailingByRule(ctx context.Context, now time.Time, staleAfter time.Duration) ([]store.RuleCount, error) {
	rows, err := s.qm().Query(ctx, `SELECT r.rule_id, max(r.title), count(*) AS n FROM rule_states r JOIN devices d ON d.id = r.device_id
		WHERE r.collector = 'FAIL' AND d.revoked_at IS NULL AND coalesce(d.last_seen, d.enrolled_at) >= ?
		GROUP BY r.rule_id ORDER BY n DESC, r.rule_id`, staleCut(now, staleAfter))
	if err != nil {
		return nil, fmt.Errorf("failing by rule: %w", err)
	}
	defer rows.Close()
	var out []store.RuleCount
	for rows.Next() {
		var c store.RuleCount
		if err := rows.Scan(&c.RuleID, &c.Title, &c.Devices); err != nil {
			return nil, fmt.Errorf("failing by rule: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PastDeadline implements store.Dashboard.
func (s *Store) PastDeadline(ctx context.Context, rules []store.DeadlineRule, now time.Time, limit int) ([]store.Overdue, int, error) {
	if len(rules) == 0 {
		return nil, 0, nil
	}
	// One indexed range per (group, rule), joined by UNION ALL: an OR of
	// them would make SQLite scan every rule state.
	var parts []string
	var args []any
	grace := map[[2]string]time.Duration{}
	for _, r := range rules {
		parts = append(parts, `SELECT d.id AS id, d.hostname AS hostname, d.grp AS grp, r.rule_id AS rule_id, r.title AS title, r.failing_since AS since
			FROM rule_states r JOIN devices d ON d.id = r.device_id
			WHERE r.rule_id = ? AND r.collector = 'FAIL' AND r.failing_since <= ? AND d.grp = ? AND d.revoked_at IS NULL`)
		args = append(args, r.RuleID, nanos(now.Add(-r.Grace)), r.Group)
		grace[[2]string{r.Group, r.RuleID}] = r.Grace
	}
	union := strings.Join(parts, " UNION ALL ")
	var total int
	if err := s.qm().QueryRow(ctx, `SELECT count(*) FROM (`+union+`) u`, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("past deadline: %w", err)
	}
	rows, err := s.qm().Query(ctx, `SELECT id, hostname, grp, rule_id, title, since FROM (`+union+`) u ORDER BY since, id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("past deadline: %w", err)
	}
	defer rows.Close()
	var out []store.Overdue
	for rows.Next() {
		var o store.Overdue
		var since int64
		if err := rows.Scan(&o.DeviceID, &o.Hostname, &o.Group, &o.RuleID, &o.Title, &since); err != nil {
			return nil, 0, fmt.Errorf("past deadline: %w", err)
		}
		o.FailingSince = fromNanos(since)
		o.Deadline = o.FailingSince.Add(grace[[2]string{o.Group, o.RuleID}])
		out = append(out, o)
	}
	return out, total, rows.Err()
}

// Groups implements store.Dashboard.
func (s *Store) Groups(ctx context.Context) ([]string, error) {
	rows, err := s.qm().Query(ctx, `SELECT DISTINCT grp FROM devices ORDER BY grp`)
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// ListDevices implements store.Dashboard.
func (s *Store) ListDevices(ctx context.Context, q store.DeviceQuery) ([]store.Device, int, error) {
	var conds []string
	var args []any
	cut := staleCut(q.Now, q.StaleAfter)
	switch q.Status {
	case "":
	case store.StatusRevoked:
		conds = append(conds, `d.revoked_at IS NOT NULL`)
	case store.StatusStale:
		conds = append(conds, `d.revoked_at IS NULL AND coalesce(d.last_seen, d.enrolled_at) < ?`)
		args = append(args, cut)
	case store.StatusFailing:
		conds = append(conds, `d.revoked_at IS NULL AND coalesce(d.last_seen, d.enrolled_at) >= ? AND d.fail_n > 0`)
		args = append(args, cut)
	case store.StatusUnknown:
		conds = append(conds, `d.revoked_at IS NULL AND coalesce(d.last_seen, d.enrolled_at) >= ? AND d.fail_n = 0 AND (d.unknown_n > 0 OR d.pass_n = 0)`)
		args = append(args, cut)
	case store.StatusCompliant:
		conds = append(conds, `d.revoked_at IS NULL AND coalesce(d.last_seen, d.enrolled_at) >= ? AND d.fail_n = 0 AND d.unknown_n = 0 AND d.pass_n > 0`)
		args = append(args, cut)
	default:
		return nil, 0, fmt.Errorf("list devices: unknown status %q", q.Status)
	}
	if q.RuleID != "" {
		conds = append(conds, `d.id IN (SELECT device_id FROM rule_states WHERE rule_id = ? AND collector = 'FAIL')`)
		args = append(args, q.RuleID)
	}
	if q.Group != "" {
		conds = append(conds, `d.grp = ?`)
		args = append(args, q.Group)
	}
	if q.OS != "" {
		conds = append(conds, `d.os_name = ?`)
		args = append(args, q.OS)
	}
	if q.CertExpiring {
		conds = append(conds, `d.revoked_at IS NULL AND d.cert_not_after <= ?`)
		args = append(args, nanos(q.Now.Add(store.CertWarning)))
	}
	if q.Search != "" {
		conds = append(conds, `d.hostname ILIKE ? ESCAPE '\'`)
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Search)
		args = append(args, "%"+esc+"%")
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, " AND ")
	}
	var total int
	if err := s.qm().QueryRow(ctx, `SELECT count(*) FROM devices d`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("list devices: %w", err)
	}
	key, dir := strings.TrimPrefix(q.Sort, "-"), "ASC"
	if strings.HasPrefix(q.Sort, "-") {
		dir = "DESC"
	}
	var order string
	switch key {
	case "", store.SortHostname:
		order = `lower(d.hostname) ` + dir + `, d.id`
	case store.SortLastSeen:
		order = `d.last_seen ` + dir + nullsLow(dir) + `, d.id`
	case store.SortGroup:
		order = `d.grp ` + dir + `, lower(d.hostname), d.id`
	case store.SortFail:
		order = `d.fail_n ` + dir + `, lower(d.hostname), d.id`
	default:
		return nil, 0, fmt.Errorf("list devices: unknown sort %q", q.Sort)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	rows, err := s.qm().Query(ctx, deviceSelect+where+` ORDER BY `+order+` LIMIT ? OFFSET ?`, append(args, limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list devices: %w", err)
	}
	ds, err := scanDevices(rows)
	if err != nil {
		return nil, 0, fmt.Errorf("list devices: %w", err)
	}
	return ds, total, nil
}

// Trend implements store.Dashboard. It replays the transitions in time
// order, keeping per device its counts of PASS, FAIL and UNKNOWN rules.
func (s *Store) Trend(ctx context.Context, to time.Time, days int) ([]store.TrendPoint, error) {
	if days <= 0 {
		return nil, nil
	}
	y, m, d := to.UTC().Date()
	end := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	start := end.AddDate(0, 0, -days)
	rows, err := s.qm().Query(ctx, `SELECT t.device_id, t.from_v, t.to_v, t.at FROM transitions t JOIN devices d ON d.id = t.device_id
		WHERE t.at < ? AND d.revoked_at IS NULL ORDER BY t.at, t.id`, nanos(end))
	if err != nil {
		return nil, fmt.Errorf("trend: %w", err)
	}
	defer rows.Close()
	type counts struct{ pass, fail, unknown int }
	per := map[string]*counts{}
	var compliant, failing, unknown int
	class := func(c *counts) *int {
		switch {
		case c.fail > 0:
			return &failing
		case c.unknown > 0 || c.pass == 0:
			return &unknown
		}
		return &compliant
	}
	bump := func(c *counts, v string, by int) {
		switch store.Verdict(v) {
		case store.Pass:
			c.pass += by
		case store.Fail:
			c.fail += by
		case store.Unknown:
			c.unknown += by
		}
	}
	out := make([]store.TrendPoint, 0, days)
	next := start.AddDate(0, 0, 1)
	flush := func(before int64) {
		for len(out) < days && nanos(next) <= before {
			out = append(out, store.TrendPoint{Day: next.AddDate(0, 0, -1), Compliant: compliant, Failing: failing, Unknown: unknown})
			next = next.AddDate(0, 0, 1)
		}
	}
	for rows.Next() {
		var dev, from, toV string
		var at int64
		if err := rows.Scan(&dev, &from, &toV, &at); err != nil {
			return nil, fmt.Errorf("trend: %w", err)
		}
		flush(at)
		c, ok := per[dev]
		if ok {
			*class(c)--
		} else {
			c = &counts{}
			per[dev] = c
		}
		bump(c, from, -1)
		bump(c, toV, 1)
		*class(c)++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trend: %w", err)
	}
	flush(nanos(end))
	return out, nil
}

// LatestFacts implements store.Dashboard.
func (s *Store) LatestFacts(ctx context.Context, group string, fn func(store.LatestFacts) error) error {
	rows, err := s.qm().Query(ctx, `SELECT d.id, d.hostname, p.facts, p.facts_epoch IS NOT NULL, h.facts, h.results,
		coalesce((SELECT string_agg(rule_id, ' ') FROM rule_states r WHERE r.device_id = d.id AND r.collector = 'FAIL'), '')
		FROM devices d JOIN reports p ON p.device_id = d.id AND p.epoch = d.last_epoch AND p.sequence = d.last_sequence`+heartbeatJoin+`
		WHERE d.grp = ? AND d.revoked_at IS NULL ORDER BY d.hostname, d.id`, group)
	if err != nil {
		return fmt.Errorf("latest facts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var lf store.LatestFacts
		var failing string
		var ref bool
		var hfacts []byte
		var hresults *string
		if err := rows.Scan(&lf.DeviceID, &lf.Hostname, &lf.Facts, &ref, &hfacts, &hresults, &failing); err != nil {
			return fmt.Errorf("latest facts: %w", err)
		}
		lf.Facts, _ = whole(ref, lf.Facts, "", hfacts, hresults)
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

// StateAsOf implements store.Dashboard. A rule's "since" is the time of
// its last verdict change at or before that report.
func (s *Store) StateAsOf(ctx context.Context, t time.Time, fn func(store.StateRow) error) error {
	at := nanos(t)
	rows, err := s.qm().Query(ctx, `SELECT d.id, d.hostname, d.grp, p.sequence, p.received_at, p.policy_name, p.policy_version, p.results,
		p.facts_epoch IS NOT NULL, h.facts, h.results
		FROM devices d JOIN reports p ON p.device_id = d.id`+heartbeatJoin+`
		WHERE d.enrolled_at <= ? AND (d.revoked_at IS NULL OR d.revoked_at > ?)
		AND (p.epoch, p.sequence) = (SELECT epoch, sequence FROM reports q WHERE q.device_id = d.id AND q.received_at <= ? ORDER BY epoch DESC, sequence DESC LIMIT 1)
		ORDER BY d.hostname, d.id`, at, at, at)
	if err != nil {
		return fmt.Errorf("state as of: %w", err)
	}
	type rep struct {
		dev, host, grp, policy, results string
		seq, received                   int64
		version                         int
	}
	var reps []rep
	for rows.Next() {
		var r rep
		var ref bool
		var hfacts []byte
		var hresults *string
		if err := rows.Scan(&r.dev, &r.host, &r.grp, &r.seq, &r.received, &r.policy, &r.version, &r.results, &ref, &hfacts, &hresults); err != nil {
			rows.Close()
			return fmt.Errorf("state as of: %w", err)
		}
		_, r.results = whole(ref, nil, r.results, hfacts, hresults)
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
		trows, err := s.qm().Query(ctx, `SELECT rule_id, max(at) FROM transitions WHERE device_id = ? AND sequence <= ? GROUP BY rule_id`, r.dev, r.seq)
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
				Observed: res.Observed, Expected: res.Expected, ReportedAt: fromNanos(r.received),
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

// nullsLow sorts NULLs as SQLite does, below every value.
func nullsLow(dir string) string {
	if dir == "DESC" {
		return " NULLS LAST"
	}
	return " NULLS FIRST"
}

// qmarks runs SQL written with ? placeholders, numbering them $1, $2, …
// in order, so the dashboard's dynamic queries read as the SQLite store's.
type qmarks struct{ q querier }

func (s *Store) qm() qmarks { return qmarks{s.pool} }

func numbered(sql string) string {
	var b strings.Builder
	n := 0
	for _, c := range sql {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (m qmarks) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return m.q.Query(ctx, numbered(sql), args...)
}

func (m qmarks) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return m.q.QueryRow(ctx, numbered(sql), args...)
}

func (m qmarks) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return m.q.Exec(ctx, numbered(sql), args...)
}
