package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(30 * 24 * time.Hour) // the rotation
)

var hosts = []string{"collector.example", "127.0.0.1"}

// deviceCert is a client certificate for a new key signed by a.
func deviceCert(t *testing.T, a *Authority, id string, now time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _, _, err := a.SignDeviceWindow(&key.PublicKey, id, now.Add(-time.Minute), now.Add(DefaultDeviceLifetime))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// handshake runs a TLS 1.3 handshake over loopback at now between a
// server presenting sc and verifying client certificates against
// a.ClientPool(), and a client trusting roots and presenting client (if
// any). It returns the client's verified chains, the client's error and
// the server's.
func handshake(t *testing.T, a *Authority, sc *ServerCerts, roots *x509.CertPool, client *tls.Certificate, now time.Time) ([][]*x509.Certificate, error, error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	clock := func() time.Time { return now }
	serr := make(chan error, 1)
	go func() {
		conn, err := lis.Accept()
		if err != nil {
			serr <- err
			return
		}
		defer conn.Close()
		cfg := &tls.Config{
			MinVersion:     tls.VersionTLS13,
			GetCertificate: sc.GetCertificate,
			ClientCAs:      a.ClientPool(),
			Time:           clock,
		}
		if client != nil {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		srv := tls.Server(conn, cfg)
		err = srv.Handshake()
		if err == nil {
			_, err = srv.Write([]byte{1})
		}
		serr <- err
	}()
	ccfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "collector.example", Time: clock}
	if client != nil {
		// Sent whatever CAs the server names, as an agent does.
		ccfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
	}
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cli := tls.Client(conn, ccfg)
	cerr := cli.Handshake()
	if cerr == nil {
		// TLS 1.3 checks the client certificate after the client's
		// handshake: the server's byte or alert is its verdict.
		_, rerr := cli.Read(make([]byte, 1))
		if rerr != nil {
			t.Logf("client read: %v", rerr)
		}
	} else {
		conn.Close()
	}
	return cli.ConnectionState().VerifiedChains, cerr, <-serr
}

func pool(cs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c)
	}
	return p
}

// rotated is a data dir whose CA was created at t0 and rotated at t1, a
// device certificate issued before the rotation and one after.
type rotated struct {
	dir           string
	old, ca       *Authority
	oldKeyDER     []byte
	before, after tls.Certificate
}

func rotate(t *testing.T) rotated {
	t.Helper()
	r := rotated{dir: t.TempDir()}
	old, created, err := LoadOrCreate(r.dir, t0)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: created %v, %v", created, err)
	}
	r.old = old
	if r.oldKeyDER, err = x509.MarshalPKCS8PrivateKey(old.key); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ServerCert(r.dir, hosts, t0); err != nil {
		t.Fatal(err)
	}
	r.before = deviceCert(t, old, "dev_before", t1.Add(-time.Hour))
	if r.ca, err = Rotate(r.dir, t1, 0); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	r.after = deviceCert(t, r.ca, "dev_after", t1)
	return r
}

