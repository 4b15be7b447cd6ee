package sqlite

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
	"github.com/wardhq/ward/collector/store/batch"
)

// Store is a store.Store on one SQLite file.
type Store struct {
	db     *sql.DB // reads: a bounded pool (Options.MaxReaders)
	w      *sql.DB // the writer's one connection (writer.go)
	writer *batch.Writer[job]
	stmts  map[string]*sql.Stmt // prepared on w before the writer uses it, by query (writer.go)
	reads  sync.Map             // query → *sql.Stmt prepared on db (writer.go)
	path   string
	health health

	closing   chan struct{} // closed by Close
	optimized chan struct{} // closed when optimizeLoop ends
}

var (
	_ store.Store             = (*Store)(nil)
	_ store.ReportStateReader = (*Store)(nil)
)

// Open opens (creating if needed) the database at path and migrates it to
// the current schema; see OpenWith.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// SchemaVersion is the schema version this build migrates to.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	for i, m := range migrations {
		version := i + 1
		err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return fmt.Errorf("version %d: %w", version, err)
			}
			if step := migrationSteps[version]; step != nil {
				if err := step(ctx, tx); err != nil {
					return fmt.Errorf("version %d: %w", version, err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return err
		}
	}
	var newest int
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return err
	}
	if newest > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this collector's %d", newest, len(migrations))
	}
	return nil
}

