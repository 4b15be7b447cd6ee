package postgres

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
	"github.com/wardhq/ward/collector/store/batch"
)

// Store is a store.Store on one PostgreSQL database.
type Store struct {
	pool   *pgxpool.Pool
	where  string // the database, for messages: never the password
	health health
	// reports is the writer of reports (group commit, commitReports).
	reports *batch.Writer[*reportJob]
	enrols  *batch.Writer[*enrolJob] // new devices' enrolments (enrolbatch.go)
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.Dashboard    = (*Store)(nil)
	_ store.WaiverSource = (*Store)(nil)
	_ store.Pruner       = (*Store)(nil)
)

// Options configure Open. The zero value suits the admin commands.
type Options struct {
	// RequireFleet refuses (store.ErrEmpty) a database without the
	// collector's tables, as sqlite.Options.RequireFleet does: set it
	// when other state shows the collector has run before.
	RequireFleet bool
	// MaxConns bounds the connection pool (default DefaultMaxConns, or
	// the DSN's pool_max_conns).
	MaxConns int32
	// CheckEvery is how often Health re-runs its write probe in the
	// background (default DefaultCheckEvery).
	CheckEvery time.Duration
}

// Defaults of Options.
const (
	DefaultMaxConns   = 16
	DefaultCheckEvery = time.Minute
)

// migrationLock is the pg_advisory_xact_lock key migrations hold, so
// collectors starting together migrate once ("ward" in ASCII).
const migrationLock = 0x77617264

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded schema change: file NNN_name.sql is
// version NNN. Never edit a released migration: add a file.
type migration struct {
	version int
	sql     string
}

// migrations returns the migrations in version order. Versions need not
// be consecutive (branches that each add one merge without renumbering):
// open applies every version the database lacks, in order.
func migrations() []migration {
	ents, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		panic(err)
	}
	var out []migration
	for _, e := range ents {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%03d_", &v); err != nil || v <= 0 {
			panic("postgres: migration " + e.Name() + " is not named NNN_name.sql")
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			panic(err)
		}
		out = append(out, migration{v, string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			panic(fmt.Sprintf("postgres: two migrations are version %d", out[i].version))
		}
	}
	return out
}

// SchemaVersion is the schema version this build migrates to: its
// newest migration's.
func SchemaVersion() int {
	ms := migrations()
	return ms[len(ms)-1].version
}

// Open connects to the database named by dsn (a libpq URL or keyword
// string), refuses it as opts say, and migrates it to the current schema.
// Errors name the database by host and name, never with the password.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s", Redact(err.Error(), dsn))
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = DefaultCheckEvery
	}
	where := Describe(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", where, err)
	}
	s := &Store{pool: pool, where: where}
	if err := s.open(ctx, opts); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres %s: %w", where, classify(err))
	}
	s.health.init(s, opts.CheckEvery)
	s.reports = batch.New(s.commitReports, batch.Options{MaxJobs: maxBatchReports, MaxBytes: maxBatchBytes})
	s.startEnrolWriter()
	return s, nil
}

// maxBatchReports and maxBatchBytes bound one transaction of reports.
const (
	maxBatchReports = 256
	maxBatchBytes   = 8 << 20
)

// Describe names a database for messages: user, host, port and name.
func Describe(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Redact replaces the password of dsn, if any, in msg.
func Redact(msg, dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err == nil && cfg.Password != "" {
		return strings.ReplaceAll(msg, cfg.Password, "xxxxx")
	}
	if err != nil {
		// Unparsable: hide whatever follows a password keyword or a
		// URL's user.
		if i := strings.Index(dsn, "://"); i >= 0 {
			if j := strings.LastIndex(dsn, "@"); j > i {
				msg = strings.ReplaceAll(msg, dsn[i+3:j], "xxxxx")
			}
		}
		if i := strings.Index(dsn, "password="); i >= 0 {
			v := dsn[i+len("password="):]
			if k := strings.IndexByte(v, ' '); k >= 0 {
				v = v[:k]
			}
			if v != "" {
				msg = strings.ReplaceAll(msg, v, "xxxxx")
			}
		}
	}
	return msg
}

// open checks the database answers, refuses one without a fleet when
// asked, and migrates it, holding the migration lock.
func (s *Store) open(ctx context.Context, opts Options) error {
	if opts.RequireFleet {
		var found bool
		if err := s.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&found); err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("database has none of the collector's tables: %w", store.ErrEmpty)
		}
	}
	ms := migrations()
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[v] = true
			if v > ms[len(ms)-1].version {
				return fmt.Errorf("database schema version %d is newer than this collector's %d", v, ms[len(ms)-1].version)
			}
		}
		for _, m := range ms {
			if done[m.version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate to version %d: %w", m.version, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.version, time.Now().UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
}

// tx runs fn in a transaction (READ COMMITTED: writers serialise on the
// rows they lock with FOR UPDATE) and commits it.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	return tx.Commit(ctx)
}