func TestRotateKeepsAgentsOfBothCAs(t *testing.T) {
	r := rotate(t)
	if bytes.Equal(r.ca.Cert.Raw, r.old.Cert.Raw) || r.ca.Cert.Subject.CommonName == r.old.Cert.Subject.CommonName {
		t.Fatalf("the new CA %q is not distinct from the old %q", r.ca.Cert.Subject, r.old.Cert.Subject)
	}
	if len(r.ca.Previous) != 1 || !bytes.Equal(r.ca.Previous[0].Raw, r.old.Cert.Raw) {
		t.Fatalf("Previous = %d certificates, want the old CA", len(r.ca.Previous))
	}
	if len(r.ca.Cross) != 1 {
		t.Fatalf("Cross = %d certificates, want 1", len(r.ca.Cross))
	}
	now := t1.Add(time.Hour)
	sc, err := r.ca.ServerCerts(r.dir, hosts, 0, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	leaf := sc.Certificate().Leaf
	if err := leaf.CheckSignatureFrom(r.ca.Cert); err != nil {
		t.Fatalf("server certificate after Rotate is not the new CA's: %v", err)
	}
	want := [][]byte{leaf.Raw, r.ca.Cert.Raw, r.ca.Cross[0].Raw, r.old.Cert.Raw}
	if got := sc.Certificate().Certificate; !equalChains(got, want) {
		t.Fatalf("presented chain has %d certificates, want leaf, CA, cross, previous CA", len(got))
	}

	other, _, err := LoadOrCreate(t.TempDir(), t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		roots  *x509.CertPool
		client *tls.Certificate
		// path is the verified chain's certificates after the leaf;
		// nil for a handshake that must fail.
		path       []*x509.Certificate
		serverFail bool
	}{
		{"root old CA (enrolled before)", pool(r.old.Cert), &r.before, []*x509.Certificate{r.ca.Cross[0], r.old.Cert}, false},
		{"root new CA (enrolled after)", pool(r.ca.Cert), &r.after, []*x509.Certificate{r.ca.Cert}, false},
		{"root old CA, renewed device certificate", pool(r.old.Cert), &r.after, []*x509.Certificate{r.ca.Cross[0], r.old.Cert}, false},
		{"root of another collector", pool(other.Cert), nil, nil, false},
		{"device certificate of another collector", pool(r.ca.Cert), ptr(deviceCert(t, other, "dev_other", t1)), []*x509.Certificate{r.ca.Cert}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chains, cerr, serr := handshake(t, r.ca, sc, tc.roots, tc.client, now)
			if tc.path == nil {
				if cerr == nil {
					t.Fatal("the client verified the server against an unrelated root")
				}
				return
			}
			if cerr != nil {
				t.Fatalf("client: %v", cerr)
			}
			if tc.serverFail != (serr != nil) {
				t.Fatalf("server accepted the client certificate: %v, want accepted %v", serr, !tc.serverFail)
			}
			if len(chains) == 0 || !equalCerts(chains[0][1:], tc.path) {
				t.Fatalf("verified chain %v, want leaf then %v", subjects(chains), names(tc.path))
			}
		})
	}

	// An enrolling agent pins a fingerprint (agent/enroll's pinner):
	// the CA with it is in the chain and verifies the leaf on its own.
	for _, fp := range []string{r.ca.Fingerprint(), r.old.Fingerprint()} {
		presented := parseAll(t, sc.Certificate().Certificate)
		var pinned *x509.Certificate
		inter := x509.NewCertPool()
		for _, c := range presented {
			if Fingerprint(c.Raw) == fp {
				pinned = c
			} else {
				inter.AddCert(c)
			}
		}
		if pinned == nil {
			t.Fatalf("the chain does not hold the CA %s", fp)
		}
		if _, err := presented[0].Verify(x509.VerifyOptions{Roots: pool(pinned), Intermediates: inter, DNSName: "collector.example", CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("pinned %s: %v", fp, err)
		}
	}

	// Device certificates of both CAs verify against the client pool
	// and are Issued; one of another collector is neither.
	for _, c := range []*x509.Certificate{r.before.Leaf, r.after.Leaf} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: r.ca.ClientPool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", c.Subject.CommonName, err)
		}
		if !r.ca.Issued(c) {
			t.Errorf("%s: Issued = false", c.Subject.CommonName)
		}
	}
	if o := deviceCert(t, other, "dev_other", t1); r.ca.Issued(o.Leaf) {
		t.Error("Issued accepted another collector's device certificate")
	}
}

