package pki

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/feed"
)

func TestFeedKey(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a, _, err := LoadOrCreate(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := a.FeedKey(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := feed.KeyFromCertificate(cert.Raw, []*x509.Certificate{a.Cert}, now)
	if err != nil {
		t.Fatalf("agents would refuse the feed key certificate: %v", err)
	}
	if !pub.Equal(&key.PublicKey) {
		t.Errorf("certificate's key is not the feed key")
	}
	if fi, err := os.Stat(filepath.Join(dir, "pki", "feed.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("feed.key: %v, %v", fi, err)
	}
	// The log key is another key, and not a feed key.
	lkey, lcert, err := a.LogKey(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if lkey.Equal(key) {
		t.Errorf("the log key and the feed key are the same key")
	}
	if _, err := feed.KeyFromCertificate(lcert.Raw, []*x509.Certificate{a.Cert}, now); !errors.Is(err, feed.ErrNotFeedKey) {
		t.Errorf("log certificate accepted as a feed key: %v", err)
	}
	// Loaded again: the same key and certificate; the certificate lost,
	// a new one for the same key.
	key2, cert2, err := a.FeedKey(dir, now.Add(time.Hour))
	if err != nil || !key2.Equal(key) || !cert2.Equal(cert) {
		t.Fatalf("second FeedKey: same key %v, same certificate %v, %v", key2.Equal(key), cert2.Equal(cert), err)
	}
	if err := os.Remove(filepath.Join(dir, "pki", "feed.crt")); err != nil {
		t.Fatal(err)
	}
	key3, cert3, err := a.FeedKey(dir, now.Add(2*time.Hour))
	if err != nil || !key3.Equal(key) || cert3.Equal(cert) {
		t.Fatalf("FeedKey after the certificate was removed: same key %v, new certificate %v, %v", key3.Equal(key), !cert3.Equal(cert), err)
	}
	// Another CA's certificate: refused by agents pinned to this CA.
	other, _, err := LoadOrCreate(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := feed.KeyFromCertificate(cert3.Raw, []*x509.Certificate{other.Cert}, now); !errors.Is(err, feed.ErrNotFeedKey) {
		t.Errorf("feed key certificate accepted against another CA: %v", err)
	}
}