// pipeline is a transaction on one connection whose statements are sent
// in batches, each batch one round trip (pgx pipelines it). The hot
// writes (SaveReport, Enroll) take two: read under the row locks, then
// write and commit.
type pipeline struct {
	conn      *pgxpool.Conn
	committed bool
}

func (s *Store) pipeline(ctx context.Context) (*pipeline, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &pipeline{conn: conn}, nil
}

// send sends b; the first batch of a pipeline begins with BEGIN.
func (p *pipeline) send(ctx context.Context, b *pgx.Batch) error {
	return p.conn.SendBatch(ctx, b).Close()
}

// commit sends b followed by COMMIT: nil means committed.
func (p *pipeline) commit(ctx context.Context, b *pgx.Batch) error {
	b.Queue(`COMMIT`)
	if err := p.send(ctx, b); err != nil {
		return err
	}
	p.committed = true
	return nil
}

// close rolls back what was not committed and releases the connection
// (which the pool destroys if it is still inside a transaction).
func (p *pipeline) close(ctx context.Context) {
	if !p.committed {
		p.conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
	}
	p.conn.Release()
}

// Close stops the background health check and closes the pool.
func (s *Store) Close() error {
	s.reports.Close()
	s.enrols.Close()
	s.health.stop()
	s.pool.Close()
	return nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one)
}

// Pool is the store's connection pool, for the packages that share its
// database (several collectors on one PostgreSQL).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// nanos is t in nanoseconds since 1970, saturated at the int64 range
// (years 1677 to 2262) instead of wrapping around, as the SQLite store.
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

func fromNull(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := fromNanos(*n)
	return &t
}

// satInt64 stores a uint64 count in a BIGINT, saturating.
func satInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// classify wraps PostgreSQL's corruption and disk-full errors in the
// store's sentinels, keeping the server's message.
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "XX001", "XX002": // data_corrupted, index_corrupted
		return fmt.Errorf("%w: %w", store.ErrCorrupt, err)
	case "53100": // disk_full
		return fmt.Errorf("%w: %w", store.ErrDiskFull, err)
	}
	return err
}

// Tokens.

// CreateToken implements store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tokens (id, hash, grp, uses, uses_left, created_at, expires_at, rebind_device) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.Hash, t.Group, t.Uses, t.UsesLeft, nanos(t.CreatedAt), nanos(t.ExpiresAt), t.RebindDevice)
	if err != nil {
		return fmt.Errorf("create token: %w", classify(err))
	}
	return nil
}

