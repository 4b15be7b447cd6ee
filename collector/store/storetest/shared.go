package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Shared is what a backend shared by several collectors implements.
type Shared interface {
	store.Secrets
	store.RateLimits
	store.SharedState
}

// RunSharedConformance runs the suite for the interfaces several
// collectors share (store/shared.go). newShared returns handles on one
// fresh store each call; open, when not nil, returns another handle on the
// same store (another collector), so that atomicity is tested across
// handles, not only across goroutines.
func RunSharedConformance(t *testing.T, newShared func(t *testing.T) (first Shared, open func() Shared)) {
	tests := []struct {
		name string
		fn   func(*testing.T, []Shared)
	}{
		{"SecretInsertIfAbsentHasOneWinner", testSecretRace},
		{"SecretReplaceIsCompareAndSwap", testSecretReplace},
		{"TokenBucket", testTokenBucket},
		{"TokenBucketConcurrentTakesAddUp", testTokenBucketConcurrent},
		{"StateUpdatesAreAtomic", testStateAtomic},
		{"StateExpires", testStateExpires},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, open := newShared(t)
			hs := []Shared{first}
			for range 2 {
				if open != nil {
					hs = append(hs, open())
				} else {
					hs = append(hs, first)
				}
			}
			tc.fn(t, hs)
		})
	}
}

func testSecretRace(t *testing.T, hs []Shared) {
	ctx := context.Background()
	if _, err := hs[0].Secret(ctx, "ca"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Secret of nothing: %v, want ErrNotFound", err)
	}
	const n = 12
	var wg sync.WaitGroup
	stored := make([][]byte, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			stored[i], created[i], errs[i] = hs[i%len(hs)].PutSecretIfAbsent(ctx, "ca", fmt.Appendf(nil, "value %d", i))
		})
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("PutSecretIfAbsent %d: %v", i, errs[i])
		}
		if created[i] {
			winners++
			if want := fmt.Appendf(nil, "value %d", i); !bytes.Equal(stored[i], want) {
				t.Errorf("winner %d got %q back, want its own %q", i, stored[i], want)
			}
		}
		if !bytes.Equal(stored[i], stored[0]) {
			t.Errorf("caller %d sees %q, caller 0 %q: not one value", i, stored[i], stored[0])
		}
	}
	if winners != 1 {
		t.Fatalf("%d callers created the secret, want exactly 1", winners)
	}
	got, err := hs[1].Secret(ctx, "ca")
	if err != nil || !bytes.Equal(got, stored[0]) {
		t.Fatalf("Secret = %q, %v; want %q", got, err, stored[0])
	}
}

