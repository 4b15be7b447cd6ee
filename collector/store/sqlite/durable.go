package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wardhq/ward/collector/store"
)

// Options configure OpenWith. The zero value is what the admin commands
// use on a database that may not exist yet.
type Options struct {
	// RequireFleet refuses (store.ErrEmpty) a database that holds no
	// fleet: missing, zero-length or without the collector's tables. Set
	// it when other state, such as the collector's CA, shows the
	// collector has run before, so a lost database is never taken for a
	// new install.
	RequireFleet bool
	// CheckEvery is how often Health re-runs the integrity check and the
	// write probe in the background (default DefaultCheckEvery).
	CheckEvery time.Duration

	// MaxReaders bounds the connections that serve reads (default
	// DefaultReaders); writes have one connection of their own.
	MaxReaders int
	// OptimizeEvery is how often PRAGMA optimize refreshes the planner's
	// statistics (default DefaultOptimizeEvery; it also runs at open).
	OptimizeEvery time.Duration

	// synchronous replaces FULL, for the benchmark that measures it.
	synchronous string
	// noPrecheck skips the start-up integrity check, for the benchmarks
	// that measure a cold page cache (the check reads the whole file).
	noPrecheck bool
}

// DefaultCheckEvery is how often, at most, Health starts a background
// PRAGMA quick_check and write probe.
const DefaultCheckEvery = time.Minute

// OpenWith opens the database at path and migrates it to the current
// schema. A database that already has content must pass PRAGMA
// quick_check first (store.ErrCorrupt otherwise, with what the check
// found); nothing is written to a database that is refused.
//
// Every connection runs in WAL mode with synchronous(FULL): a commit
// returns once the WAL is synced, so a report the collector has
// acknowledged survives a power loss (docs/durability.md).
func OpenWith(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = DefaultCheckEvery
	}
	if opts.synchronous == "" {
		opts.synchronous = "FULL"
	}
	if opts.MaxReaders <= 0 {
		opts.MaxReaders = DefaultReaders
	}
	if opts.OptimizeEvery <= 0 {
		opts.OptimizeEvery = DefaultOptimizeEvery
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if opts.RequireFleet {
			return nil, fmt.Errorf("database %s does not exist: %w", path, store.ErrEmpty)
		}
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	case fi.Size() == 0:
		if opts.RequireFleet {
			return nil, fmt.Errorf("database %s is empty (0 bytes): %w", path, store.ErrEmpty)
		}
	case opts.noPrecheck:
	default:
		if err := precheck(ctx, path, opts.RequireFleet); err != nil {
			return nil, err
		}
	}
	w, err := sql.Open("sqlite", dsn(path, opts.synchronous, true))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(path, opts.synchronous, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(opts.MaxReaders)
	db.SetMaxIdleConns(opts.MaxReaders)
	s := &Store{db: db, path: path}
	s.startWriter(w)
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, classify(err))
	}
	// The writer is idle until Open returns: the connection is free.
	if err := s.prepareHot(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Statistics for what has changed since they were last gathered
	// (0x10002: also tables not queried yet on this connection).
	if err := s.optimize(ctx, "=0x10002"); err != nil {
		s.Close()
		return nil, fmt.Errorf("optimize %s: %w", path, classify(err))
	}
	s.closing, s.optimized = make(chan struct{}), make(chan struct{})
	go s.optimizeLoop(opts.OptimizeEvery)
	s.health.init(s, opts.CheckEvery)
	return s, nil
}

// dsn is the data source name of the store's connections: the writer's
// (write) or the read pool's. busy_timeout is on every connection: this
// process never contends with itself for the write lock (one writer),
// but an admin command or a checkpoint of another process may hold it.
func dsn(path, synchronous string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	q.Add("_pragma", "foreign_keys(ON)")
	// PRAGMA optimize analyses at most about this many rows per index.
	q.Add("_pragma", "analysis_limit(400)")
	if write {
		// The writer's transactions take the write lock up front, so
		// they wait on busy_timeout for another process instead of
		// failing to upgrade a read lock.
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// precheck runs PRAGMA quick_check on an existing database, and with
// requireFleet looks for the collector's tables, on a connection that
// sets no pragmas, so a refused file is left as it was.
func precheck(ctx context.Context, path string, requireFleet bool) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	if err := quickCheck(ctx, db); err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	if !requireFleet {
		return nil
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return fmt.Errorf("database %s: %w", path, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("database %s has none of the collector's tables: %w", path, store.ErrEmpty)
	}
	return nil
}

// quickCheck runs PRAGMA quick_check, which reads every page of the
// database (but skips the index-content cross-checks of integrity_check).
// It returns nil only when SQLite answers "ok".
func quickCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return fmt.Errorf("quick_check: %w", classify(err))
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("quick_check: %w", classify(err))
		}
		found = append(found, line)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("quick_check: %w", classify(err))
	}
	if len(found) == 1 && found[0] == "ok" {
		return nil
	}
	return fmt.Errorf("%w: quick_check: %s", store.ErrCorrupt, strings.Join(found, "; "))
}

// classify wraps SQLite's corruption and disk-full errors in the store's
// sentinels, keeping SQLite's message.
func classify(err error) error {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %w", store.ErrCorrupt, err)
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", store.ErrDiskFull, err)
	}
	return err
}

// health is the state of the background checks behind Store.Health.
type health struct {
	s      *Store
	every  time.Duration
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running bool
	at      time.Time // when the latest check ended
	err     error     // its outcome
}

// init starts the health state as of the start-up check that OpenWith
// has just passed.
func (h *health) init(s *Store, every time.Duration) {
	h.s, h.every, h.at = s, every, time.Now()
	h.ctx, h.cancel = context.WithCancel(context.Background())
}

// stop cancels a running check and waits for it to end.
func (h *health) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.wg.Wait()
}

// Health implements store.Store. Each call checks that the database
// answers and that its filesystem has room; it returns the outcome of
// the latest background check (PRAGMA quick_check on a fresh connection,
// which reads the file rather than a connection's page cache, and a write
// probe), starting a new one when the latest is older than CheckEvery.
func (s *Store) Health(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return fmt.Errorf("database %s: %w", s.path, classify(err))
	}
	if err := checkFree(s.path); err != nil {
		return err
	}
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running && time.Since(h.at) >= h.every && h.ctx.Err() == nil {
		h.running = true
		h.wg.Add(1)
		go h.check()
	}
	return h.err
}

// check runs one background check and records its outcome. It ends when
// the check does, or early when the store is closed.
func (h *health) check() {
	defer h.wg.Done()
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Minute)
	defer cancel()
	err := h.s.probe(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running, h.at = false, time.Now()
	if h.ctx.Err() == nil {
		h.err = err
	}
}

// probe checks the file's pages and that a durable write succeeds.
func (s *Store) probe(ctx context.Context) error {
	db, err := sql.Open("sqlite", "file:"+s.path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("database %s: %w", s.path, err)
	}
	err = quickCheck(ctx, db)
	db.Close()
	if err != nil {
		return fmt.Errorf("database %s: %w", s.path, err)
	}
	_, err = s.exec(ctx, `INSERT INTO health_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("database %s: write probe: %w", s.path, classify(err))
	}
	return nil
}
