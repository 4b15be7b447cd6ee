package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wardhq/ward/feed"
)

// File names of the evidence log's key and certificate under DIR/pki.
const (
	logKeyFile  = "log.key"
	logCertFile = "log.crt"
	// The release feed's key and certificate (FeedKey).
	feedKeyFile  = "feed.key"
	feedCertFile = "feed.crt"
)

// LogCommonName is the common name of the evidence log's certificate
// (evidence.LogCommonName, which ward-verify checks).
const LogCommonName = "Ward evidence log"

// LogKey returns the key that signs the evidence log's checkpoints
// (docs/evidence.md, "The log") and its certificate, under dir/pki: an
// ECDSA P-256 key, created on first use, with a certificate of the
// current CA (common name LogCommonName, digital signature only) valid
// until the CA expires. The key is kept for good: when the certificate
// is missing, of another CA or expired, a new one is issued for the
// same key, so every checkpoint it signed still verifies with the newest
// certificate.
func (a *Authority) LogKey(dir string, now time.Time) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	return a.signingKey(dir, logKeyFile, logCertFile, LogCommonName, "log", now)
}

// FeedKey returns the key that signs the release feeds this collector
// sends to agents (docs/feed.md, "Delivery") and its certificate, under
// dir/pki (feed.key, feed.crt): made and kept like LogKey's, common name
// feed.KeyCommonName, digital signature only, so agents accept it with
// feed.KeyFromCertificate and pin its key, which is kept for good.
func (a *Authority) FeedKey(dir string, now time.Time) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	return a.signingKey(dir, feedKeyFile, feedCertFile, feed.KeyCommonName, "feed", now)
}

// signingKey is LogKey and FeedKey: the key at dir/pki/keyFile, created
// on first use and kept for good, with a certificate at
// dir/pki/certFile of the current CA (common name cn, digital
// signature only) valid until the CA expires, issued again for the same
// key when it is missing, of another CA or expired.
func (a *Authority) signingKey(dir, keyFile, certFile, cn, what string, now time.Time) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	keyPath, certPath := filepath.Join(dir, "pki", keyFile), filepath.Join(dir, "pki", certFile)
	key, err := loadKey(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generate %s key: %w", what, err)
		}
		if err := writeKey(keyPath, key); err != nil {
			return nil, nil, err
		}
	} else if err != nil {
		return nil, nil, fmt.Errorf("%s key: %w", what, err)
	}
	if c, err := loadCert(certPath); err == nil && key.PublicKey.Equal(c.PublicKey) && c.Subject.CommonName == cn &&
		bytes.Equal(c.RawIssuer, a.Cert.RawSubject) && c.CheckSignatureFrom(a.Cert) == nil && now.Before(c.NotAfter) {
		return key, c, nil
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Ward"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     a.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s certificate: %w", what, err)
	}
	if err := writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, c, nil
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kb, _ := pem.Decode(b)
	if kb == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: want an ECDSA key, have %T", path, k)
	}
	return key, nil
}

func loadCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(b)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(cb.Bytes)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
