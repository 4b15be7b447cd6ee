package feed_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/wardhq/ward/feed"
)

// testCA is a self-signed CA for the key certificate tests.
func testCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func TestKeyFromCertificate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ca, caKey := testCA(t, "Ward collector CA")
	otherCA, otherKey := testCA(t, "Ward collector CA") // same name, another key
	key := newKey(t)
	good := func() *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: feed.KeyCommonName},
			KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
			NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}
	}
	issue := func(tmpl *x509.Certificate, by *x509.Certificate, byKey *ecdsa.PrivateKey) []byte {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, by, &key.PublicKey, byKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	pub, err := feed.KeyFromCertificate(issue(good(), ca, caKey), []*x509.Certificate{otherCA, ca}, now)
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf("good certificate: %v, %v; want the key", pub, err)
	}

	asCA := good()
	asCA.IsCA, asCA.KeyUsage = true, x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign
	wrongCN := good()
	wrongCN.Subject.CommonName = "Ward evidence log"
	withEKU := good()
	withEKU.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	expired := good()
	expired.NotBefore, expired.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
	notYet := good()
	notYet.NotBefore = now.Add(time.Hour)
	for _, tt := range []struct {
		name string
		der  []byte
	}{
		{"another CA", issue(good(), otherCA, otherKey)},
		{"a CA certificate", issue(asCA, ca, caKey)},
		{"wrong common name", issue(wrongCN, ca, caKey)},
		{"extended key usage", issue(withEKU, ca, caKey)},
		{"expired", issue(expired, ca, caKey)},
		{"not yet valid", issue(notYet, ca, caKey)},
		{"the CA itself", ca.Raw},
		{"garbage", []byte("not a certificate")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := feed.KeyFromCertificate(tt.der, []*x509.Certificate{ca}, now)
			if pub != nil || !errors.Is(err, feed.ErrNotFeedKey) {
				t.Errorf("KeyFromCertificate = %v, %v; want ErrNotFeedKey", pub, err)
			}
		})
	}
	if pub, err := feed.KeyFromCertificate(issue(good(), ca, caKey), nil, now); pub != nil || !errors.Is(err, feed.ErrNotFeedKey) {
		t.Errorf("no pinned CA: %v, %v; want ErrNotFeedKey", pub, err)
	}
}
