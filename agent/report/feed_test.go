package report_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/feedtest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// feedKeyCert issues a feed key certificate for key by ca.
func feedKeyCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: feed.KeyCommonName},
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// testFeed is a valid feed with the given serial. ITS DATA IS MADE UP.
func testFeed(serial uint64) *feed.Feed {
	gen := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	return &feed.Feed{Format: feed.Format, Serial: serial, GeneratedAt: gen, ExpiresAt: gen.Add(180 * 24 * time.Hour),
		Sources: []feed.Source{{Name: "made-up", Description: "made-up data for tests", SHA256: strings.Repeat("ab", 32)}},
		Lines: []feed.Line{{Platform: feed.Fedora, ID: "fedora-44", OSID: "fedora", Version: "44",
			EOL: feed.DateOf(gen.Add(300 * 24 * time.Hour))}}}
}

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestFeedDelivery runs the agent's side of feed delivery over mutual TLS
// against a collector that answers GetPolicy with what the test sets:
// the key is pinned on first sight (the device was enrolled before the
// collector had one), a feed it signed is cached and survives a restart,
// a feed signed by another key and an older one are refused with the
// cached one kept, and a corrupt cache is ignored.
func TestFeedDelivery(t *testing.T) {
	ctx := context.Background()
	srv := &policyServer{}
	id, ca, caKey := startServerCA(t, srv)
	id.Dir = t.TempDir()
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	key := newP256(t)
	cert := feedKeyCert(t, ca, caKey, key)
	p := report.LoadPolicy(id.Dir, nil)
	f := report.LoadFeed(id, nil)
	if f.Current() != nil || f.Serial() != 0 {
		t.Fatal("a feed before any fetch")
	}

	srv.resp = &wardv1.GetPolicyResponse{Feed: feedtest.SignedFile(t, testFeed(10), key), FeedSerial: 10, FeedKeyCertificateDer: cert}
	if _, err := p.Refresh(ctx, cl, f); err != nil {
		t.Fatal(err)
	}
	if f.Serial() != 10 || f.Refused() != "" {
		t.Fatalf("after the first feed: serial %d, refused %q; want 10 adopted", f.Serial(), f.Refused())
	}
	if !bytes.Equal(id.FeedKey, cert) {
		t.Fatal("the feed key was not pinned")
	}
	if f.Differs(10) || !f.Differs(11) || f.Differs(0) {
		t.Error("Differs does not compare with the cached serial")
	}

	// Restart: the pinned key and the cache are read back.
	again, err := os.ReadFile(filepath.Join(id.Dir, enroll.FeedKeyFile))
	if err != nil || !strings.Contains(string(again), "CERTIFICATE") {
		t.Fatalf("pinned key file: %v", err)
	}
	restarted := &enroll.Identity{Dir: id.Dir, Roots: id.Roots, FeedKey: cert}
	if got := report.LoadFeed(restarted, nil).Serial(); got != 10 {
		t.Fatalf("after a restart the cached serial is %d, want 10", got)
	}

	// Another key (even with a certificate of the same CA) is refused.
	other := newP256(t)
	srv.resp = &wardv1.GetPolicyResponse{Feed: feedtest.SignedFile(t, testFeed(11), other), FeedSerial: 11,
		FeedKeyCertificateDer: feedKeyCert(t, ca, caKey, other)}
	if _, err := p.Refresh(ctx, cl, f); err != nil {
		t.Fatal(err)
	}
	if f.Serial() != 10 || !strings.Contains(f.Refused(), "signature does not verify") {
		t.Fatalf("a feed signed by another key: serial %d, refused %q; want 10 kept and a signature refusal", f.Serial(), f.Refused())
	}
	if !bytes.Equal(id.FeedKey, cert) {
		t.Fatal("the pinned key was replaced")
	}
	if f.Differs(11) {
		t.Error("the refused serial is asked for again")
	}
	in := report.FeedInput(nil, f.Refused())
	if in.Feed == nil && (len(in.Why) != 1 || in.Why[0].ID != "feed.unverifiable") {
		t.Errorf("input with nothing usable and a refusal = %+v, want feed.unverifiable", in)
	}

	// Rollback.
	srv.resp = &wardv1.GetPolicyResponse{Feed: feedtest.SignedFile(t, testFeed(9), key), FeedSerial: 9}
	if _, err := p.Refresh(ctx, cl, f); err != nil {
		t.Fatal(err)
	}
	if f.Serial() != 10 || !strings.Contains(f.Refused(), "rollback") {
		t.Fatalf("an older feed: serial %d, refused %q; want 10 kept and a rollback refusal", f.Serial(), f.Refused())
	}

	// A newer one signed by the pinned key is adopted, and the cache
	// holds it.
	srv.resp = &wardv1.GetPolicyResponse{Feed: feedtest.SignedFile(t, testFeed(12), key), FeedSerial: 12}
	if _, err := p.Refresh(ctx, cl, f); err != nil {
		t.Fatal(err)
	}
	if f.Serial() != 12 || f.Refused() != "" {
		t.Fatalf("a newer feed: serial %d, refused %q", f.Serial(), f.Refused())
	}
	if got := report.LoadFeed(restarted, nil).Serial(); got != 12 {
		t.Fatalf("cache after the newer feed: serial %d, want 12", got)
	}
	if in := report.FeedInput(f.Current(), ""); in.Feed == nil {
		t.Error("no feed to evaluate with although one is cached")
	}

	// A newer serial announced without its feed (too large for the
	// collector to send): refused, not asked for again, the cache kept.
	srv.resp = &wardv1.GetPolicyResponse{FeedSerial: 13}
	if _, err := p.Refresh(ctx, cl, f); err != nil {
		t.Fatal(err)
	}
	if f.Serial() != 12 || !strings.Contains(f.Refused(), "did not send it") || f.Differs(13) || !f.Differs(14) {
		t.Fatalf("a feed announced, not sent: serial %d, refused %q, differs(13) %v; want 12 kept, a refusal, 13 not asked again",
			f.Serial(), f.Refused(), f.Differs(13))
	}
	srv.resp = &wardv1.GetPolicyResponse{FeedSerial: 12}
	if _, err := p.Refresh(ctx, cl, f); err != nil || f.Serial() != 12 {
		t.Fatalf("the held serial announced: %v, serial %d", err, f.Serial())
	}

	// A corrupt cache is ignored, never a crash.
	if err := os.WriteFile(filepath.Join(id.Dir, report.FeedFile), []byte(`{"format":"ward-signed-release-feed/1","feed":"AAAA`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := report.LoadFeed(restarted, nil); got.Current() != nil {
		t.Fatal("a corrupt cache was used")
	}
}

// TestFeedKeyOfAnotherCA: a feed key certificate no pinned CA issued is
// not pinned, and a feed then cannot be verified.
func TestFeedKeyOfAnotherCA(t *testing.T) {
	ctx := context.Background()
	srv := &policyServer{}
	id, _, _ := startServerCA(t, srv)
	id.Dir = t.TempDir()
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	otherCAKey := newP256(t)
	otherCAT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	otherDER, _ := x509.CreateCertificate(rand.Reader, otherCAT, otherCAT, &otherCAKey.PublicKey, otherCAKey)
	otherCA, _ := x509.ParseCertificate(otherDER)
	key := newP256(t)
	srv.resp = &wardv1.GetPolicyResponse{Feed: feedtest.SignedFile(t, testFeed(10), key), FeedSerial: 10,
		FeedKeyCertificateDer: feedKeyCert(t, otherCA, otherCAKey, key)}
	f := report.LoadFeed(id, nil)
	if _, err := report.LoadPolicy(id.Dir, nil).Refresh(ctx, cl, f); err != nil {
		t.Fatal(err)
	}
	if len(id.FeedKey) != 0 {
		t.Fatal("a feed key of another CA was pinned")
	}
	if f.Current() != nil || !strings.Contains(f.Refused(), "no release feed key is pinned") {
		t.Fatalf("feed %v, refused %q; want none and a refusal", f.Current(), f.Refused())
	}
	if _, err := os.Stat(filepath.Join(id.Dir, enroll.FeedKeyFile)); !os.IsNotExist(err) {
		t.Errorf("feed key file: %v, want none", err)
	}
}
