package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DefaultDeviceLifetime is how long a device certificate is valid unless
// Authority.DeviceLifetime says otherwise. Agents renew at 2/3 of it.
const DefaultDeviceLifetime = 90 * 24 * time.Hour

// RenewAt is when a certificate valid from notBefore to notAfter should
// be renewed: when 2/3 of its lifetime has passed.
func RenewAt(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
}

// ErrBadCSR: the certificate signing request is malformed, badly signed or
// uses a key type the collector does not accept.
var ErrBadCSR = errors.New("bad certificate signing request")

// Authority is the collector's CA.
type Authority struct {
	// Cert is the current CA: it signs every new certificate.
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// Previous are earlier CAs (after ca rotate) whose device
	// certificates are still accepted until they expire.
	Previous []*x509.Certificate
	// ExpiredPrevious are previous CAs past their NotAfter: kept in
	// ca-previous.crt for the record, trusted for nothing.
	ExpiredPrevious []*x509.Certificate
	// Cross are Cert's subject and key signed by each Previous CA, so
	// agents that pin a previous CA verify the collector and can pin Cert.
	Cross []*x509.Certificate
	// DeviceLifetime is the validity of device certificates
	// (0: DefaultDeviceLifetime).
	DeviceLifetime time.Duration
}

// ClientPool holds every CA whose device certificates are accepted: the
// current one and the previous ones.
func (a *Authority) ClientPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	for _, c := range a.Previous {
		p.AddCert(c)
	}
	return p
}

// Chain is what agents are sent to pin: the current CA, then the
// cross-signed certificates that chain it to the previous CAs.
func (a *Authority) Chain() [][]byte {
	out := [][]byte{a.Cert.Raw}
	for _, c := range a.Cross {
		out = append(out, c.Raw)
	}
	return out
}

// Issued reports whether c was issued by the current or a previous CA as
// a client (device) certificate; its validity period is not checked.
func (a *Authority) Issued(c *x509.Certificate) bool {
	if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return false
	}
	for _, ca := range append([]*x509.Certificate{a.Cert}, a.Previous...) {
		if bytes.Equal(c.RawIssuer, ca.RawSubject) && c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func (a *Authority) deviceLifetime() time.Duration {
	if a.DeviceLifetime > 0 {
		return a.DeviceLifetime
	}
	return DefaultDeviceLifetime
}

// Fingerprint is "sha256:" and the hex SHA-256 of a certificate's DER, the
// form agents pin at enrolment.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Fingerprint is the CA certificate's fingerprint.
func (a *Authority) Fingerprint() string { return Fingerprint(a.Cert.Raw) }

// Pool is a pool holding only the CA.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

func covers(c *x509.Certificate, hostnames []string) bool {
	for _, h := range hostnames {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

// ParseCSR parses a DER certificate signing request, checks its signature
// and accepts only ECDSA P-256 and Ed25519 keys.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ECDSA key must use P-256, not %s", ErrBadCSR, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: key type %T: want ECDSA P-256 or Ed25519", ErrBadCSR, k)
	}
	return csr, nil
}

// SignDevice issues a client certificate for the CSR's key with the device
// id as subject CommonName, valid for the device lifetime from now but
// never past the CA's own expiry.
func (a *Authority) SignDevice(csr *x509.CertificateRequest, deviceID string, now time.Time) (der []byte, serial *big.Int, notAfter time.Time, err error) {
	notAfter = now.Add(a.deviceLifetime())
	if notAfter.After(a.Cert.NotAfter) {
		notAfter = a.Cert.NotAfter
	}
	return a.sign(csr.PublicKey, deviceID, now.Add(-backdate(a.deviceLifetime())), notAfter)
}

// backdate is how far before now a certificate of this lifetime starts,
// for peers whose clocks are a little behind: five minutes, but at most a
// tenth of the lifetime, so that 2/3 of a short (test) lifetime still
// lies ahead and a renewed certificate is not due again at once.
func backdate(lifetime time.Duration) time.Duration {
	return min(5*time.Minute, lifetime/10)
}

// SignDeviceWindow is SignDevice with an explicit validity window, for
// tests that need an expired certificate.
func (a *Authority) SignDeviceWindow(pub crypto.PublicKey, deviceID string, notBefore, notAfter time.Time) ([]byte, *big.Int, time.Time, error) {
	return a.sign(pub, deviceID, notBefore, notAfter)
}

func (a *Authority) sign(pub crypto.PublicKey, deviceID string, notBefore, notAfter time.Time) ([]byte, *big.Int, time.Time, error) {
	serial := newSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: deviceID, Organization: []string{"Ward device"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, pub, a.key)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("sign device certificate: %w", err)
	}
	return der, serial, notAfter, nil
}

// SerialString is the form serials are stored and compared in.
func SerialString(n *big.Int) string { return n.Text(16) }

func newSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1))
}

// errKeyMismatch: a key file holds another key than its certificate's.
var errKeyMismatch = errors.New("key and certificate differ")

func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: want an ECDSA key, have %T", keyPath, k)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not match %s: %w", keyPath, certPath, errKeyMismatch)
	}
	return cert, key, nil
}

// writePair writes the key (0600) then the certificate, each atomically.
func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeSync(f, data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func writeSync(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}
