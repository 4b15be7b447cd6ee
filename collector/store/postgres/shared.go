package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardhq/ward/collector/store"
)

// What several collectors on one database share beyond the fleet's data
// (store/shared.go, docs/multi-collector.md): the sealed CA, token buckets,
// small records updated in turn, and notifications of changes.

// SharedSchema creates the tables of Shared (idempotent); migration 002
// holds the same for the Store.
const SharedSchema = `
CREATE TABLE IF NOT EXISTS shared_secrets (
	name       text PRIMARY KEY,
	value      bytea NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
-- One GCRA theoretical arrival time per key, in Unix nanoseconds; a row
-- whose tat has passed is a full bucket and may go.
CREATE TABLE IF NOT EXISTS rate_limits (
	key  text PRIMARY KEY,
	tat  bigint NOT NULL,
	took boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS shared_state (
	key        text PRIMARY KEY,
	value      bytea NOT NULL,
	expires_at timestamptz NOT NULL
);
`

// ChangesChannel is the LISTEN/NOTIFY channel of store.Change, payload
// "kind:id".
const ChangesChannel = "ward_changes"

// pruneEvery is how often a process deletes full buckets and expired
// records, from the path that writes them.
const pruneEvery = time.Minute

// Shared implements store.Secrets, store.RateLimits, store.SharedState and
// store.Changes on a PostgreSQL database.
type Shared struct {
	pool *pgxpool.Pool
}

// The prune's state is per process: at most one prune per pruneEvery,
// whichever database it is due on.
var (
	lastPrune atomic.Int64 // Unix nanoseconds
	pruning   sync.Mutex
)

var (
	_ store.Secrets     = (*Shared)(nil)
	_ store.RateLimits  = (*Shared)(nil)
	_ store.SharedState = (*Shared)(nil)
	_ store.Changes     = (*Shared)(nil)
)

// NewShared uses pool, whose database has SharedSchema.
func NewShared(pool *pgxpool.Pool) *Shared { return &Shared{pool: pool} }

// PutSecretIfAbsent implements store.Secrets: the insert that conflicts
// loses, whatever the order the collectors' transactions commit in.
func (s *Shared) PutSecretIfAbsent(ctx context.Context, name string, value []byte) ([]byte, bool, error) {
	var stored []byte
	err := s.pool.QueryRow(ctx, `INSERT INTO shared_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value`, name, value).Scan(&stored)
	if err == nil {
		return stored, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("store secret %s: %w", name, err)
	}
	stored, err = s.Secret(ctx, name)
	return stored, false, err
}

// Secret implements store.Secrets.
func (s *Shared) Secret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM shared_secrets WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return v, nil
}

