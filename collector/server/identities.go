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
	// chain is the certificate's verified chain: against which pool, and
	// when every certificate in it is valid. Once the store check is due
	// again, the signatures need not be: a kept connection's certificate
	// does not change.
	chain verified
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

func newIdentities(ttl time.Duration) *identities {
	return &identities{ttl: max(ttl, 0), m: map[*x509.Certificate]identity{}, swept: time.Now()}
}

// get is the device cached for leaf, if checked less than ttl ago, and
// the chain leaf was verified with, if it was on this connection.
func (c *identities) get(leaf *x509.Certificate) (store.Device, verified, bool) {
	if c.ttl == 0 {
		return store.Device{}, verified{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.m[leaf]
	if !ok {
		return store.Device{}, verified{}, false
	}
	if time.Since(id.at) >= c.ttl {
		return store.Device{}, id.chain, false
	}
	return id.dev, id.chain, true
}

// put caches dev for leaf. Entries older than ttl are dropped once per
// ttl, so closed connections do not accumulate.
func (c *identities) put(leaf *x509.Certificate, dev store.Device, chain verified, checked time.Time) {
	if c.ttl == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.swept) >= c.ttl {
		for k, id := range c.m {
			// An entry is kept for a second ttl for its chain.
			if now.Sub(id.at) >= 2*c.ttl {
				delete(c.m, k)
			}
		}
		c.swept = now
	}
	c.m[leaf] = identity{dev: dev, at: checked, chain: chain}
}
