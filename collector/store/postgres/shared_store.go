package postgres

import (
	"context"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// The Store shares what several collectors on its database need through
// Shared (shared.go), and notifies the others of its writes that their
// caches hold (store.Changes).

var (
	_ store.Secrets     = (*Store)(nil)
	_ store.RateLimits  = (*Store)(nil)
	_ store.SharedState = (*Store)(nil)
	_ store.Changes     = (*Store)(nil)
)

func (s *Store) shared() *Shared { return NewShared(s.pool) }

// PutSecretIfAbsent implements store.Secrets.
func (s *Store) PutSecretIfAbsent(ctx context.Context, name string, value []byte) ([]byte, bool, error) {
	return s.shared().PutSecretIfAbsent(ctx, name, value)
}

// Secret implements store.Secrets.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	return s.shared().Secret(ctx, name)
}

// ReplaceSecret implements store.Secrets.
func (s *Store) ReplaceSecret(ctx context.Context, name string, old, value []byte) error {
	return s.shared().ReplaceSecret(ctx, name, old, value)
}

// TakeTokens implements store.RateLimits.
func (s *Store) TakeTokens(ctx context.Context, key string, r store.Rate, n int, now time.Time) (bool, time.Duration, error) {
	return s.shared().TakeTokens(ctx, key, r, n, now)
}

// UpdateState implements store.SharedState.
func (s *Store) UpdateState(ctx context.Context, key string, now time.Time, fn func([]byte) ([]byte, time.Time, error)) error {
	return s.shared().UpdateState(ctx, key, now, fn)
}

// SubscribeChanges implements store.Changes.
func (s *Store) SubscribeChanges(ctx context.Context, fn func(store.Change), listening func(bool)) error {
	return s.shared().SubscribeChanges(ctx, fn, listening)
}

// Notify tells the other collectors about c now (for changes made
// outside the store's write methods, such as a CA rotation).
func (s *Store) Notify(ctx context.Context, c store.Change) error {
	return NotifyChange(ctx, s.pool, c)
}

// notifyAfter tells the other collectors about a write that committed
// in a statement of its own. A notification lost here (the database went
// away between the two) is covered by the caches' lifetime.
func (s *Store) notifyAfter(ctx context.Context, c store.Change) {
	NotifyChange(context.WithoutCancel(ctx), s.pool, c) //nolint:errcheck // see above
}
