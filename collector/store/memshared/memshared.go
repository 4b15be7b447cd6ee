// Package memshared keeps what several collectors would share through
// their database (store.Secrets, store.RateLimits, store.SharedState,
// store.Changes) in this process's memory: the stand-in for a store that
// serves one collector (SQLite), where memory is shared enough.
package memshared

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// DefaultMaxKeys bounds the rate limit keys and state records kept.
const DefaultMaxKeys = 100_000

// Shared implements the store's shared interfaces in memory. The zero
// value is not usable; use New.
type Shared struct {
	maxKeys int

	mu      sync.Mutex
	secrets map[string][]byte
	tats    map[string]time.Time
	states  map[string]record
	subs    map[int]func(store.Change)
	nextSub int
}

type record struct {
	v       []byte
	expires time.Time
}

var (
	_ store.Secrets     = (*Shared)(nil)
	_ store.RateLimits  = (*Shared)(nil)
	_ store.SharedState = (*Shared)(nil)
	_ store.Changes     = (*Shared)(nil)
)

// New is an empty Shared keeping at most maxKeys rate limit keys and as
// many state records (0: DefaultMaxKeys); past that it forgets full
// buckets and expired records first, then the ones closest to expiring.
func New(maxKeys int) *Shared {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Shared{maxKeys: maxKeys, secrets: map[string][]byte{}, tats: map[string]time.Time{},
		states: map[string]record{}, subs: map[int]func(store.Change){}}
}

// PutSecretIfAbsent implements store.Secrets.
func (s *Shared) PutSecretIfAbsent(_ context.Context, name string, value []byte) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.secrets[name]; ok {
		return bytes.Clone(v), false, nil
	}
	s.secrets[name] = bytes.Clone(value)
	return bytes.Clone(value), true, nil
}

// Secret implements store.Secrets.
func (s *Shared) Secret(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.secrets[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

// ReplaceSecret implements store.Secrets.
func (s *Shared) ReplaceSecret(_ context.Context, name string, old, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.secrets[name]
	switch {
	case !ok:
		return store.ErrNotFound
	case !bytes.Equal(v, old):
		return store.ErrSecretChanged
	}
	s.secrets[name] = bytes.Clone(value)
	return nil
}

// TakeTokens implements store.RateLimits.
func (s *Shared) TakeTokens(_ context.Context, key string, r store.Rate, n int, now time.Time) (bool, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.tats[key]
	next, took, wait := store.TakeGCRA(tat, r, n, now)
	if next.After(now) && (ok || n > 0) {
		if !ok && len(s.tats) >= s.maxKeys {
			s.evictTATs(now)
		}
		s.tats[key] = next
	} else if ok && !next.After(now) {
		delete(s.tats, key) // full again
	}
	return took, wait, nil
}

// evictTATs forgets full buckets, then arbitrary ones down to nine tenths
// of the bound; s.mu is held.
func (s *Shared) evictTATs(now time.Time) {
	for k, t := range s.tats {
		if !t.After(now) {
			delete(s.tats, k)
		}
	}
	for k := range s.tats {
		if len(s.tats) < s.maxKeys-s.maxKeys/10 {
			break
		}
		delete(s.tats, k)
	}
}

// UpdateState implements store.SharedState; fn runs with the lock held.
func (s *Shared) UpdateState(_ context.Context, key string, now time.Time, fn func([]byte) ([]byte, time.Time, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []byte
	if r, ok := s.states[key]; ok && now.Before(r.expires) {
		cur = r.v
	}
	next, expires, err := fn(bytes.Clone(cur))
	if err != nil {
		return err
	}
	if next == nil {
		delete(s.states, key)
		return nil
	}
	if _, ok := s.states[key]; !ok && len(s.states) >= s.maxKeys {
		s.evictStates(now)
	}
	s.states[key] = record{v: bytes.Clone(next), expires: expires}
	return nil
}

// evictStates forgets expired records, then those expiring first down to
// nine tenths of the bound; s.mu is held.
func (s *Shared) evictStates(now time.Time) {
	for k, r := range s.states {
		if !now.Before(r.expires) {
			delete(s.states, k)
		}
	}
	for len(s.states) >= s.maxKeys-s.maxKeys/10 {
		var first string
		var at time.Time
		for k, r := range s.states {
			if first == "" || r.expires.Before(at) {
				first, at = k, r.expires
			}
		}
		delete(s.states, first)
	}
}

// SubscribeChanges implements store.Changes for the changes Publish is
// told about in this process; it is listening at once and never loses
// the subscription.
func (s *Shared) SubscribeChanges(ctx context.Context, fn func(store.Change), listening func(bool)) error {
	ch := make(chan store.Change, 64)
	s.mu.Lock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = func(c store.Change) {
		select {
		case ch <- c:
		default: // a slow subscriber misses changes: tell it so
			select {
			case ch <- store.Change{Kind: store.ChangeAll}:
			default:
			}
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}()
	if listening != nil {
		listening(true)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-ch:
			fn(c)
		}
	}
}

// Publish tells every subscriber about c.
func (s *Shared) Publish(c store.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.subs {
		f(c)
	}
}

// Keys is how many rate limit keys are kept (for tests of the bound).
func (s *Shared) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tats)
}
