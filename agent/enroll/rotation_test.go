package enroll_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// deliverOne queues a report and delivers the outbox with the identity,
// failing the test unless the collector acknowledged it.
func deliverOne(t *testing.T, what string, id *enroll.Identity, now func() time.Time) *enroll.Identity {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(id.Dir, "outbox"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	queueOne(t, ob, now())
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Now = now
	if n, err := cl.Deliver(context.Background(), ob, nil); err != nil || n != 1 {
		t.Fatalf("%s: delivered %d, %v", what, n, err)
	}
	return cl.Identity()
}

// TestCARotation: agents enrolled before `ca rotate` keep reporting
// (they verify the collector through the cross-signed certificate), pin
// the new CA at their next renewal, and get certificates of the new CA;
// agents enrolled after it, with the new fingerprint or (during the
// switch) the old one, work too.
func TestCARotation(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.Now, cfg.DeviceCertLifetime = clk.Now, 2*time.Minute
	})
	enrol := func(fp string) *enroll.Identity {
		t.Helper()
		id, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: c.Token("field", 1, time.Hour), Fingerprint: fp,
			StateDir: filepath.Join(t.TempDir(), "state"), Source: fixtureSource(t), Now: clk.Now})
		if err != nil {
			t.Fatalf("enrol with %s: %v", fp, err)
		}
		return id
	}
	oldFP := c.Fingerprint
	before := enrol(oldFP)
	deliverOne(t, "before the rotation", before, clk.Now)

	c.Stop()
	rotated, err := pki.Rotate(c.DataDir, clk.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Restart()
	if c.Fingerprint == oldFP || c.Fingerprint != rotated.Fingerprint() {
		t.Fatalf("after the rotation the collector's CA is %s (was %s, rotated to %s)", c.Fingerprint, oldFP, rotated.Fingerprint())
	}

	// Pinned to the old CA only: verifies through the cross certificate.
	before = deliverOne(t, "enrolled before, not renewed yet", before, clk.Now)
	if enroll.Fingerprint(before.CA.Raw) != oldFP {
		t.Fatal("the CA pin changed without a renewal")
	}
	after := enrol(c.Fingerprint)
	if !bytes.Equal(after.CA.Raw, rotated.Cert.Raw) || after.Cert.Leaf.CheckSignatureFrom(rotated.Cert) != nil {
		t.Fatal("an agent enrolled after the rotation is not on the new CA")
	}
	deliverOne(t, "enrolled after", after, clk.Now)
	late := enrol(oldFP)
	deliverOne(t, "enrolled after with the old fingerprint", late, clk.Now)

	// The next renewal moves the old agent to the new CA.
	clk.mu.Lock()
	clk.t = before.RenewAt().Add(time.Second)
	clk.mu.Unlock()
	renewed := deliverOne(t, "renewing", before, clk.Now)
	loaded, err := enroll.Load(before.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.CA.Raw, rotated.Cert.Raw) || len(loaded.Roots) != 2 || enroll.Fingerprint(loaded.Roots[1].Raw) != oldFP {
		t.Errorf("after renewal the agent pins %s and %d roots, want the new CA first and the old one kept", enroll.Fingerprint(loaded.CA.Raw), len(loaded.Roots))
	}
	if loaded.Cert.Leaf.CheckSignatureFrom(rotated.Cert) != nil || certSerial(loaded.Cert) != certSerial(renewed.Cert) {
		t.Error("the renewed certificate is not of the new CA")
	}
	deliverOne(t, "renewed onto the new CA", loaded, clk.Now)
}

// TestRenewalNeverPinsAnUnvouchedCA: a renewal answer whose certificate
// comes from a CA the agent does not pin, even with a "cross" certificate
// the impostor signed itself, is refused and pins nothing.
func TestRenewalNeverPinsAnUnvouchedCA(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: c.Token("field", 1, time.Hour), Fingerprint: c.Fingerprint,
		StateDir: filepath.Join(t.TempDir(), "state"), Source: fixtureSource(t)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := enroll.NewRenewal()
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(r.CSR)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Impostor CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	ca, _ := x509.ParseCertificate(caDER)
	crossTmpl := *caTmpl
	crossTmpl.SerialNumber = big.NewInt(8)
	crossDER, _ := x509.CreateCertificate(rand.Reader, &crossTmpl, ca, &key.PublicKey, key)
	leafDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: id.DeviceID},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature},
		ca, csr.PublicKey, key)
	_, err = r.Accept(id, &wardv1.RenewResponse{CertificateDer: leafDER, CaChainDer: [][]byte{caDER, crossDER}}, now)
	if err == nil {
		t.Fatal("accepted a certificate of a CA nobody pinned vouched for")
	}
	if loaded, _ := enroll.Load(id.Dir); loaded == nil || len(loaded.Roots) != 1 || !bytes.Equal(loaded.CA.Raw, id.CA.Raw) {
		t.Error("the pinned CAs changed")
	}
}

// TestServerCertificateRenewsWhileServing: a collector whose server
// certificate reaches 2/3 of its lifetime issues a new one at the next
// handshake; agents on the kept connection and on new ones keep reporting.
func TestServerCertificateRenewsWhileServing(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) { cfg.ServerCertLifetime = 9 * time.Second })
	id, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: c.Token("field", 1, time.Hour), Fingerprint: c.Fingerprint,
		StateDir: filepath.Join(t.TempDir(), "state"), Source: fixtureSource(t)})
	if err != nil {
		t.Fatal(err)
	}
	presented := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", c.Addr, id.TLSConfig())
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	first := presented()
	ob, _ := outbox.Open(filepath.Join(id.Dir, "outbox"), outbox.Options{})
	kept, _ := report.Dial(id, nil)
	defer kept.Close()
	renewAt := pki.RenewAt(first.NotBefore, first.NotAfter)
	if life := first.NotAfter.Sub(first.NotBefore); life > 10*time.Second {
		t.Fatalf("server certificate valid for %v, want the configured 9s (and a little back-dating)", life)
	}
	delivered := 0
	for time.Now().Before(renewAt.Add(2 * time.Second)) {
		queueOne(t, ob, time.Now())
		n, err := kept.Deliver(ctx, ob, nil)
		if err != nil {
			t.Fatalf("kept connection, %d delivered: %v", delivered, err)
		}
		delivered += n
		time.Sleep(500 * time.Millisecond)
	}
	second := presented()
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("past %v the collector still presents the certificate issued at %v", renewAt, first.NotBefore)
	}
	if second.CheckSignatureFrom(c.Server().CA().Cert) != nil {
		t.Error("the renewed server certificate is not signed by the CA")
	}
	deliverOne(t, "new connection after the server certificate renewed", id, time.Now)
	if third := presented(); third.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Error("the server certificate was renewed again right away")
	}
}
