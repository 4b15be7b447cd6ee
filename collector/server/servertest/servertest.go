// Package servertest starts a real collector (gRPC over TLS 1.3 on
// 127.0.0.1, SQLite in t.TempDir()) for tests in any package.
//
//	c := servertest.Start(t)             // listening on 127.0.0.1:<free port>
//	tok := c.Token("staff", 1, time.Hour) // an enrolment token for group "staff"
//	// c.Addr, c.Fingerprint ("sha256:<hex>"), c.CACertDER: what an agent needs
//	id, cert := c.Enroll(ctx, tok, nil)   // enrol like an agent would (fresh P-256 key)
//	conn := c.Dial(&cert)                 // mTLS client connection (nil: no client cert)
//	c.Reports(id)                          // what was stored, newest first
//	c.Restart()                            // stop and start again: same dir, same address
//
// Options tweak the server.Config before start (limits, rate, clock,
// logger). The collector is stopped by t.Cleanup.
package servertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// Collector is a collector running for a test.
type Collector struct {
	// Addr is the gRPC address (127.0.0.1:port), HTTPAddr the HTTP one.
	Addr, HTTPAddr string
	// Fingerprint is the CA fingerprint agents pin; CACertDER the CA.
	Fingerprint string
	CACertDER   []byte
	// DataDir is the collector's data directory.
	DataDir string

	t   testing.TB
	cfg server.Config
	mu  sync.Mutex
	srv *server.Server
}

// Option changes the configuration before the collector starts.
type Option func(*server.Config)

// Start starts a collector on 127.0.0.1 with its data in t.TempDir().
// Logs are discarded unless an Option sets a Logger.
func Start(t testing.TB, opts ...Option) *Collector {
	t.Helper()
	cfg := server.Config{
		DataDir:   t.TempDir(),
		GRPCAddr:  "127.0.0.1:0",
		HTTPAddr:  "127.0.0.1:0",
		Hostnames: []string{"127.0.0.1", "localhost"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Collector{t: t, cfg: cfg, DataDir: cfg.DataDir}
	c.start()
	// Pin the ports so Restart comes back on the same address.
	c.cfg.GRPCAddr, c.cfg.HTTPAddr = c.Addr, c.HTTPAddr
	t.Cleanup(c.Stop)
	return c
}

func (c *Collector) start() {
	c.t.Helper()
	srv, err := server.New(c.cfg)
	if err != nil {
		c.t.Fatalf("servertest: new collector: %v", err)
	}
	if err := srv.Start(); err != nil {
		c.t.Fatalf("servertest: start collector: %v", err)
	}
	c.mu.Lock()
	c.srv = srv
	c.mu.Unlock()
	c.Addr, c.HTTPAddr = srv.GRPCAddr(), srv.HTTPAddr()
	c.Fingerprint, c.CACertDER = srv.CAFingerprint(), srv.CA().Cert.Raw
}

// Server is the running server.
func (c *Collector) Server() *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv
}

// Store is the running server's store.
func (c *Collector) Store() store.Store { return c.Server().Store() }

// ConnectedDiskPolicy assigns group a copy of the shipped baseline (read
// from baselinePath, named "field", version 1) whose disk-encrypted rule
// counts its 72 hours of grace in connected time (docs/connectivity.md),
// for tests of connected-grace deadlines on a rule that is easy to fail.
func (c *Collector) ConnectedDiskPolicy(t testing.TB, group, baselinePath string) {
	t.Helper()
	base, err := os.ReadFile(baselinePath)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(base), "name: baseline\nversion: 2\n", "name: field\nversion: 1\n", 1)
	i := strings.Index(doc, "  - id: disk-encrypted\n")
	j := strings.Index(doc[max(i, 0):], "    grace: 72h\n")
	if i < 0 || j < 0 {
		t.Fatal("the baseline's disk-encrypted rule has no 72h grace any more")
	}
	doc = doc[:i+j] + "    grace: 72h connected\n" + doc[i+j+len("    grace: 72h\n"):]
	p, err := policies.Parse("field.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Store().SetPolicy(context.Background(), store.GroupPolicy{Group: group, Name: p.Name, Version: p.Version, Document: []byte(doc), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// Stop stops the collector (calls in flight finish). Safe to repeat.
func (c *Collector) Stop() { c.Server().Stop() }

// Restart stops the collector and starts a new one on the same data
// directory and addresses, like a process restart.
func (c *Collector) Restart() {
	c.t.Helper()
	c.Stop()
	c.start()
}

// Token creates an enrolment token for group.
func (c *Collector) Token(group string, uses int, ttl time.Duration) string {
	c.t.Helper()
	plain, _, err := token.Create(context.Background(), c.Store(), group, uses, ttl, time.Now())
	if err != nil {
		c.t.Fatalf("servertest: create token: %v", err)
	}
	return plain
}

// Reports returns the device's stored reports, newest first.
func (c *Collector) Reports(deviceID string) []store.Report {
	c.t.Helper()
	rs, err := c.Store().Reports(context.Background(), deviceID, 0)
	if err != nil {
		c.t.Fatalf("servertest: reports: %v", err)
	}
	return rs
}

// TLSConfig is a client TLS 1.3 config trusting only the collector CA,
// presenting cert when it is not nil.
func (c *Collector) TLSConfig(cert *tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	ca, err := x509.ParseCertificate(c.CACertDER)
	if err != nil {
		c.t.Fatalf("servertest: parse CA: %v", err)
	}
	pool.AddCert(ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13, ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// Dial connects to the collector over TLS, with cert as the client
// certificate when it is not nil. The connection is closed by t.Cleanup.
func (c *Collector) Dial(cert *tls.Certificate) *grpc.ClientConn {
	c.t.Helper()
	conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(credentials.NewTLS(c.TLSConfig(cert))))
	if err != nil {
		c.t.Fatalf("servertest: dial: %v", err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

// Enroll enrols like an agent: a fresh ECDSA P-256 key, a CSR, the token.
// info may be nil. It returns the device id and the client certificate.
func (c *Collector) Enroll(ctx context.Context, tok string, info *wardv1.DeviceInfo) (string, tls.Certificate) {
	c.t.Helper()
	resp, cert, err := c.TryEnroll(ctx, tok, info)
	if err != nil {
		c.t.Fatalf("servertest: enroll: %v", err)
	}
	return resp.DeviceId, cert
}

// TryEnroll is Enroll returning the error (a gRPC status) instead of failing.
func (c *Collector) TryEnroll(ctx context.Context, tok string, info *wardv1.DeviceInfo) (*wardv1.EnrollResponse, tls.Certificate, error) {
	c.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatalf("servertest: key: %v", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
	if err != nil {
		c.t.Fatalf("servertest: csr: %v", err)
	}
	if info == nil {
		info = &wardv1.DeviceInfo{Hostname: "test-host", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test"}
	}
	resp, err := wardv1grpc.NewEnrollmentServiceClient(c.Dial(nil)).Enroll(ctx, &wardv1.EnrollRequest{Token: tok, CsrDer: csr, Device: info})
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(resp.CertificateDer)
	if err != nil {
		c.t.Fatalf("servertest: parse issued certificate: %v", err)
	}
	return resp, tls.Certificate{Certificate: [][]byte{resp.CertificateDer}, PrivateKey: key, Leaf: leaf}, nil
}
