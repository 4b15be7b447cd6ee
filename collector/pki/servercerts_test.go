package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time for ServerCerts.
type clock struct{ t atomic.Pointer[time.Time] }

func (c *clock) set(t time.Time)        { c.t.Store(&t) }
func (c *clock) now() time.Time         { return *c.t.Load() }
func newClock(t time.Time) *clock       { c := &clock{}; c.set(t); return c }
func serial(c *x509.Certificate) string { return SerialString(c.SerialNumber) }

func TestServerCertsRenewOnHandshake(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock(t0)
	const lifetime = 3 * time.Hour
	sc, err := ca.ServerCerts(dir, hosts, lifetime, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	var renewals atomic.Int32
	sc.OnRenew = func(leaf *x509.Certificate, err error) {
		if err != nil {
			t.Errorf("renewal: %v", err)
		}
		renewals.Add(1)
	}
	first := sc.Certificate()
	if got := first.Leaf.NotAfter.Sub(first.Leaf.NotBefore); got != lifetime+5*time.Minute {
		t.Fatalf("lifetime %s, want %s (and 5 minutes of clock skew)", got, lifetime)
	}
	renewAt := RenewAt(first.Leaf.NotBefore, first.Leaf.NotAfter)

	// Before RenewAt: the same certificate, from memory. Removing the
	// files proves no handshake reads or writes them.
	pdir := filepath.Join(dir, "pki")
	for _, f := range []string{"server.crt", "server.key"} {
		if err := os.Remove(filepath.Join(pdir, f)); err != nil {
			t.Fatal(err)
		}
	}
	clk.set(renewAt.Add(-time.Second))
	if c, err := sc.GetCertificate(nil); err != nil || c != first {
		t.Fatalf("before RenewAt: a different certificate (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(pdir, "server.crt")); !os.IsNotExist(err) {
		t.Fatalf("a handshake before RenewAt wrote server.crt: %v", err)
	}

	// Past RenewAt, concurrent handshakes: one renewal, everyone gets it.
	clk.set(renewAt.Add(time.Second))
	const n = 32
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := sc.GetCertificate(nil)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = serial(c.Leaf)
		}()
	}
	wg.Wait()
	if r := renewals.Load(); r != 1 {
		t.Fatalf("%d renewals for %d concurrent handshakes, want 1", r, n)
	}
	second := sc.Certificate()
	if serial(second.Leaf) == serial(first.Leaf) {
		t.Fatal("not renewed past RenewAt")
	}
	for i, s := range got {
		if s != serial(second.Leaf) {
			t.Fatalf("handshake %d got %s, want the renewed %s", i, s, serial(second.Leaf))
		}
	}
	if err := second.Leaf.CheckSignatureFrom(ca.Cert); err != nil || !bytes.Equal(second.Certificate[1], ca.Cert.Raw) {
		t.Fatalf("renewed certificate not signed by (or chained with) the CA: %v", err)
	}
	if !second.Leaf.NotBefore.Equal(renewAt.Add(time.Second - 5*time.Minute)) {
		t.Errorf("renewed NotBefore %s, want the clock's time less 5 minutes", second.Leaf.NotBefore)
	}
	// Persisted: a restart loads it rather than issuing another.
	disk, _, err := loadPair(filepath.Join(pdir, "server.crt"), filepath.Join(pdir, "server.key"))
	if err != nil || !bytes.Equal(disk.Raw, second.Leaf.Raw) {
		t.Fatalf("server.crt is not the renewed certificate: %v", err)
	}
	restarted, err := ca.ServerCerts(dir, hosts, lifetime, clk.now)
	if err != nil || serial(restarted.Certificate().Leaf) != serial(second.Leaf) {
		t.Fatalf("after a restart: %v, a different certificate", err)
	}
	if r := renewals.Load(); r != 1 {
		t.Errorf("%d renewals, want still 1", r)
	}
}

