package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLogKey(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, _, err := LoadOrCreate(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := a.LogKey(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != LogCommonName || cert.KeyUsage != x509.KeyUsageDigitalSignature || len(cert.ExtKeyUsage) != 0 || cert.IsCA {
		t.Errorf("log certificate: CN %q, key usage %v, ext %v, CA %v", cert.Subject.CommonName, cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA)
	}
	if err := cert.CheckSignatureFrom(a.Cert); err != nil {
		t.Errorf("not issued by the CA: %v", err)
	}
	if !cert.NotAfter.Equal(a.Cert.NotAfter) {
		t.Errorf("valid until %v, want the CA's %v", cert.NotAfter, a.Cert.NotAfter)
	}
	if fi, err := os.Stat(filepath.Join(dir, "pki", "log.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log.key: %v, %v", fi, err)
	}
	// Loaded again: the same key and certificate.
	key2, cert2, err := a.LogKey(dir, now.Add(time.Hour))
	if err != nil || !key2.Equal(key) || !cert2.Equal(cert) {
		t.Fatalf("second LogKey: same key %v, same certificate %v, %v", key2.Equal(key), cert2.Equal(cert), err)
	}
	// The certificate lost: a new one for the same key.
	if err := os.Remove(filepath.Join(dir, "pki", "log.crt")); err != nil {
		t.Fatal(err)
	}
	key3, cert3, err := a.LogKey(dir, now.Add(2*time.Hour))
	if err != nil || !key3.Equal(key) || cert3.Equal(cert) || !key.PublicKey.Equal(cert3.PublicKey) {
		t.Fatalf("LogKey after the certificate was removed: same key %v, new certificate %v, %v", key3.Equal(key), !cert3.Equal(cert), err)
	}
}
