package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultServerLifetime is the validity of the server certificate unless
// told otherwise; it is renewed at 2/3 of it (RenewAt).
const DefaultServerLifetime = 365 * 24 * time.Hour

// renewRetry is how long ServerCerts waits after a failed renewal before
// trying again, serving the certificate it has meanwhile.
const renewRetry = time.Minute

// ServerCerts is the collector's server certificate, renewing itself: use
// GetCertificate as tls.Config.GetCertificate.
type ServerCerts struct {
	// OnRenew, if set before the first handshake, is called after each
	// renewal on a handshake with the new leaf, or with the error of a
	// renewal that failed (the current certificate is kept meanwhile).
	OnRenew func(leaf *x509.Certificate, err error)

	a                 *Authority
	certPath, keyPath string
	hostnames         []string
	lifetime          time.Duration
	now               func() time.Time

	mu  sync.Mutex // held while renewing
	cur atomic.Pointer[served]
}

// served is a certificate and when to renew it.
type served struct {
	cert    *tls.Certificate
	renewAt time.Time
	retryAt time.Time // after a failed renewal
}

// ServerCerts loads the server certificate under dir/pki, issuing (and
// writing) a new one valid for lifetime (0: DefaultServerLifetime, never
// past the CA's expiry) when there is none or none that loads, when it
// does not cover every host name, is not signed by the current CA, or is
// past RenewAt. On handshakes it issues and writes the next one once
// now() passes RenewAt.
//
// The chain presented is the leaf, the current CA, its cross certificates
// and the previous CAs valid now, so that an agent pinning either the
// current or a previous CA's fingerprint finds it, one trusting only a
// previous CA verifies leaf → cross certificate → previous CA, and one
// trusting the current CA verifies leaf → current CA.
func (a *Authority) ServerCerts(dir string, hostnames []string, lifetime time.Duration, now func() time.Time) (*ServerCerts, error) {
	if len(hostnames) == 0 {
		return nil, errors.New("server certificate: no host names")
	}
	if lifetime <= 0 {
		lifetime = DefaultServerLifetime
	}
	s := &ServerCerts{
		a:        a,
		certPath: filepath.Join(dir, "pki", serverCert), keyPath: filepath.Join(dir, "pki", serverKey),
		hostnames: hostnames, lifetime: lifetime, now: now,
	}
	t := now()
	if c, err := s.load(t); err == nil {
		s.cur.Store(c)
		return s, nil
	}
	// Nothing usable on disk (missing, torn by a crash, expiring, for
	// other names or of a previous CA): the certificate is derived, so
	// issuing a new one loses nothing.
	c, err := s.issue(t)
	if err != nil {
		return nil, err
	}
	s.cur.Store(c)
	return s, nil
}

// ServerCert returns the server certificate under dir/pki as ServerCerts
// loads or issues it, valid for DefaultServerLifetime, without renewal.
func (a *Authority) ServerCert(dir string, hostnames []string, now time.Time) (tls.Certificate, error) {
	s, err := a.ServerCerts(dir, hostnames, 0, func() time.Time { return now })
	if err != nil {
		return tls.Certificate{}, err
	}
	return *s.Certificate(), nil
}

// Certificate is the certificate being served, without renewing it.
func (s *ServerCerts) Certificate() *tls.Certificate { return s.cur.Load().cert }

// GetCertificate returns the server certificate, first renewing it if
// now() has passed its RenewAt. Only one handshake renews; the others
// wait for it. Before RenewAt it touches neither disk nor lock.
func (s *ServerCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	t := s.now()
	if c := s.cur.Load(); t.Before(c.renewAt) || t.Before(c.retryAt) {
		return c.cert, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cur.Load()
	if t.Before(c.renewAt) || t.Before(c.retryAt) {
		return c.cert, nil // renewed while we waited
	}
	next, err := s.issue(t)
	if s.OnRenew != nil {
		var leaf *x509.Certificate
		if next != nil {
			leaf = next.cert.Leaf
		}
		s.OnRenew(leaf, err)
	}
	if err != nil {
		s.cur.Store(&served{cert: c.cert, renewAt: c.renewAt, retryAt: t.Add(renewRetry)})
		if !t.Before(c.cert.Leaf.NotAfter) {
			return nil, fmt.Errorf("server certificate expired on %s and could not be renewed: %w", c.cert.Leaf.NotAfter.UTC().Format(time.RFC3339), err)
		}
		return c.cert, nil
	}
	s.cur.Store(next)
	return next.cert, nil
}

// load reads the certificate on disk and accepts it only if it covers
// the host names, is signed by the current CA and is not due for renewal.
func (s *ServerCerts) load(now time.Time) (*served, error) {
	cert, key, err := loadPair(s.certPath, s.keyPath)
	if err != nil {
		return nil, err
	}
	if !covers(cert, s.hostnames) || !bytes.Equal(cert.RawIssuer, s.a.Cert.RawSubject) || cert.CheckSignatureFrom(s.a.Cert) != nil {
		return nil, errors.New("server certificate for other names or of another CA")
	}
	renewAt := RenewAt(cert.NotBefore, cert.NotAfter)
	if !now.Before(renewAt) {
		return nil, errors.New("server certificate due for renewal")
	}
	return &served{cert: s.chain(cert, key, now), renewAt: renewAt}, nil
}

// issue signs, writes and returns a new server certificate.
func (s *ServerCerts) issue(now time.Time) (*served, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: s.hostnames[0], Organization: []string{"Ward"}},
		NotBefore:    now.Add(-backdate(s.lifetime)),
		NotAfter:     minTime(now.Add(s.lifetime), s.a.Cert.NotAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range s.hostnames {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.a.Cert, &key.PublicKey, s.a.key)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	if err := writePair(s.certPath, s.keyPath, der, key); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &served{cert: s.chain(cert, key, now), renewAt: RenewAt(cert.NotBefore, cert.NotAfter)}, nil
}

// chain is the leaf, the current CA, its cross certificates and the
// previous CAs, those that are valid at now.
func (s *ServerCerts) chain(leaf *x509.Certificate, key *ecdsa.PrivateKey, now time.Time) *tls.Certificate {
	certs := [][]byte{leaf.Raw, s.a.Cert.Raw}
	for _, c := range append(s.a.Cross[:len(s.a.Cross):len(s.a.Cross)], s.a.Previous...) {
		if now.Before(c.NotAfter) {
			certs = append(certs, c.Raw)
		}
	}
	return &tls.Certificate{Certificate: certs, PrivateKey: key, Leaf: leaf}
}
