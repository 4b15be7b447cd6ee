package feed

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// KeyCommonName is the common name of the certificate a collector's CA
// issues for its feed signing key (docs/feed.md, "Delivery"): digital
// signature only, not a CA, no extended key usage, so it can serve as
// nothing but a feed key.
const KeyCommonName = "Ward release feed"

// ErrNotFeedKey: a certificate is not a feed key certificate of the given
// CAs.
var ErrNotFeedKey = errors.New("not a release feed key certificate")

// KeyFromCertificate returns the P-256 public key of der, a feed key
// certificate, when one of cas issued it (its signature verifies, its
// issuer is that CA's subject), its common name is KeyCommonName, it is
// for digital signature only and not a CA, and now is within its
// validity. Every refusal wraps ErrNotFeedKey.
func KeyFromCertificate(der []byte, cas []*x509.Certificate, now time.Time) (*ecdsa.PublicKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFeedKey, err)
	}
	if c.Subject.CommonName != KeyCommonName || c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature || len(c.ExtKeyUsage) != 0 || len(c.UnknownExtKeyUsage) != 0 {
		return nil, fmt.Errorf("%w: common name %q, key usage %v, CA %v", ErrNotFeedKey, c.Subject.CommonName, c.KeyUsage, c.IsCA)
	}
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return nil, fmt.Errorf("%w: valid %s to %s, it is %s", ErrNotFeedKey,
			c.NotBefore.UTC().Format(timeFormat), c.NotAfter.UTC().Format(timeFormat), now.UTC().Format(timeFormat))
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the key is not ECDSA P-256", ErrNotFeedKey)
	}
	for _, ca := range cas {
		if ca != nil && bytes.Equal(c.RawIssuer, ca.RawSubject) && c.CheckSignatureFrom(ca) == nil {
			return pub, nil
		}
	}
	return nil, fmt.Errorf("%w: no pinned CA issued it", ErrNotFeedKey)
}
