package server

import (
	"crypto/x509"
	"sync"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// DefaultIdentityTTL is how long a connection's device identity is
// reused before identify checks the store again: a revocation (by this
// collector or another on the same database) refuses the connection's
// calls within it.
const DefaultIdentityTTL = 2 * time.Second

// identities caches, per connection, the device identify found for its
// peer certificate. The key is the *x509.Certificate of the connection's
// TLS state, which each handshake parses anew: a new connection is
// always checked in full, and a certificate is only ever trusted on the
// connection that proved its key.
type identities struct {
	ttl time.Duration // 0: no caching

	mu    sync.Mutex
	m     map[*x509.Certificate]identity
	swept time.Time
}

type identity struct {
	dev store.Device
	at  time.Time // when identify checked it, by the monotonic clock
}

func newIdentities(ttl time.Duration) *identities {
	return &identities{ttl: max(ttl, 0), m: map[*x509.Certificate]identity{}, swept: time.Now()}
}

// get is the device cached for leaf, if checked less than ttl ago.
func (c *identities) get(leaf *x509.Certificate) (store.Device, bool) {
	if c.ttl == 0 {
		return store.Device{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.m[leaf]
	if !ok || time.Since(id.at) >= c.ttl {
		return store.Device{}, false
	}
	return id.dev, true
}

// put caches dev for leaf. Entries older than ttl are dropped once per
// ttl, so closed connections do not accumulate.
func (c *identities) put(leaf *x509.Certificate, dev store.Device, checked time.Time) {
	if c.ttl == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.swept) >= c.ttl {
		for k, id := range c.m {
			if now.Sub(id.at) >= c.ttl {
				delete(c.m, k)
			}
		}
		c.swept = now
	}
	c.m[leaf] = identity{dev: dev, at: checked}
}