func TestCrossCertificate(t *testing.T) {
	r := rotate(t)
	x := r.ca.Cross[0]
	if err := x.CheckSignatureFrom(r.old.Cert); err != nil {
		t.Errorf("cross certificate not signed by the old CA: %v", err)
	}
	if !bytes.Equal(x.RawIssuer, r.old.Cert.RawSubject) {
		t.Errorf("cross issuer %q, want the old CA %q", x.Issuer, r.old.Cert.Subject)
	}
	if !r.ca.key.PublicKey.Equal(x.PublicKey) || !bytes.Equal(x.RawSubject, r.ca.Cert.RawSubject) {
		t.Errorf("cross certificate is not the new CA's subject %q and key (has %q)", r.ca.Cert.Subject, x.Subject)
	}
	if !x.IsCA || x.MaxPathLen != 0 || !x.MaxPathLenZero {
		t.Errorf("cross certificate IsCA %v, MaxPathLen %d: want a CA with no CA under it", x.IsCA, x.MaxPathLen)
	}
	if x.NotAfter.After(r.old.Cert.NotAfter) {
		t.Errorf("cross certificate valid until %s, after the old CA (%s)", x.NotAfter, r.old.Cert.NotAfter)
	}
	if !bytes.Equal(x.SubjectKeyId, r.ca.Cert.SubjectKeyId) {
		t.Error("cross certificate's subject key id differs from the new CA's")
	}
	// The old key is gone: no file under pki holds it, ca.key is the new one.
	files, err := os.ReadDir(filepath.Join(r.dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
		data, err := os.ReadFile(filepath.Join(r.dir, "pki", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, r.oldKeyDER) || bytes.Contains(data, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: r.oldKeyDER})) {
			t.Errorf("%s still holds the old CA key", f.Name())
		}
	}
	if got := strings.Join(names, " "); got != "ca-cross.crt ca-previous.crt ca.crt ca.key" {
		t.Errorf("pki holds %s, want ca-cross.crt ca-previous.crt ca.crt ca.key (the server certificate removed)", got)
	}
	_, key, err := loadPair(filepath.Join(r.dir, "pki", "ca.crt"), filepath.Join(r.dir, "pki", "ca.key"))
	if err != nil || !key.Equal(r.ca.key) {
		t.Errorf("ca.key is not the new CA's key: %v", err)
	}
}