func testSecretReplace(t *testing.T, hs []Shared) {
	ctx := context.Background()
	if err := hs[0].ReplaceSecret(ctx, "ca", []byte("a"), []byte("b")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceSecret of nothing: %v, want ErrNotFound", err)
	}
	if _, _, err := hs[0].PutSecretIfAbsent(ctx, "ca", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := hs[1].ReplaceSecret(ctx, "ca", []byte("v1"), []byte("v2")); err != nil {
		t.Fatalf("ReplaceSecret v1→v2: %v", err)
	}
	// A second rotation that read v1 before the first one committed loses.
	if err := hs[2].ReplaceSecret(ctx, "ca", []byte("v1"), []byte("v3")); !errors.Is(err, store.ErrSecretChanged) {
		t.Fatalf("ReplaceSecret from a stale value: %v, want ErrSecretChanged", err)
	}
	if got, err := hs[0].Secret(ctx, "ca"); err != nil || string(got) != "v2" {
		t.Fatalf("Secret = %q, %v; want v2", got, err)
	}
}

func testTokenBucket(t *testing.T, hs []Shared) {
	ctx := context.Background()
	r := store.Rate{Every: 10 * time.Second, Burst: 3}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	take := func(h Shared, key string, n int, at time.Time) (bool, time.Duration) {
		t.Helper()
		ok, wait, err := h.TakeTokens(ctx, key, r, n, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok, wait
	}
	if ok, _ := take(hs[0], "k", 0, now); !ok {
		t.Fatal("an unseen key has no token")
	}
	for i := range 3 {
		if ok, wait := take(hs[i%len(hs)], "k", 1, now); !ok || wait != 0 {
			t.Fatalf("take %d of a burst of 3: ok=%v wait=%s", i+1, ok, wait)
		}
	}
	if ok, wait := take(hs[1], "k", 1, now); ok || wait != 10*time.Second {
		t.Fatalf("4th take at once: ok=%v wait=%s, want refused, wait 10s", ok, wait)
	}
	if ok, _ := take(hs[2], "k", 0, now); ok {
		t.Fatal("peek at an empty bucket says a token is there")
	}
	if ok, _ := take(hs[0], "other", 1, now); !ok {
		t.Fatal("another key shares the bucket")
	}
	// Refused takes take nothing: one token is back after 10 s, no later.
	if ok, _ := take(hs[0], "k", 1, now.Add(9*time.Second)); ok {
		t.Fatal("a token came back before its time")
	}
	if ok, _ := take(hs[1], "k", 1, now.Add(10*time.Second)); !ok {
		t.Fatal("no token 10 s after the bucket emptied")
	}
	if ok, wait := take(hs[2], "k", 2, now.Add(10*time.Second)); ok || wait != 20*time.Second {
		t.Fatalf("take 2 of an empty bucket: ok=%v wait=%s, want refused, wait 20s", ok, wait)
	}
	// Idle long enough, the bucket is full again, and no fuller.
	later := now.Add(time.Hour)
	if ok, _ := take(hs[0], "k", 3, later); !ok {
		t.Fatal("an idle bucket is not full again")
	}
	if ok, _ := take(hs[0], "k", 1, later); ok {
		t.Fatal("an idle bucket holds more than its burst")
	}
}

func testTokenBucketConcurrent(t *testing.T, hs []Shared) {
	ctx := context.Background()
	r := store.Rate{Every: time.Hour, Burst: 25}
	now := time.Now()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got int
	)
	for i := range 60 {
		wg.Go(func() {
			ok, _, err := hs[i%len(hs)].TakeTokens(ctx, "crowd", r, 1, now)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				got++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got != 25 {
		t.Fatalf("60 concurrent takes from a bucket of 25 got %d tokens, want 25", got)
	}
}

func testStateAtomic(t *testing.T, hs []Shared) {
	ctx := context.Background()
	expires := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			err := hs[i%len(hs)].UpdateState(ctx, "counter", time.Now(), func(cur []byte) ([]byte, time.Time, error) {
				var n uint64
				if len(cur) == 8 {
					n = binary.BigEndian.Uint64(cur)
				}
				return binary.BigEndian.AppendUint64(nil, n+1), expires, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var n uint64
	err := hs[0].UpdateState(ctx, "counter", time.Now(), func(cur []byte) ([]byte, time.Time, error) {
		n = binary.BigEndian.Uint64(cur)
		return cur, expires, nil
	})
	if err != nil || n != 40 {
		t.Fatalf("40 concurrent increments left %d (%v), want 40", n, err)
	}
	boom := errors.New("boom")
	err = hs[1].UpdateState(ctx, "counter", time.Now(), func([]byte) ([]byte, time.Time, error) { return []byte("x"), expires, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateState with a failing fn: %v, want its error", err)
	}
	if err := hs[2].UpdateState(ctx, "counter", time.Now(), func(cur []byte) ([]byte, time.Time, error) {
		if len(cur) != 8 {
			t.Errorf("a failed update stored %q", cur)
		}
		return nil, time.Time{}, nil // delete
	}); err != nil {
		t.Fatal(err)
	}
	if err := hs[0].UpdateState(ctx, "counter", time.Now(), func(cur []byte) ([]byte, time.Time, error) {
		if cur != nil {
			t.Errorf("a deleted record reads %q", cur)
		}
		return nil, time.Time{}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func testStateExpires(t *testing.T, hs []Shared) {
	ctx := context.Background()
	// Expiry is judged at the caller's now, not the backend's clock: the
	// times here are months before the machine's.
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	set := func(v string, expires time.Time) {
		t.Helper()
		if err := hs[0].UpdateState(ctx, "k", base, func([]byte) ([]byte, time.Time, error) { return []byte(v), expires, nil }); err != nil {
			t.Fatal(err)
		}
	}
	read := func(at time.Time) (got []byte) {
		t.Helper()
		if err := hs[1].UpdateState(ctx, "k", at, func(cur []byte) ([]byte, time.Time, error) {
			got = cur
			return cur, at.Add(time.Hour), nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	set("old", base.Add(-time.Second))
	if got := read(base); got != nil {
		t.Fatalf("an expired record reads %q, want nil", got)
	}
	set("new", base.Add(time.Hour))
	if got := read(base.Add(time.Minute)); string(got) != "new" {
		t.Fatalf("record reads %q at a minute, want new", got)
	}
	if got := read(base.Add(3 * time.Hour)); got != nil {
		t.Fatalf("record reads %q past its expiry, want nil", got)
	}
}