// Close stops the background health check and statistics, runs the
// writes already queued and closes the database.
func (s *Store) Close() error {
	s.health.stop()
	if s.closing != nil {
		close(s.closing)
		<-s.optimized
	}
	s.writer.Close()
	s.closeStmts()
	return errors.Join(s.w.Close(), s.db.Close())
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// nanos is t in nanoseconds since 1970, saturated at the int64 range
// (years 1677 to 2262) instead of wrapping around.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromNull(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

// Tokens.

// CreateToken implements store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	_, err := s.exec(ctx, `INSERT INTO tokens (id, hash, grp, uses, uses_left, created_at, expires_at, rebind_device) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Group, t.Uses, t.UsesLeft, nanos(t.CreatedAt), nanos(t.ExpiresAt), t.RebindDevice)
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// Tokens implements store.Store.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, hash, grp, uses, uses_left, created_at, expires_at, revoked_at, rebind_device FROM tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		var t store.Token
		var created, expires int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Hash, &t.Group, &t.Uses, &t.UsesLeft, &created, &expires, &revoked, &t.RebindDevice); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromNanos(created), fromNanos(expires), fromNull(revoked)
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken implements store.Store.
func (s *Store) RevokeToken(ctx context.Context, id string, now time.Time) error {
	n, err := s.exec(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, nanos(now), id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Enrolment's statements: prepared on the write connection with the
// reports' (prepareHot, enrolWrites) and on the read pool when first
// used, so that an enrolment parses none of them.
const (
	qEnrolToken  = `SELECT id, hash, grp, uses_left, expires_at, revoked_at, rebind_device FROM tokens WHERE hash = ?`
	qUseToken    = `UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?`
	qEnrolDevice = `INSERT INTO devices (id, grp, hostname, platform, os_name, os_version, architecture, machine_id, agent_version, enrolled_at, cert_serial, cert_not_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qAudit       = `INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`
	qDuplicates  = `SELECT id FROM devices WHERE grp = ? AND machine_id = ? AND id != ? AND revoked_at IS NULL ORDER BY enrolled_at, id`
	qDevice      = deviceSelect + ` WHERE d.id = ?`
	qEnrolEpoch  = `UPDATE devices SET epoch = epoch + 1, epoch_started_at = ? WHERE id = ? RETURNING epoch`
)

// enrolWrites are the enrolment's statements that prepareHot prepares.
var enrolWrites = []string{qEnrolToken, qUseToken, qEnrolDevice, qAudit, qDuplicates, qDevice, qEnrolEpoch}

// enrolToken is the token row an enrolment reads.
type enrolToken struct {
	id, group, rebindDevice string
}

// usableToken looks the token of p up and says why it cannot enrol
// (store.ErrTokenInvalid, Revoked, Expired, UsedUp), if so.
func usableToken(ctx context.Context, q rowQuerier, p store.EnrollParams) (enrolToken, error) {
	var (
		t        enrolToken
		hash     []byte
		usesLeft int
		expires  int64
		revoked  sql.NullInt64
	)
	err := q.QueryRowContext(ctx, qEnrolToken, p.TokenHash).
		Scan(&t.id, &hash, &t.group, &usesLeft, &expires, &revoked, &t.rebindDevice)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(hash, p.TokenHash) != 1) {
		return enrolToken{}, store.ErrTokenInvalid
	}
	if err != nil {
		return enrolToken{}, err
	}
	switch {
	case revoked.Valid:
		return enrolToken{}, store.ErrTokenRevoked
	case !p.Now.Before(fromNanos(expires)):
		return enrolToken{}, store.ErrTokenExpired
	case usesLeft <= 0:
		return enrolToken{}, store.ErrTokenUsedUp
	}
	return t, nil
}

// Enroll implements store.Store. The token is looked up, and the device
// picked, read-only first, so a wrong, expired, used-up or revoked token
// is refused without a write, and the certificate is signed before the
// write: no signature is made while the writer holds the write lock. The
// write transaction (a job of the store's writer) then checks the token
// again; when it picks another device than the read did (a re-bind
// target revoked meanwhile), the certificate is signed again for it.
func (s *Store) Enroll(ctx context.Context, p store.EnrollParams, sign func(string) (store.Issued, error)) (store.Enrolment, error) {
	t, err := usableToken(ctx, preparedReads{s}, p)
	if err != nil {
		return store.Enrolment{}, fmt.Errorf("enroll: %w", err)
	}
	deviceID, _, by, err := rebindTarget(ctx, s.db, p, t.group, t.rebindDevice)
	if err != nil {
		return store.Enrolment{}, fmt.Errorf("enroll: %w", err)
	}
	if by == "" {
		deviceID = p.NewID
	}
	for range maxResign + 1 {
		issued, err := sign(deviceID)
		if err != nil {
			return store.Enrolment{}, fmt.Errorf("enroll: sign certificate: %w", err)
		}
		out, picked, err := s.enrollWith(ctx, p, deviceID, issued)
		if errors.Is(err, errResign) {
			deviceID = picked
			continue
		}
		if err != nil {
			return store.Enrolment{}, fmt.Errorf("enroll: %w", err)
		}
		return out, nil
	}
	return store.Enrolment{}, fmt.Errorf("enroll: the device to enrol changed %d times while signing", maxResign+1)
}

// errResign: the write transaction picked another device than the
// certificate was signed for.
var errResign = errors.New("device changed while signing")

// maxResign bounds how often Enroll signs again for a device that changed.
const maxResign = 3

// enrollWith is Enroll's write transaction with the certificate signed
// for deviceID; errResign (and the device it picked) when that is not
// the device the transaction picks.
func (s *Store) enrollWith(ctx context.Context, p store.EnrollParams, deviceID string, issued store.Issued) (store.Enrolment, string, error) {
	var out store.Enrolment
	var picked string
	err := s.tx(ctx, func(ctx context.Context, sqlTx *sql.Tx) error {
		tx := ptx{sqlTx, s}
		t, err := usableToken(ctx, tx, p)
		if err != nil {
			return err
		}
		id, group, rebindDevice := t.id, t.group, t.rebindDevice
		target, oldSerial, by, err := rebindTarget(ctx, tx, p, group, rebindDevice)
		if err != nil {
			return err
		}
		if by == "" {
			target = p.NewID
		}
		if target != deviceID {
			picked = target
			return errResign
		}
		out = store.Enrolment{Issued: issued}
		if by != "" {
			out.Rebound, out.RebindBy = true, by
		}
		if _, err := tx.ExecContext(ctx, qUseToken, id); err != nil {
			return err
		}
		// A new device's id is fresh (the insert fails if it is not), so
		// the aggregates gain a device that was not there: one without a
		// verdict, seen at its enrolment (as the dashboard counts it).
		before := aggregate.Snapshot{ID: deviceID}
		after := aggregate.Snapshot{ID: deviceID, Exists: true, Group: group, Class: aggregate.ClassOf(false, 0, 0, 0), Seen: nanos(p.Now)}
		if out.Rebound {
			if before, err = loadSnapshot(ctx, sqlTx, deviceID); err != nil {
				return err
			}
		}
		i := p.Info
		if out.Rebound {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO revoked_serials (serial, device_id, revoked_at) VALUES (?, ?, ?)`, oldSerial, deviceID, nanos(p.Now)); err != nil {
				return err
			}
			if err := dropPending(ctx, sqlTx, deviceID, p.Now); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE devices SET hostname = ?, platform = ?, os_name = ?, os_version = ?, architecture = ?, agent_version = ?, cert_serial = ?, cert_not_after = ? WHERE id = ?`,
				i.Hostname, i.Platform, i.OSName, i.OSVersion, i.Architecture, i.AgentVersion, issued.Serial, nanos(issued.NotAfter), deviceID)
		} else {
			_, err = tx.ExecContext(ctx, qEnrolDevice,
				deviceID, group, i.Hostname, i.Platform, i.OSName, i.OSVersion, i.Architecture, i.MachineID, i.AgentVersion, nanos(p.Now), issued.Serial, nanos(issued.NotAfter))
		}
		if err != nil {
			return err
		}
		if out.Duplicates, err = auditEnrolment(ctx, tx, p, id, group, deviceID, oldSerial, out.RebindBy); err != nil {
			return err
		}
		if out.Rebound {
			err = trackAggregates(ctx, sqlTx, before, p.Now)
		} else {
			err = applyAggregates(ctx, sqlTx, before, after, p.Now)
		}
		if err != nil {
			return err
		}
		if p.StartEpoch {
			var epoch int64
			if err := tx.QueryRowContext(ctx, qEnrolEpoch, nanos(p.Now), deviceID).Scan(&epoch); err != nil {
				return err
			}
			out.Epoch = uint64(epoch)
		}
		out.Device, err = deviceQuery(ctx, tx, deviceID)
		return err
	})
	return out, picked, err
}

// Devices.

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rowQuerier is a *sql.DB or a *sql.Tx, for a lookup of one row.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// deviceSelect reads the verdict counts SaveReport keeps on the device
// row (from the results in hand, never by counting rule states).
const deviceSelect = `SELECT d.id, d.grp, d.hostname, d.platform, d.os_name, d.os_version, d.architecture, d.machine_id, d.agent_version,
	d.enrolled_at, d.last_seen, d.cert_serial, d.cert_not_after, d.revoked_at, d.last_sequence,
	d.pass_n, d.fail_n, d.unknown_n, coalesce(d.next_cert_serial, '')
	FROM devices d`

func scanDevices(rows *sql.Rows) ([]store.Device, error) {
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		var d store.Device
		var enrolled, notAfter int64
		var lastSeen, revoked sql.NullInt64
		if err := rows.Scan(&d.ID, &d.Group, &d.Hostname, &d.Platform, &d.OSName, &d.OSVersion, &d.Architecture, &d.MachineID, &d.AgentVersion,
			&enrolled, &lastSeen, &d.CertSerial, &notAfter, &revoked, &d.LastSequence, &d.Pass, &d.Fail, &d.Unknown, &d.NextCertSerial); err != nil {
			return nil, err
		}
		d.EnrolledAt, d.CertNotAfter = fromNanos(enrolled), fromNanos(notAfter)
		d.LastSeen, d.RevokedAt = fromNull(lastSeen), fromNull(revoked)
		out = append(out, d)
	}
	return out, rows.Err()
}

func deviceQuery(ctx context.Context, q querier, id string) (store.Device, error) {
	rows, err := q.QueryContext(ctx, qDevice, id)
	if err != nil {
		return store.Device{}, err
	}
	ds, err := scanDevices(rows)
	if err != nil {
		return store.Device{}, err
	}
	if len(ds) == 0 {
		return store.Device{}, fmt.Errorf("device %s: %w", id, store.ErrNotFound)
	}
	return ds[0], nil
}

// Device implements store.Store.
func (s *Store) Device(ctx context.Context, id string) (store.Device, error) {
	return deviceQuery(ctx, preparedReads{s}, id)
}

// preparedReads is a querier whose statements are prepared (s.query).
type preparedReads struct{ s *Store }

func (p preparedReads) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return p.s.query(ctx, q, args...)
}

func (p preparedReads) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return p.s.queryRow(ctx, q, args...)
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context) ([]store.Device, error) {
	rows, err := s.db.QueryContext(ctx, deviceSelect+` ORDER BY d.id`)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	ds, err := scanDevices(rows)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return ds, nil
}

// RevokeDevice implements store.Store.
func (s *Store) RevokeDevice(ctx context.Context, id string, now time.Time) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return revokeWith(ctx, tx, id, now, `revoked_at = coalesce(revoked_at, ?1)`)
	})
	if err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	return nil
}

// qSerialRevoked looks a certificate serial up.
const qSerialRevoked = `SELECT count(*) FROM revoked_serials WHERE serial = ?`

// SerialRevoked implements store.Store.
func (s *Store) SerialRevoked(ctx context.Context, serial string) (bool, error) {
	var n int
	if err := s.queryRow(ctx, qSerialRevoked, serial).Scan(&n); err != nil {
		return false, fmt.Errorf("check serial: %w", err)
	}
	return n > 0, nil
}

// Reports: see reports.go.

// qFailingSince reads a device's failing rules.
const qFailingSince = `SELECT rule_id, failing_since FROM rule_states INDEXED BY ` + ruleStatesPK + ` WHERE device_id = ? AND failing_since IS NOT NULL`

// FailingSince implements store.Store.
func (s *Store) FailingSince(ctx context.Context, deviceID string) (map[string]time.Time, error) {
	rows, err := s.query(ctx, qFailingSince, deviceID)
	if err != nil {
		return nil, fmt.Errorf("failing since: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var since int64
		if err := rows.Scan(&id, &since); err != nil {
			return nil, fmt.Errorf("failing since: %w", err)
		}
		out[id] = fromNanos(since)
	}
	return out, rows.Err()
}

// RuleStates implements store.Store.
func (s *Store) RuleStates(ctx context.Context, deviceID string) ([]store.RuleState, error) {
	// Every rule state of a device was set by its newest report, whose
	// time and sequence the device row keeps (only changed rows are
	// rewritten).
	rows, err := s.db.QueryContext(ctx, `SELECT r.rule_id, r.title, r.family, r.severity, r.collector, r.agent, r.observed, r.expected, r.reason, r.failing_since,
		coalesce(d.states_at, r.updated_at), coalesce(d.states_sequence, r.sequence), r.grace_connected, r.grace_used, r.deadline_paused
		FROM rule_states r INDEXED BY `+ruleStatesPK+` JOIN devices d ON d.id = r.device_id WHERE r.device_id = ? ORDER BY r.rule_id`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("rule states: %w", err)
	}
	defer rows.Close()
	var out []store.RuleState
	for rows.Next() {
		var st store.RuleState
		var coll, agent string
		var since sql.NullInt64
		var updated, seq, used int64
		if err := rows.Scan(&st.RuleID, &st.Title, &st.Family, &st.Severity, &coll, &agent, &st.Observed, &st.Expected, &st.Reason, &since, &updated, &seq,
			&st.GraceConnected, &used, &st.DeadlinePaused); err != nil {
			return nil, fmt.Errorf("rule states: %w", err)
		}
		st.Collector, st.Agent = store.Verdict(coll), store.Verdict(agent)
		st.FailingSince, st.UpdatedAt, st.Sequence = fromNull(since), fromNanos(updated), uint64(seq)
		st.GraceUsed = time.Duration(used)
		out = append(out, st)
	}
	return out, rows.Err()
}

// Transitions implements store.Store.
func (s *Store) Transitions(ctx context.Context, deviceID string) ([]store.Transition, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device_id, rule_id, from_v, to_v, at, sequence, received_at FROM transitions WHERE device_id = ? ORDER BY id`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("transitions: %w", err)
	}
	defer rows.Close()
	var out []store.Transition
	for rows.Next() {
		var t store.Transition
		var from, to string
		var at, seq int64
		var received sql.NullInt64
		if err := rows.Scan(&t.DeviceID, &t.RuleID, &from, &to, &at, &seq, &received); err != nil {
			return nil, fmt.Errorf("transitions: %w", err)
		}
		t.From, t.To, t.At, t.Sequence, t.ReceivedAt = store.Verdict(from), store.Verdict(to), fromNanos(at), uint64(seq), fromNull(received)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Policies.

// SetPolicy implements store.Store.
func (s *Store) SetPolicy(ctx context.Context, p store.GroupPolicy) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO policies (grp, name, version, document, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (grp) DO UPDATE SET name = excluded.name, version = excluded.version, document = excluded.document, updated_at = excluded.updated_at`,
			p.Group, p.Name, p.Version, p.Document, nanos(p.UpdatedAt)); err != nil {
			return err
		}
		return recordSetPolicy(ctx, tx, p)
	})
	if err != nil {
		return fmt.Errorf("set policy: %w", err)
	}
	return nil
}

// Policy implements store.Store.
func (s *Store) Policy(ctx context.Context, group string) (store.GroupPolicy, error) {
	ps, err := s.policies(ctx, `WHERE grp = ?`, group)
	if err != nil {
		return store.GroupPolicy{}, err
	}
	if len(ps) == 0 {
		return store.GroupPolicy{}, fmt.Errorf("policy of group %q: %w", group, store.ErrNotFound)
	}
	return ps[0], nil
}

// Policies implements store.Store.
func (s *Store) Policies(ctx context.Context) ([]store.GroupPolicy, error) {
	return s.policies(ctx, `ORDER BY grp`)
}

func (s *Store) policies(ctx context.Context, where string, args ...any) ([]store.GroupPolicy, error) {
	rows, err := s.query(ctx, `SELECT grp, name, version, document, updated_at FROM policies `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	defer rows.Close()
	var out []store.GroupPolicy
	for rows.Next() {
		var p store.GroupPolicy
		var updated int64
		if err := rows.Scan(&p.Group, &p.Name, &p.Version, &p.Document, &updated); err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		p.UpdatedAt = fromNanos(updated)
		out = append(out, p)
	}
	return out, rows.Err()
}
