package server

import (
	"context"
	"crypto/x509"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/stats"

	"github.com/wardhq/ward/collector/store"
)

// DefaultIdentityTTL is how long a connection's device identity is
// reused before identify checks the store again: a revocation (by this
// collector or another on the same database) refuses the connection's
// calls within it.
const DefaultIdentityTTL = 2 * time.Second

// identities caches, per connection, the device identify found for the
// connection's peer certificate, and how that certificate's chain was
// verified. The cache lives in the connection's context (connTagger), so
// it is gone with the connection and a new connection is always checked
// in full; a certificate is only ever trusted on the connection that
// proved its key. The device is reused for ttl; the verified chain for
// as long as it covers the call (verified.covers), since a kept
// connection's certificate does not change.
//
// forget and forgetAll (a change another collector made) expire the
// devices cached before them at once: every such event takes the next
// value of seq, and an entry checked when seq was below it is stale.
type identities struct {
	ttl time.Duration // 0: no caching of the device

	seq atomic.Uint64
	mu  sync.Mutex
	all uint64               // the seq of the last forgetAll
	dev map[string]forgotten // the last forget of each device, for ttl
}

type forgotten struct {
	seq uint64
	at  time.Time
}

func newIdentities(ttl time.Duration) *identities {
	return &identities{ttl: max(ttl, 0), dev: map[string]forgotten{}}
}

// stale reports whether a device checked at seq was forgotten since.
func (c *identities) stale(deviceID string, seq uint64) bool {
	if c.seq.Load() == seq {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.dev[deviceID]
	return c.all > seq || ok && f.seq > seq
}

// forget drops the cached identities of a device (every connection of
// it), so a change another collector made (a revocation, a re-bind, a
// renewed certificate) is checked on the device's next call, not after
// the cache's lifetime.
func (c *identities) forget(deviceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if len(c.dev) >= 1024 {
		// An entry checked more than ttl ago is stale anyway.
		for id, f := range c.dev {
			if now.Sub(f.at) >= c.ttl {
				delete(c.dev, id)
			}
		}
	}
	c.dev[deviceID] = forgotten{seq: c.seq.Add(1), at: now}
}

// forgetAll drops every cached identity.
func (c *identities) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = c.seq.Add(1)
	clear(c.dev)
}

// mark is the value a check that starts now records with put.
func (c *identities) mark() uint64 { return c.seq.Load() }

// connIdentity is one connection's cache.
type connIdentity struct {
	mu    sync.Mutex
	leaf  *x509.Certificate // what the entry is for
	dev   store.Device
	at    time.Time // when identify checked dev, by the monotonic clock
	seq   uint64    // identities.seq when that check started
	chain verified
}

// connKey is the context key of a connection's *connIdentity.
type connKey struct{}

// get is the device cached on ctx's connection for leaf, if checked less
// than ttl ago, and the chain leaf was verified with on this connection.
func (c *identities) get(ctx context.Context, leaf *x509.Certificate) (store.Device, verified, bool) {
	ci, ok := ctx.Value(connKey{}).(*connIdentity)
	if !ok {
		return store.Device{}, verified{}, false
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.leaf != leaf {
		return store.Device{}, verified{}, false
	}
	if c.ttl == 0 || time.Since(ci.at) >= c.ttl || c.stale(ci.dev.ID, ci.seq) {
		return store.Device{}, ci.chain, false
	}
	return ci.dev, ci.chain, true
}

// put caches dev and chain for leaf on ctx's connection; checked and
// seq (mark) are the time and mark taken before the check.
func (c *identities) put(ctx context.Context, leaf *x509.Certificate, dev store.Device, chain verified, checked time.Time, seq uint64) {
	ci, ok := ctx.Value(connKey{}).(*connIdentity)
	if !ok {
		return
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	ci.leaf, ci.dev, ci.at, ci.seq, ci.chain = leaf, dev, checked, seq, chain
}

// verified is a certificate chain as x509.Verify found it.
type verified struct {
	pool          *x509.CertPool // the roots it was verified against
	from, through time.Time      // when every certificate of the chain is valid
}

// covers reports whether a chain verified as v is still verified
// against pool at now.
func (v verified) covers(pool *x509.CertPool, now time.Time) bool {
	return v.pool != nil && v.pool == pool && !now.Before(v.from) && !now.After(v.through)
}

// connTagger is the agent server's stats.Handler: it gives every
// connection its identity cache, in the context its calls derive from.
type connTagger struct{}

func (connTagger) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, &connIdentity{})
}

func (connTagger) HandleConn(context.Context, stats.ConnStats) {}

func (connTagger) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (connTagger) HandleRPC(context.Context, stats.RPCStats) {}
