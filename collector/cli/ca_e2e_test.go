package cli_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestCARotateEndToEnd: a real collector, ca rotate between a stop and a
// start; an agent enrolled before keeps calling with its old device
// certificate whether it trusts the old or the new CA, and new agents
// enrol with the new fingerprint or, during the transition, the old one.
func TestCARotateEndToEnd(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	oldCA, err := x509.ParseCertificate(c.CACertDER)
	if err != nil {
		t.Fatal(err)
	}
	oldFP := c.Fingerprint
	_, before := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)

	c.Stop()
	if out, stderr, code := runErr("ca", "rotate", "--data", c.DataDir); code != 0 {
		t.Fatalf("ca rotate: exit %d: %s%s", code, out, stderr)
	}
	c.Restart()
	if c.Fingerprint == oldFP {
		t.Fatal("the restarted collector serves the old CA")
	}
	newCA, err := x509.ParseCertificate(c.CACertDER)
	if err != nil {
		t.Fatal(err)
	}

	call := func(root *x509.Certificate, cert *tls.Certificate) error {
		roots := x509.NewCertPool()
		roots.AddCert(root)
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{*cert}}
		conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = wardv1grpc.NewAgentServiceClient(conn).GetPolicy(ctx, &wardv1.GetPolicyRequest{})
		return err
	}
	if err := call(oldCA, &before); err != nil {
		t.Errorf("agent trusting the old CA, device certificate of the old CA: %v", err)
	}
	if err := call(newCA, &before); err != nil {
		t.Errorf("agent trusting the new CA, device certificate of the old CA: %v", err)
	}

	src := source.NewLive()
	src.Root = t.TempDir()
	id, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: c.Token("staff", 1, time.Hour), Fingerprint: c.Fingerprint,
		StateDir: filepath.Join(t.TempDir(), "state"), Source: src})
	if err != nil {
		t.Fatalf("enrol with the new fingerprint: %v", err)
	}
	if err := id.Cert.Leaf.CheckSignatureFrom(newCA); err != nil {
		t.Errorf("device certificate after the rotation is not the new CA's: %v", err)
	}
	if err := call(newCA, &id.Cert); err != nil {
		t.Errorf("agent enrolled after the rotation: %v", err)
	}
	if err := call(oldCA, &id.Cert); err != nil {
		t.Errorf("new device certificate, agent trusting the old CA: %v", err)
	}
	// An install command still carrying the old fingerprint enrols too
	// (the old CA is in the handshake) and ends up pinning the new CA.
	late, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: c.Token("staff", 1, time.Hour), Fingerprint: oldFP,
		StateDir: filepath.Join(t.TempDir(), "state"), Source: src})
	if err != nil {
		t.Fatalf("enrol with the old fingerprint during the transition: %v", err)
	}
	if !late.CA.Equal(newCA) {
		t.Errorf("enrolled with the old fingerprint, pinned %q; want the new CA %q", late.CA.Subject, newCA.Subject)
	}
}