// Tokens implements store.Store.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, hash, grp, uses, uses_left, created_at, expires_at, revoked_at, rebind_device FROM tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		var t store.Token
		var created, expires int64
		var revoked *int64
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
	tag, err := s.pool.Exec(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, nanos(now), id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Devices.

const deviceSelect = `SELECT d.id, d.grp, d.hostname, d.platform, d.os_name, d.os_version, d.architecture, d.machine_id, d.agent_version,
	d.enrolled_at, d.last_seen, d.cert_serial, d.cert_not_after, d.revoked_at, d.last_sequence, d.pass_n, d.fail_n, d.unknown_n, coalesce(d.next_cert_serial, '')
	FROM devices d`

func scanDevices(rows pgx.Rows) ([]store.Device, error) {
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		var d store.Device
		var enrolled, notAfter, seq int64
		var lastSeen, revoked *int64
		if err := rows.Scan(&d.ID, &d.Group, &d.Hostname, &d.Platform, &d.OSName, &d.OSVersion, &d.Architecture, &d.MachineID, &d.AgentVersion,
			&enrolled, &lastSeen, &d.CertSerial, &notAfter, &revoked, &seq, &d.Pass, &d.Fail, &d.Unknown, &d.NextCertSerial); err != nil {
			return nil, err
		}
		d.EnrolledAt, d.CertNotAfter, d.LastSequence = fromNanos(enrolled), fromNanos(notAfter), uint64(seq)
		d.LastSeen, d.RevokedAt = fromNull(lastSeen), fromNull(revoked)
		out = append(out, d)
	}
	return out, rows.Err()
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func deviceQuery(ctx context.Context, q querier, id string) (store.Device, error) {
	rows, err := q.Query(ctx, deviceSelect+` WHERE d.id = $1`, id)
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
	return deviceQuery(ctx, s.pool, id)
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context) ([]store.Device, error) {
	rows, err := s.pool.Query(ctx, deviceSelect+` ORDER BY d.id`)
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
	if err := s.revoke(ctx, id, now, false); err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	return nil
}

// RetireDevice implements store.Store.
func (s *Store) RetireDevice(ctx context.Context, id string, now time.Time) error {
	if err := s.revoke(ctx, id, now, true); err != nil {
		return fmt.Errorf("retire device: %w", err)
	}
	return nil
}

// revoke revokes (and with retire, retires) a device, its current
// certificate and any pending renewal.
func (s *Store) revoke(ctx context.Context, id string, now time.Time, retire bool) error {
	return s.revokeAudited(ctx, id, now, retire, nil)
}

// revokeAudited is revoke with the audit entry e (when not nil) written
// in the same transaction (admin.go).
func (s *Store) revokeAudited(ctx context.Context, id string, now time.Time, retire bool, e *store.AuditEntry) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var serial string
		var next *string
		err := tx.QueryRow(ctx, `SELECT cert_serial, next_cert_serial FROM devices WHERE id = $1 FOR UPDATE`, id).Scan(&serial, &next)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("device %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		before, err := loadSnapshot(ctx, tx, id)
		if err != nil {
			return err
		}
		after := before
		after.Class = aggregate.ClassRevoked
		var w pgx.Batch
		queueAggregates(&w, before, after, now)
		if w.Len() > 0 {
			if err := tx.SendBatch(ctx, &w).Close(); err != nil {
				return err
			}
		}
		q := `UPDATE devices SET revoked_at = coalesce(revoked_at, $1), next_cert_serial = NULL, next_cert_not_after = NULL WHERE id = $2`
		if retire {
			q = `UPDATE devices SET revoked_at = coalesce(revoked_at, $1), retired_at = coalesce(retired_at, $1), next_cert_serial = NULL, next_cert_not_after = NULL WHERE id = $2`
		}
		if _, err := tx.Exec(ctx, q, nanos(now), id); err != nil {
			return err
		}
		if next != nil {
			if err := revokeSerial(ctx, tx, *next, id, now); err != nil {
				return err
			}
		}
		if err := NotifyChange(ctx, tx, store.Change{Kind: store.ChangeDevice, ID: id}); err != nil {
			return err
		}
		if e != nil {
			if err := insertAudit(ctx, tx, *e, id); err != nil {
				return err
			}
		}
		return revokeSerial(ctx, tx, serial, id, now)
	})
}

// SerialRevoked implements store.Store.
func (s *Store) SerialRevoked(ctx context.Context, serial string) (bool, error) {
	var found bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_serials WHERE serial = $1)`, serial).Scan(&found); err != nil {
		return false, fmt.Errorf("check serial: %w", err)
	}
	return found, nil
}

func revokeSerial(ctx context.Context, q querier, serial, deviceID string, now time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO revoked_serials (serial, device_id, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (serial) DO NOTHING`, serial, deviceID, nanos(now))
	return err
}

func audit(ctx context.Context, q querier, now time.Time, actor, action, target, detail string) error {
	_, err := q.Exec(ctx, `INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)`, nanos(now), actor, action, target, detail)
	return err
}

// Duplicates implements store.Store.
func (s *Store) Duplicates(ctx context.Context) ([]store.DuplicateSet, error) {
	rows, err := s.pool.Query(ctx, deviceSelect+` WHERE d.revoked_at IS NULL AND d.machine_id <> '' AND EXISTS (
		SELECT 1 FROM devices o WHERE o.grp = d.grp AND o.machine_id = d.machine_id AND o.id <> d.id AND o.revoked_at IS NULL)
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

// Policies.

// SetPolicy implements store.Store.
func (s *Store) SetPolicy(ctx context.Context, p store.GroupPolicy) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO policies (grp, name, version, document, updated_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (grp) DO UPDATE SET name = excluded.name, version = excluded.version, document = excluded.document, updated_at = excluded.updated_at`,
			p.Group, p.Name, p.Version, p.Document, nanos(p.UpdatedAt)); err != nil {
			return err
		}
		return recordSetPolicy(ctx, tx, p)
	})
	if err != nil {
		return fmt.Errorf("set policy: %w", classify(err))
	}
	s.notifyAfter(ctx, store.Change{Kind: store.ChangePolicy, ID: p.Group})
	return nil
}

// Policy implements store.Store.
func (s *Store) Policy(ctx context.Context, group string) (store.GroupPolicy, error) {
	ps, err := s.policies(ctx, `WHERE grp = $1`, group)
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
	rows, err := s.pool.Query(ctx, `SELECT grp, name, version, document, updated_at FROM policies `+where, args...)
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

// constantTimeEqual compares token hashes without leaking where they differ.
func constantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