// TestServerCertsRenewalFailure: a renewal that cannot write keeps the
// current certificate while it is valid and retries a minute later.
func TestServerCertsRenewalFailure(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock(t0)
	sc, err := ca.ServerCerts(dir, hosts, 3*time.Hour, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	var failures atomic.Int32
	sc.OnRenew = func(_ *x509.Certificate, err error) {
		if err != nil {
			failures.Add(1)
		}
	}
	first := sc.Certificate()
	// The certificate's directory is not there (a read-only one would
	// not stop root, who runs these tests in CI).
	sc.certPath = filepath.Join(dir, "gone", "server.crt")
	sc.keyPath = filepath.Join(dir, "gone", "server.key")
	clk.set(RenewAt(first.Leaf.NotBefore, first.Leaf.NotAfter).Add(time.Second))
	for range 3 {
		if c, err := sc.GetCertificate(nil); err != nil || c != first {
			t.Fatalf("failed renewal: %v; want the valid current certificate", err)
		}
	}
	if f := failures.Load(); f != 1 {
		t.Fatalf("%d renewal attempts within the retry minute, want 1", f)
	}
	clk.set(first.Leaf.NotAfter.Add(time.Second))
	if c, err := sc.GetCertificate(nil); err == nil || c != nil {
		t.Fatal("served an expired certificate after a failed renewal, want an error")
	}
	sc.certPath, sc.keyPath = filepath.Join(dir, "pki", "server.crt"), filepath.Join(dir, "pki", "server.key")
	clk.set(first.Leaf.NotAfter.Add(2 * time.Minute))
	if c, err := sc.GetCertificate(nil); err != nil || c == first {
		t.Fatalf("after the retry delay: %v, renewed %v", err, c != first)
	}
}

// TestServerCertsReissueOnLoad: the certificate on disk is kept only when
// it covers the host names, is the current CA's and is before RenewAt.
func TestServerCertsReissueOnLoad(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	at := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	sc, err := ca.ServerCerts(dir, hosts, 0, at(t0))
	if err != nil {
		t.Fatal(err)
	}
	base := sc.Certificate().Leaf
	if got := base.NotAfter.Sub(t0); got != DefaultServerLifetime {
		t.Errorf("default lifetime %s, want %s", got, DefaultServerLifetime)
	}
	key := sc.Certificate().PrivateKey.(*ecdsa.PrivateKey)
	renewAt := RenewAt(base.NotBefore, base.NotAfter)
	for _, tc := range []struct {
		name  string
		hosts []string
		now   time.Time
		kept  bool
	}{
		{"same names before RenewAt", hosts, renewAt.Add(-time.Minute), true},
		{"fewer names", hosts[:1], t0, true},
		{"a new name", append([]string{"other.example"}, hosts...), t0, false},
		{"past RenewAt", hosts, renewAt, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := writePair(filepath.Join(dir, "pki", "server.crt"), filepath.Join(dir, "pki", "server.key"), base.Raw, key); err != nil {
				t.Fatal(err)
			}
			got, err := ca.ServerCerts(dir, tc.hosts, 0, at(tc.now))
			if err != nil {
				t.Fatal(err)
			}
			if kept := bytes.Equal(got.Certificate().Leaf.Raw, base.Raw); kept != tc.kept {
				t.Errorf("kept %v, want %v", kept, tc.kept)
			}
			if err := got.Certificate().Leaf.VerifyHostname(tc.hosts[0]); err != nil {
				t.Error(err)
			}
		})
	}
	// After a rotation the old CA's certificate is replaced by the new CA's.
	next, err := Rotate(dir, t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := writePair(filepath.Join(dir, "pki", "server.crt"), filepath.Join(dir, "pki", "server.key"), base.Raw, key); err != nil {
		t.Fatal(err)
	}
	got, err := next.ServerCerts(dir, hosts, 0, at(t0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if leaf := got.Certificate().Leaf; bytes.Equal(leaf.Raw, base.Raw) || leaf.CheckSignatureFrom(next.Cert) != nil {
		t.Error("after Rotate the old CA's server certificate was kept")
	}
	// A torn pair (a crash between writing key and certificate) is
	// replaced, not a reason to refuse to start.
	if err := os.WriteFile(filepath.Join(dir, "pki", "server.key"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := next.ServerCerts(dir, hosts, 0, at(t0.Add(time.Hour))); err != nil {
		t.Errorf("torn server.key: %v", err)
	}
}
