package enroll

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrWrongCA is wrapped by the error of an enrolment whose collector did
// not present the CA with the expected fingerprint.
var ErrWrongCA = errors.New("collector CA does not match the fingerprint")

// Fingerprint is a certificate's "sha256:<hex>" fingerprint.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseFingerprint checks a "sha256:<64 hex digits>" fingerprint (colons
// between bytes and upper case are accepted) and returns its bytes.
func ParseFingerprint(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if !ok {
		return nil, fmt.Errorf("CA fingerprint %q: want sha256:<hex>", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("CA fingerprint %q: want sha256: followed by 64 hex digits", s)
	}
	return b, nil
}

// pinner verifies a server on first contact against a CA fingerprint.
type pinner struct {
	want       []byte
	serverName string
	// ca is the pinned CA once a handshake succeeded; err the last
	// failure, kept because a failed call reports handshake errors as
	// Unavailable.
	ca  *x509.Certificate
	err error
}

// verify is a tls.Config.VerifyConnection: it finds the CA with the
// expected fingerprint among the certificates the server presented and
// verifies the server's leaf against it alone.
func (p *pinner) verify(cs tls.ConnectionState) error {
	err := p.check(cs)
	p.err = err
	return err
}

func (p *pinner) check(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the collector presented no certificate", ErrWrongCA)
	}
	var ca *x509.Certificate
	inter := x509.NewCertPool()
	var seen []string
	for _, c := range cs.PeerCertificates {
		sum := sha256.Sum256(c.Raw)
		if subtle.ConstantTimeCompare(sum[:], p.want) == 1 {
			ca = c
		} else {
			inter.AddCert(c)
		}
		seen = append(seen, Fingerprint(c.Raw))
	}
	if ca == nil {
		return fmt.Errorf("%w: expected sha256:%x, the collector presented %s", ErrWrongCA, p.want, strings.Join(seen, ", "))
	}
	if !ca.IsCA {
		return fmt.Errorf("%w: the certificate with that fingerprint is not a CA", ErrWrongCA)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       p.serverName,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: server certificate does not verify against it: %v", ErrWrongCA, err)
	}
	p.ca = ca
	return nil
}

// tlsConfig is the server-auth-only TLS 1.3 configuration for enrolment.
// Standard verification is replaced by the pin, which is stricter: the
// only root is the CA with the expected fingerprint.
func (p *pinner) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         p.serverName,
		InsecureSkipVerify: true, // verified by VerifyConnection against the pinned CA
		VerifyConnection:   p.verify,
	}
}
