package dashboard

import (
	"container/list"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxUserName is the longest user name (user add refuses longer ones);
// the sign-in form cuts what it is given to it before using it as a key or
// writing it to a log.
const MaxUserName = 64

// Sign-in throttle parameters (docs/dashboard.md, "Failed sign-ins").
const (
	// pairDelay is the first wait of a (user, address) pair once its free
	// attempts are used; it doubles with each further attempt up to
	// pairMaxDelay. A success clears the pair.
	pairDelay    = time.Minute
	pairMaxDelay = 15 * time.Minute
	// pairForget: a pair idle that long starts over.
	pairForget = 24 * time.Hour
	// userBurst attempts per user, refilled one per userEvery, across
	// every address that has not signed in as that user before.
	userBurst = 10
	userEvery = 30 * time.Second
	// knownFor is how long an address that signed in as a user skips
	// that user's bucket.
	knownFor = 30 * 24 * time.Hour
	// throttleEntries bounds each of the throttle's three tables.
	throttleEntries = 10_000
)

// throttle slows password guessing without locking the right password
// out for good. Each (user, address) pair has maxFree attempts, then waits
// that double from pairDelay up to pairMaxDelay. Each user has a token
// bucket (userBurst, one more per userEvery) that attempts from addresses
// not yet known for the user draw on, so guesses spread over many
// addresses are slowed too; an address where the user signed in within
// knownFor skips it, so an attacker elsewhere cannot keep the user out.
// Attempts are counted when admitted (so parallel guesses count), and a
// success gives back the user's token and clears the pair.
//
// The state is bounded: keys are at most MaxUserName bytes plus an
// address, and each table keeps the throttleEntries most recently used
// keys.
type throttle struct {
	mu      sync.Mutex
	maxFree int
	pairs   *lru[*backoff]
	users   *lru[*bucket]
	known   *lru[time.Time]
}

type backoff struct {
	n     int
	until time.Time
	last  time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newThrottle(maxFree, entries int) *throttle {
	return &throttle{maxFree: maxFree, pairs: newLRU[*backoff](entries), users: newLRU[*bucket](entries), known: newLRU[time.Time](entries)}
}

func pairKey(user, addr string) string { return user + "\x00" + addr }

// admit says how long the attempt must wait (0: go ahead, and it is
// counted).
func (t *throttle) admit(now time.Time, user, addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	pk := pairKey(user, addr)
	p, ok := t.pairs.get(pk)
	if !ok || now.Sub(p.last) > pairForget {
		p = &backoff{}
		t.pairs.put(pk, p)
	}
	if now.Before(p.until) {
		return p.until.Sub(now)
	}
	var b *bucket
	if at, ok := t.known.get(pk); !ok || now.Sub(at) > knownFor {
		if b, ok = t.users.get(user); !ok {
			b = &bucket{tokens: userBurst, at: now}
			t.users.put(user, b)
		}
		b.tokens = min(userBurst, b.tokens+float64(now.Sub(b.at))/float64(userEvery))
		b.at = now
		if b.tokens < 1 {
			return time.Duration((1 - b.tokens) * float64(userEvery))
		}
		b.tokens--
	}
	p.n++
	p.last = now
	if p.n >= t.maxFree {
		p.until = now.Add(min(pairDelay<<min(p.n-t.maxFree, 10), pairMaxDelay))
	}
	return 0
}

// succeed records a sign-in: the pair starts over, the user's token is
// given back and the address is known for the user.
func (t *throttle) succeed(now time.Time, user, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pk := pairKey(user, addr)
	t.pairs.del(pk)
	if _, ok := t.known.get(pk); !ok {
		if b, ok := t.users.get(user); ok {
			b.tokens = min(userBurst, b.tokens+1)
		}
	}
	t.known.put(pk, now)
}

// lru is a map that keeps only its n most recently used keys.
type lru[V any] struct {
	n  int
	ll *list.List // front: most recently used
	m  map[string]*list.Element
}

type lruEntry[V any] struct {
	key string
	v   V
}

func newLRU[V any](n int) *lru[V] {
	return &lru[V]{n: n, ll: list.New(), m: map[string]*list.Element{}}
}

func (c *lru[V]) get(k string) (V, bool) {
	e, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*lruEntry[V]).v, true
}

func (c *lru[V]) put(k string, v V) {
	if e, ok := c.m[k]; ok {
		e.Value.(*lruEntry[V]).v = v
		c.ll.MoveToFront(e)
		return
	}
	c.m[k] = c.ll.PushFront(&lruEntry[V]{k, v})
	for c.ll.Len() > c.n {
		e := c.ll.Back()
		c.ll.Remove(e)
		delete(c.m, e.Value.(*lruEntry[V]).key)
	}
}

func (c *lru[V]) del(k string) {
	if e, ok := c.m[k]; ok {
		c.ll.Remove(e)
		delete(c.m, k)
	}
}

func (c *lru[V]) len() int { return c.ll.Len() }

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// maxForwardHops bounds the X-Forwarded-For entries looked at.
const maxForwardHops = 32

// clientAddr is the client's address: the TCP peer, or, when the peer is
// a trusted proxy, the X-Forwarded-For entry left of the last trusted
// hop, read right to left (each proxy appends the address it got the
// request from). An entry that is not an address ends the walk at the hop
// before it.
func (h *handler) clientAddr(r *http.Request) string {
	return clientAddr(r, h.cfg.TrustedProxies)
}

func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		return truncateUTF8(r.RemoteAddr, 64)
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0 && i >= len(hops)-maxForwardHops; i-- {
		a, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		client = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return client.String()
}

// parseHop reads "addr", "addr:port" or "[v6]:port".
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return a.Unmap().WithZone(""), err == nil
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