func TestNewCAs(t *testing.T) {
	dir := t.TempDir()
	a, created, err := LoadOrCreateWith(dir, t0, 48*time.Hour)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateWith: created %v, %v", created, err)
	}
	if !a.Cert.NotAfter.Equal(t0.Add(48 * time.Hour)) {
		t.Errorf("NotAfter %s, want %s", a.Cert.NotAfter, t0.Add(48*time.Hour))
	}
	if a.Cert.MaxPathLen != 1 {
		t.Errorf("MaxPathLen %d, want 1 (room for a successor's cross certificate)", a.Cert.MaxPathLen)
	}
	if cn := a.Cert.Subject.CommonName; !strings.HasPrefix(cn, "Ward collector CA 2026-12-01 ") || len(cn) != len("Ward collector CA 2026-12-01 ")+8 {
		t.Errorf("subject CN %q, want \"Ward collector CA 2026-12-01 <8 hex digits>\"", cn)
	}
	b, _, err := LoadOrCreate(t.TempDir(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Cert.Subject.CommonName == a.Cert.Subject.CommonName {
		t.Errorf("two CAs made the same day share the subject %q", a.Cert.Subject)
	}
	if !b.Cert.NotAfter.Equal(t0.Add(DefaultCALifetime)) {
		t.Errorf("LoadOrCreate: NotAfter %s, want 10 years", b.Cert.NotAfter)
	}
	again, created, err := LoadOrCreateWith(dir, t0.Add(time.Hour), 0)
	if err != nil || created || !bytes.Equal(again.Cert.Raw, a.Cert.Raw) {
		t.Errorf("reload: created %v, same CA %v, %v", created, err == nil && bytes.Equal(again.Cert.Raw, a.Cert.Raw), err)
	}
	r, err := Rotate(dir, t0.Add(time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The cross certificate ends with the earlier of the two CAs.
	if !r.Cert.NotAfter.Equal(t0.Add(25*time.Hour)) || !r.Cross[0].NotAfter.Equal(r.Cert.NotAfter) {
		t.Errorf("rotated CA until %s, cross until %s", r.Cert.NotAfter, r.Cross[0].NotAfter)
	}
}

func TestLoadAfterRotate(t *testing.T) {
	r := rotate(t)
	pdir := filepath.Join(r.dir, "pki")
	a, created, err := LoadOrCreate(r.dir, t1.Add(time.Hour))
	if err != nil || created {
		t.Fatalf("LoadOrCreate: created %v, %v", created, err)
	}
	if !bytes.Equal(a.Cert.Raw, r.ca.Cert.Raw) || len(a.Previous) != 1 || !bytes.Equal(a.Previous[0].Raw, r.old.Cert.Raw) ||
		len(a.Cross) != 1 || !bytes.Equal(a.Cross[0].Raw, r.ca.Cross[0].Raw) {
		t.Fatalf("LoadOrCreate after Rotate: CA %q, %d previous, %d cross", a.Cert.Subject, len(a.Previous), len(a.Cross))
	}

	// Past the old CA's expiry it is trusted for nothing, still on disk.
	late := r.old.Cert.NotAfter.Add(time.Hour)
	a, err = Load(r.dir, late)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Previous) != 0 || len(a.ExpiredPrevious) != 1 || !bytes.Equal(a.ExpiredPrevious[0].Raw, r.old.Cert.Raw) {
		t.Errorf("at %s: %d previous, %d expired previous; want 0 and the old CA", late, len(a.Previous), len(a.ExpiredPrevious))
	}
	if _, err := r.before.Leaf.Verify(x509.VerifyOptions{Roots: a.ClientPool(), CurrentTime: t1, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("an expired previous CA is still in the client pool")
	}
	// A second rotation keeps every earlier CA in ca-previous.crt.
	if _, err := Rotate(r.dir, late, 0); err != nil {
		t.Fatal(err)
	}
	prev, err := readBundle(filepath.Join(pdir, "ca-previous.crt"))
	if err != nil || len(prev) != 2 || !bytes.Equal(prev[0].Raw, r.old.Cert.Raw) || !bytes.Equal(prev[1].Raw, r.ca.Cert.Raw) {
		t.Errorf("ca-previous.crt after two rotations: %d certificates, %v; want both earlier CAs in order", len(prev), err)
	}

	// Malformed bundles are errors that name the file.
	good, err := os.ReadFile(filepath.Join(pdir, "ca-cross.crt"))
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.after.Leaf.Raw})
	for _, tc := range []struct {
		file string
		data []byte
		want string
	}{
		{"ca-cross.crt", []byte("not a certificate"), "not PEM"},
		{"ca-cross.crt", append(append([]byte{}, good...), "trailing"...), "certificate 2: not PEM"},
		{"ca-cross.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), "certificate 1"},
		{"ca-previous.crt", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}), `"PRIVATE KEY"`},
		{"ca-previous.crt", leafPEM, "is not a CA certificate"},
	} {
		path := filepath.Join(pdir, tc.file)
		saved, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err = LoadOrCreate(r.dir, late)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s holding %.20q: %v; want an error naming it and saying %q", tc.file, tc.data, err, tc.want)
		}
		if err := os.WriteFile(path, saved, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRotateCrash stops Rotate after each step, as a crash would, and
// checks the directory loads as either the old CA as it was or the new
// one with its previous and cross certificates, and that rotating again
// then works.
func TestRotateCrash(t *testing.T) {
	steps := []string{"previous", "cross", "next-key", "ca.crt", "ca.key", "server"}
	crash := errors.New("crash")
	for i, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			old, _, err := LoadOrCreate(dir, t0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := old.ServerCert(dir, hosts, t0); err != nil {
				t.Fatal(err)
			}
			rotateStep = func(s string) error {
				if s == step {
					return crash
				}
				return nil
			}
			defer func() { rotateStep = func(string) error { return nil } }()
			if _, err := Rotate(dir, t1, 0); !errors.Is(err, crash) {
				t.Fatalf("Rotate: %v, want the crash", err)
			}
			rotateStep = func(string) error { return nil }

			a, created, err := LoadOrCreate(dir, t1)
			if err != nil || created {
				t.Fatalf("after a crash after %q: created %v, %v", step, created, err)
			}
			committed := i >= 3 // ca.crt replaced
			switch {
			case !committed && bytes.Equal(a.Cert.Raw, old.Cert.Raw):
				if len(a.Previous) != 0 || len(a.Cross) != 0 || !a.key.Equal(old.key) {
					t.Errorf("old CA with %d previous, %d cross, same key %v", len(a.Previous), len(a.Cross), a.key.Equal(old.key))
				}
			case committed && !bytes.Equal(a.Cert.Raw, old.Cert.Raw):
				if len(a.Previous) != 1 || !bytes.Equal(a.Previous[0].Raw, old.Cert.Raw) || len(a.Cross) != 1 || a.Cross[0].CheckSignatureFrom(old.Cert) != nil {
					t.Errorf("new CA with %d previous, %d cross", len(a.Previous), len(a.Cross))
				}
				if _, k, err := loadPair(filepath.Join(dir, "pki", "ca.crt"), filepath.Join(dir, "pki", "ca.key")); err != nil || !k.Equal(a.key) {
					t.Errorf("ca.key after loading: %v", err)
				}
			default:
				t.Fatalf("after a crash after %q the CA is %q (old %q)", step, a.Cert.Subject, old.Cert.Subject)
			}
			// The server certificate the CA loads is its own.
			sc, err := a.ServerCerts(dir, hosts, 0, func() time.Time { return t1 })
			if err != nil || sc.Certificate().Leaf.CheckSignatureFrom(a.Cert) != nil {
				t.Fatalf("server certificate after the crash: %v", err)
			}

			// Rotating again works and lists the old CA once.
			b, err := Rotate(dir, t1.Add(time.Hour), 0)
			if err != nil {
				t.Fatal(err)
			}
			prev, err := readBundle(filepath.Join(dir, "pki", "ca-previous.crt"))
			if err != nil {
				t.Fatal(err)
			}
			if !containsCert(prev, old.Cert) || (!committed && len(prev) != 1) || (committed && len(prev) != 2) {
				t.Errorf("ca-previous.crt holds %d certificates after rotating again", len(prev))
			}
			if len(b.Cross) != 1 || b.Cross[0].CheckSignatureFrom(a.Cert) != nil {
				t.Errorf("rotating again: %d cross certificates, want one signed by %q", len(b.Cross), a.Cert.Subject)
			}
		})
	}
}

