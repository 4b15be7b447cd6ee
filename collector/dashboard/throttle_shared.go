package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// signIns is the sign-in throttle as the handler uses it: the throttle in
// this process's memory (one collector), or each user's part of it in
// store.SharedState, so that several collectors on one database slow
// guesses as one would (docs/multi-collector.md).
type signIns interface {
	admit(ctx context.Context, now time.Time, user, addr string) (time.Duration, error)
	succeed(ctx context.Context, now time.Time, user, addr string) error
}

// localSignIns is the throttle in memory.
type localSignIns struct{ t *throttle }

func (l localSignIns) admit(_ context.Context, now time.Time, user, addr string) (time.Duration, error) {
	return l.t.admit(now, user, addr), nil
}

func (l localSignIns) succeed(_ context.Context, now time.Time, user, addr string) error {
	l.t.succeed(now, user, addr)
	return nil
}

// sharedUserEntries bounds the addresses one user's record keeps (of
// pairs and of known addresses each), most recently used first.
const sharedUserEntries = 256

// sharedSignIns keeps one record per user name in store.SharedState:
// that user's pairs, bucket and known addresses. Each attempt loads it
// into a throttle of its own, runs the same admit or succeed, and stores
// it back, in one atomic update, so the rules are exactly the ones of
// throttle and the collectors take turns on each user.
type sharedSignIns struct {
	st      store.SharedState
	maxFree int
}

// throttleRecord is one user's part of the throttle, entries most
// recently used first.
type throttleRecord struct {
	Pairs  []pairRecord  `json:"pairs,omitempty"`
	Bucket *bucketRecord `json:"bucket,omitempty"`
	Known  []knownRecord `json:"known,omitempty"`
}

type pairRecord struct {
	Addr  string    `json:"addr"`
	N     int       `json:"n"`
	Until time.Time `json:"until"`
	Last  time.Time `json:"last"`
}

type bucketRecord struct {
	Tokens float64   `json:"tokens"`
	At     time.Time `json:"at"`
}

type knownRecord struct {
	Addr string    `json:"addr"`
	At   time.Time `json:"at"`
}

func (s sharedSignIns) update(ctx context.Context, now time.Time, user string, fn func(*throttle)) error {
	return s.st.UpdateState(ctx, "signin:"+user, now, func(cur []byte) ([]byte, time.Time, error) {
		t := newThrottle(s.maxFree, sharedUserEntries)
		if cur != nil {
			var rec throttleRecord
			if err := json.Unmarshal(cur, &rec); err != nil {
				return nil, time.Time{}, fmt.Errorf("sign-in throttle record of %q: %w", user, err)
			}
			rec.load(t, user)
		}
		fn(t)
		rec := save(t, user)
		return rec.encode(), rec.expires(), nil
	})
}

func (s sharedSignIns) admit(ctx context.Context, now time.Time, user, addr string) (wait time.Duration, err error) {
	err = s.update(ctx, now, user, func(t *throttle) { wait = t.admit(now, user, addr) })
	return wait, err
}

func (s sharedSignIns) succeed(ctx context.Context, now time.Time, user, addr string) error {
	return s.update(ctx, now, user, func(t *throttle) { t.succeed(now, user, addr) })
}

// load puts the record into t, oldest first, so the order of use is kept.
func (r throttleRecord) load(t *throttle, user string) {
	for i := len(r.Pairs) - 1; i >= 0; i-- {
		p := r.Pairs[i]
		t.pairs.put(pairKey(user, p.Addr), &backoff{n: p.N, until: p.Until, last: p.Last})
	}
	if r.Bucket != nil {
		t.users.put(user, &bucket{tokens: r.Bucket.Tokens, at: r.Bucket.At})
	}
	for i := len(r.Known) - 1; i >= 0; i-- {
		t.known.put(pairKey(user, r.Known[i].Addr), r.Known[i].At)
	}
}

// save is t's state for user, most recently used first.
func save(t *throttle, user string) throttleRecord {
	var r throttleRecord
	prefix := pairKey(user, "")
	for e := t.pairs.ll.Front(); e != nil; e = e.Next() {
		en := e.Value.(*lruEntry[*backoff])
		r.Pairs = append(r.Pairs, pairRecord{Addr: en.key[len(prefix):], N: en.v.n, Until: en.v.until, Last: en.v.last})
	}
	if b, ok := t.users.get(user); ok {
		r.Bucket = &bucketRecord{Tokens: b.tokens, At: b.at}
	}
	for e := t.known.ll.Front(); e != nil; e = e.Next() {
		en := e.Value.(*lruEntry[time.Time])
		r.Known = append(r.Known, knownRecord{Addr: en.key[len(prefix):], At: en.v})
	}
	return r
}

func (r throttleRecord) encode() []byte {
	b, _ := json.Marshal(r) // plain values: cannot fail
	return b
}

// expires is when the record no longer matters: every pair forgotten,
// every known address past knownFor and the bucket full again.
func (r throttleRecord) expires() time.Time {
	var last time.Time
	for _, p := range r.Pairs {
		last = latest(last, p.Last.Add(pairForget), p.Until)
	}
	for _, k := range r.Known {
		last = latest(last, k.At.Add(knownFor))
	}
	if r.Bucket != nil {
		last = latest(last, r.Bucket.At.Add(time.Duration(float64(userBurst)-r.Bucket.Tokens)*userEvery))
	}
	return last
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
