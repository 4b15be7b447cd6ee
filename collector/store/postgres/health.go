package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// health is the state of the background write probe behind Store.Health.
type health struct {
	s      *Store
	every  time.Duration
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running bool
	at      time.Time // when the latest probe ended
	err     error     // its outcome
}

func (h *health) init(s *Store, every time.Duration) {
	h.s, h.every = s, every
	h.ctx, h.cancel = context.WithCancel(context.Background())
}

// stop cancels a running probe and waits for it to end.
func (h *health) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.wg.Wait()
}

// Health implements store.Store. Each call checks the database answers
// (unreachable otherwise); it returns the outcome of the latest
// background write probe, starting a new one when the latest is older
// than CheckEvery. A probe that fails for a full disk is store.ErrDiskFull,
// for a checksum or index failure store.ErrCorrupt; a server that accepts
// no writes (a standby after a fail-over, a read-only transaction
// default) fails it too, so the collector is unready before it would
// acknowledge a report it cannot keep. PostgreSQL checks its own pages
// (data checksums, if enabled), so there is no quick_check here.
func (s *Store) Health(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return fmt.Errorf("postgres %s: unreachable: %w", s.where, classify(err))
	}
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running && (h.at.IsZero() || time.Since(h.at) >= h.every) && h.ctx.Err() == nil {
		if h.at.IsZero() {
			// The first call waits for its probe: there is no earlier
			// outcome to report.
			h.at = time.Now()
			h.err = s.probe(ctx)
			return h.err
		}
		h.running = true
		h.wg.Add(1)
		go h.check()
	}
	return h.err
}

func (h *health) check() {
	defer h.wg.Done()
	ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
	defer cancel()
	err := h.s.probe(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running, h.at = false, time.Now()
	if h.ctx.Err() == nil {
		h.err = err
	}
}

// probe checks a durable write commits.
func (s *Store) probe(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO health_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("postgres %s: write probe: %w", s.where, classify(err))
	}
	return nil
}
