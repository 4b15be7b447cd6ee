package pki

import (
	"bytes"
	"testing"
	"time"
)

// TestServerCertChainsTheCA: an enrolling agent pins the CA by fingerprint
// on first contact, so the handshake must present the CA after the leaf —
// for a freshly issued certificate and for one loaded from disk.
func TestServerCertChainsTheCA(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ca, created, err := LoadOrCreate(dir, now)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: created %v, %v", created, err)
	}
	for _, round := range []string{"issued", "reloaded"} {
		cert, err := ca.ServerCert(dir, []string{"localhost", "127.0.0.1"}, now)
		if err != nil {
			t.Fatalf("%s: %v", round, err)
		}
		if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], ca.Cert.Raw) {
			t.Fatalf("%s: chain has %d certificates; want leaf then CA", round, len(cert.Certificate))
		}
		if err := cert.Leaf.CheckSignatureFrom(ca.Cert); err != nil {
			t.Errorf("%s: leaf not signed by the CA: %v", round, err)
		}
		if err := cert.Leaf.VerifyHostname("127.0.0.1"); err != nil {
			t.Errorf("%s: %v", round, err)
		}
	}
}
