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

// ParseFingerprint checks a CA's SHA-256 fingerprint and returns its
// bytes. It takes what ward-collector prints ("sha256:<64 hex digits>"),
// the bare 64 hex digits, and openssl's colon form ("AB:CD:…", 32 pairs,
// with or without the "sha256 Fingerprint=" openssl x509 -fingerprint
// -sha256 prints); case does not matter. Anything else (another hash, a
// digit missing, stray colons) is refused, never guessed at.
func ParseFingerprint(s string) ([]byte, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	for _, prefix := range []string{"sha256 fingerprint=", "sha2-256 fingerprint=", "sha256:", "sha256="} {
		if rest, ok := strings.CutPrefix(h, prefix); ok {
			h = strings.TrimSpace(rest)
			break
		}
	}
	if strings.Contains(h, ":") {
		// openssl's colon form: exactly 32 pairs.
		pairs := strings.Split(h, ":")
		if len(pairs) != sha256.Size {
			return nil, fmt.Errorf("CA fingerprint %q: want sha256:<64 hex digits>, 64 hex digits, or openssl's 32 colon-separated pairs (AB:CD:…)", s)
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("CA fingerprint %q: want sha256:<64 hex digits>, 64 hex digits, or openssl's 32 colon-separated pairs (AB:CD:…)", s)
			}
		}
		h = strings.Join(pairs, "")
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("CA fingerprint %q: want sha256:<64 hex digits>, 64 hex digits, or openssl's 32 colon-separated pairs (AB:CD:…); ward-collector serve and ca show print it", s)
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
