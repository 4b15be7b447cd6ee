package store

import (
	"context"
	"errors"
	"time"
)

// What several collectors on one database share (docs/multi-collector.md).
// A backend that can be shared implements these interfaces; the collector
// uses an in-process stand-in (package store/memshared) when it does not,
// which is right for the one collector a SQLite file allows.

// ErrSecretChanged: ReplaceSecret found another value than the one it was
// told to replace (another collector replaced it first).
var ErrSecretChanged = errors.New("the stored secret changed meanwhile")

// Secrets keeps the few values every collector on the store must agree on,
// above all the CA (sealed by the caller: the store never sees a key in
// the clear).
type Secrets interface {
	// PutSecretIfAbsent stores value under name unless a value is stored
	// there already, atomically, and returns the value stored now: value
	// (created) or the one another collector stored first.
	PutSecretIfAbsent(ctx context.Context, name string, value []byte) (stored []byte, created bool, err error)
	// Secret returns the value stored under name (ErrNotFound if none).
	Secret(ctx context.Context, name string) ([]byte, error)
	// ReplaceSecret replaces name's value old with value, atomically:
	// ErrSecretChanged when the stored value is not old, ErrNotFound when
	// there is none.
	ReplaceSecret(ctx context.Context, name string, old, value []byte) error
}

// Rate is a token bucket: Burst tokens, one more every Every. An Every of
// 0 or less never refills (each key has Burst tokens until it expires).
type Rate struct {
	Every time.Duration
	Burst int
}

// RateLimits are token buckets kept as GCRA (one theoretical arrival time
// per key), so several collectors draw on one bucket per key: a client
// that spreads its attempts over the collectors behind a load balancer
// gets no more than from one.
type RateLimits interface {
	// TakeTokens takes n tokens (n ≥ 1) from key's bucket at now if it
	// has them, and reports whether it did; it takes nothing otherwise.
	// n = 0 takes nothing and reports whether one token is there. wait is
	// how long until n tokens (1 for n = 0) will be there (0 when ok). A
	// key unseen, or idle long enough to be full again, has a full bucket;
	// backends may forget full buckets.
	TakeTokens(ctx context.Context, key string, r Rate, n int, now time.Time) (ok bool, wait time.Duration, err error)
}

// SharedState keeps small records that several collectors update in turn,
// for state a token bucket does not express (the dashboard's sign-in
// backoff per user).
type SharedState interface {
	// UpdateState calls fn with key's record (nil if none, or expired at
	// now) and stores what it returns (nil deletes the record) until
	// expires, as one atomic step: no other UpdateState of key runs
	// between the read and the write, in this process or another. An
	// error from fn stores nothing and is returned.
	UpdateState(ctx context.Context, key string, now time.Time, fn func(cur []byte) (next []byte, expires time.Time, err error)) error
}

// ChangeKind says what changed.
type ChangeKind string

// The kinds of change a collector tells the others about.
const (
	// ChangeDevice: a device was revoked, retired, re-bound or its
	// certificate changed; ID is the device id.
	ChangeDevice ChangeKind = "device"
	// ChangePolicy: a group's policy was set; ID is the group.
	ChangePolicy ChangeKind = "policy"
	// ChangeWaiver: a waiver was created or revoked; ID is its id.
	ChangeWaiver ChangeKind = "waiver"
	// ChangeFeed: a release feed was imported; ID is its serial.
	ChangeFeed ChangeKind = "feed"
	// ChangeCA: the CA was rotated or imported.
	ChangeCA ChangeKind = "ca"
	// ChangeAll: changes may have been missed (the subscription was
	// interrupted and is back): drop every cache.
	ChangeAll ChangeKind = "all"
)

// Change is one change made through any collector on the store.
type Change struct {
	Kind ChangeKind
	ID   string
}

// Changes tells a collector what the others changed, so that its caches
// follow within moments instead of their time to live.
type Changes interface {
	// SubscribeChanges calls fn with every change committed through any
	// collector on the store (this one included) from now until ctx ends,
	// then returns ctx's error. While it cannot listen it retries, and
	// once listening again it calls fn with ChangeAll, since changes made
	// meanwhile are lost. fn is called from one goroutine at a time and
	// must not block for long. listening, if not nil, is called with true
	// each time the subscription is (again) in place and false when it is
	// lost, so callers can shorten their caches' lifetime meanwhile.
	SubscribeChanges(ctx context.Context, fn func(Change), listening func(bool)) error
}

// TakeGCRA is the arithmetic of RateLimits.TakeTokens over one key's
// theoretical arrival time tat (zero: a full bucket), for backends to share:
// next is the tat to keep (tat itself when nothing was taken). r.Every
// must be positive.
func TakeGCRA(tat time.Time, r Rate, n int, now time.Time) (next time.Time, ok bool, wait time.Duration) {
	start := tat
	if start.Before(now) {
		start = now
	}
	want := time.Duration(max(n, 1)) * r.Every
	limit := now.Add(time.Duration(r.Burst) * r.Every)
	if end := start.Add(want); end.After(limit) {
		return tat, false, end.Sub(limit)
	} else if n > 0 {
		return end, true, 0
	}
	return tat, true, 0
}