// ReplaceSecret implements store.Secrets as one conditional UPDATE.
func (s *Shared) ReplaceSecret(ctx context.Context, name string, old, value []byte) error {
	tag, err := s.pool.Exec(ctx, `UPDATE shared_secrets SET value = $3, updated_at = now() WHERE name = $1 AND value = $2`, name, old, value)
	if err != nil {
		return fmt.Errorf("replace secret %s: %w", name, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.Secret(ctx, name); err != nil {
		return err
	}
	return store.ErrSecretChanged
}

// TakeTokens implements store.RateLimits in one statement: the upsert
// holds the key's row lock while it computes store.TakeGCRA's arithmetic
// (every SET expression reads the row before the update), so concurrent
// takes from any number of collectors add up.
func (s *Shared) TakeTokens(ctx context.Context, key string, r store.Rate, n int, now time.Time) (bool, time.Duration, error) {
	if r.Every <= 0 {
		return false, 0, fmt.Errorf("rate limit %s: a rate must refill (every %s)", key, r.Every)
	}
	s.maybePrune(now)
	if n <= 0 {
		var tat int64
		err := s.pool.QueryRow(ctx, `SELECT tat FROM rate_limits WHERE key = $1`, key).Scan(&tat)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
		}
		_, ok, wait := store.TakeGCRA(time.Unix(0, tat), r, 0, now)
		return ok, wait, nil
	}
	if n > r.Burst {
		return false, time.Duration(n-r.Burst) * r.Every, nil // never there at once
	}
	var (
		took bool
		tat  int64
	)
	err := s.pool.QueryRow(ctx, `
INSERT INTO rate_limits AS r (key, tat, took) VALUES ($1, $2::bigint + $4::bigint * $3::bigint, true)
ON CONFLICT (key) DO UPDATE SET
	took = greatest(r.tat, $2) + $4 * $3 <= $2 + $5 * $3,
	tat = CASE WHEN greatest(r.tat, $2) + $4 * $3 <= $2 + $5 * $3 THEN greatest(r.tat, $2) + $4 * $3 ELSE r.tat END
RETURNING took, tat`, key, now.UnixNano(), int64(r.Every), int64(n), int64(r.Burst)).Scan(&took, &tat)
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if took {
		return true, 0, nil
	}
	_, _, wait := store.TakeGCRA(time.Unix(0, tat), r, n, now)
	return false, wait, nil
}

// UpdateState implements store.SharedState: the key's row is created if
// missing and locked for the read, fn and the write.
func (s *Shared) UpdateState(ctx context.Context, key string, now time.Time, fn func([]byte) ([]byte, time.Time, error)) error {
	s.maybePrune(time.Now())
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO shared_state (key, value, expires_at) VALUES ($1, '', '-infinity') ON CONFLICT (key) DO NOTHING`, key); err != nil {
			return fmt.Errorf("shared state %s: %w", key, err)
		}
		var (
			cur     []byte
			expired bool
		)
		if err := tx.QueryRow(ctx, `SELECT value, expires_at <= $2 FROM shared_state WHERE key = $1 FOR UPDATE`, key, now).Scan(&cur, &expired); err != nil {
			return fmt.Errorf("shared state %s: %w", key, err)
		}
		if expired {
			cur = nil
		}
		next, until, err := fn(cur)
		if err != nil {
			return err
		}
		if next == nil {
			_, err = tx.Exec(ctx, `DELETE FROM shared_state WHERE key = $1`, key)
		} else {
			_, err = tx.Exec(ctx, `UPDATE shared_state SET value = $2, expires_at = $3 WHERE key = $1`, key, next, until)
		}
		if err != nil {
			return fmt.Errorf("shared state %s: %w", key, err)
		}
		return nil
	})
}

// maybePrune deletes full buckets and expired records at most once per
// pruneEvery per process, in the background of the call that finds it due.
func (s *Shared) maybePrune(now time.Time) {
	last := lastPrune.Load()
	if now.UnixNano()-last < int64(pruneEvery) || !lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	go func() {
		if !pruning.TryLock() {
			return
		}
		defer pruning.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Errors are left for the next round: a row kept longer is a full
		// bucket or an expired record, read as such.
		s.pool.Exec(ctx, `DELETE FROM rate_limits WHERE tat <= $1`, now.UnixNano())
		s.pool.Exec(ctx, `DELETE FROM shared_state WHERE expires_at <= now()`)
	}()
}

// Execer is a connection, pool or transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// NotifyChange tells every collector listening about c, when the
// transaction q belongs to commits (PostgreSQL delivers a NOTIFY on
// commit, and not at all on rollback): call it inside the write's own
// transaction.
func NotifyChange(ctx context.Context, q Execer, c store.Change) error {
	if _, err := q.Exec(ctx, `SELECT pg_notify($1, $2)`, ChangesChannel, string(c.Kind)+":"+c.ID); err != nil {
		return fmt.Errorf("notify %s change: %w", c.Kind, err)
	}
	return nil
}

// listenRetry is how long SubscribeChanges waits before listening again
// after losing its connection.
const listenRetry = time.Second

// SubscribeChanges implements store.Changes with LISTEN on a connection
// of its own (outside the pool, which it would hold for good).
func (s *Shared) SubscribeChanges(ctx context.Context, fn func(store.Change), listening func(bool)) error {
	if listening == nil {
		listening = func(bool) {}
	}
	cfg := s.pool.Config().ConnConfig.Copy()
	first := true
	for {
		err := s.listen(ctx, cfg, fn, func() {
			listening(true)
			if !first {
				fn(store.Change{Kind: store.ChangeAll}) // what was missed meanwhile
			}
			first = false
		})
		listening(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // the caller sees the outage through listening(false)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(listenRetry):
		}
	}
}

// listen listens until the connection fails or ctx ends.
func (s *Shared) listen(ctx context.Context, cfg *pgx.ConnConfig, fn func(store.Change), ready func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+ChangesChannel); err != nil {
		return err
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		kind, id, _ := strings.Cut(n.Payload, ":")
		fn(store.Change{Kind: store.ChangeKind(kind), ID: id})
	}
}