// TestRotateRefusesLegacyCA: a CA of path length 0 (created before Ward
// could rotate) cannot chain a successor for the agents that trust it.
func TestRotateRefusesLegacyCA(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(), Subject: pkix.Name{CommonName: "Ward collector CA"},
		NotBefore: t0, NotAfter: t0.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := writePair(filepath.Join(dir, "pki", "ca.crt"), filepath.Join(dir, "pki", "ca.key"), der, key); err != nil {
		t.Fatal(err)
	}
	if _, err := Rotate(dir, t1, 0); !errors.Is(err, ErrNotCrossable) {
		t.Fatalf("Rotate of a path length 0 CA: %v, want ErrNotCrossable", err)
	}
	a, err := Load(dir, t1)
	if err != nil || !bytes.Equal(a.Cert.Raw, der) {
		t.Fatalf("the refused rotation changed the CA: %v", err)
	}
	if _, err := Rotate(t.TempDir(), t1, 0); !errors.Is(err, ErrNoCA) {
		t.Errorf("Rotate without a CA: %v, want ErrNoCA", err)
	}
}

func ptr[T any](v T) *T { return &v }

func parseAll(t *testing.T, ders [][]byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func equalChains(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func equalCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Raw, b[i].Raw) {
			return false
		}
	}
	return true
}

func names(cs []*x509.Certificate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Subject.CommonName+" by "+c.Issuer.CommonName)
	}
	return out
}

func subjects(chains [][]*x509.Certificate) [][]string {
	var out [][]string
	for _, ch := range chains {
		out = append(out, names(ch))
	}
	return out
}

// TestLoadOrCreateRefusesHalfACA: a CA file without its partner, or
// previous CAs without a current one, is damage to report, not a reason
// to make a new CA over it (every agent would have to enrol again).
func TestLoadOrCreateRefusesHalfACA(t *testing.T) {
	for _, missing := range []string{"ca.key", "ca.crt", "both"} {
		t.Run(missing, func(t *testing.T) {
			r := rotate(t)
			pdir := filepath.Join(r.dir, "pki")
			gone := []string{missing}
			if missing == "both" {
				gone = []string{"ca.crt", "ca.key"}
			}
			for _, f := range gone {
				if err := os.Remove(filepath.Join(pdir, f)); err != nil {
					t.Fatal(err)
				}
			}
			a, created, err := LoadOrCreate(r.dir, t1)
			if err == nil || created || a != nil || !strings.Contains(err.Error(), "refusing to create a new CA") {
				t.Fatalf("without %s: created %v, %v; want a refusal", missing, created, err)
			}
			if _, err := os.Stat(filepath.Join(pdir, "ca-previous.crt")); err != nil {
				t.Errorf("ca-previous.crt: %v", err)
			}
		})
	}
}
