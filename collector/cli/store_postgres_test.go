package cli_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// lockedBuffer is an output the serving goroutine writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// passwordURL is a postgres:// URL of a fresh test database owned by a
// new role that logs in with a password over TCP, so the test can see
// the password never shows.
func passwordURL(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	role, password := "ward_pw_"+hex.EncodeToString(b), "pw-"+hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, pgtest.Server())
	if err != nil {
		pgtest.DSN(t) // skips, or fails under CI=true, with the reason
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE ROLE `+role+` LOGIN PASSWORD '`+password+`'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.Server())
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `DROP ROLE `+role); err != nil {
			t.Error(err)
		}
	})
	cfg, err := pgx.ParseConfig(pgtest.DSN(t)) // dropped before the role
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+cfg.Database+` OWNER TO `+role); err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: "127.0.0.1:5432", Path: "/" + cfg.Database, RawQuery: "sslmode=disable"}
	// The test server may not take TCP with passwords: then use its socket.
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Logf("no password login over TCP (%v); using the test server's own DSN", err)
		return pgtest.URL(t), ""
	}
	c.Close(ctx)
	return u.String(), password
}

// serve --store postgres://… keeps the fleet in PostgreSQL: an agent
// enrols and reports through it, and the admin commands read the same
// fleet from the same URL (flag or WARD_STORE). The password shows nowhere.
func TestServeStorePostgres(t *testing.T) {
	storeURL, password := passwordURL(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"serve", "--data", dir, "--store", storeURL, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
		for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
			if password != "" && strings.Contains(out, password) {
				t.Errorf("serve's %s shows the password: %s", name, out)
			}
		}
	})
	addr := ""
	grpcLine := regexp.MustCompile(`gRPC on (\S+),`)
	for deadline := time.Now().Add(30 * time.Second); addr == ""; time.Sleep(50 * time.Millisecond) {
		if m := grpcLine.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s %s", stdout.String(), stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "store: postgres://") {
		t.Errorf("serve does not say which store it uses: %s", stdout.String())
	}

	out, code := run(t, "token", "create", "--data", dir, "--store", storeURL, "--group", "staff", "--uses", "1", "--ttl", "1h", "--json")
	if code != 0 {
		t.Fatal("token create --store failed")
	}
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		t.Fatal(err)
	}

	// Enrol and report like an agent, trusting the CA in the data dir.
	ca, err := pki.Load(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	dial := func(cert *tls.Certificate) *grpc.ClientConn {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13, ServerName: "127.0.0.1"}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
	resp, err := wardv1grpc.NewEnrollmentServiceClient(dial(nil)).Enroll(ctx, &wardv1.EnrollRequest{Token: tok.Token, CsrDer: csr,
		Device: &wardv1.DeviceInfo{Hostname: "pg-laptop", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test"}})
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{resp.CertificateDer}, PrivateKey: key}
	f := false
	facts := &wardv1.Facts{
		CollectedAt:    timestamppb.Now(),
		Os:             &wardv1.OSFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &f}}},
		Firewall:       &wardv1.FirewallFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}},
	}
	ack, err := wardv1grpc.NewAgentServiceClient(dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Epoch: resp.Epoch, Sequence: 1, CollectedAt: timestamppb.Now(), Facts: facts}})
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	if ack.AckedSequence != 1 {
		t.Errorf("acknowledged %d, want 1", ack.AckedSequence)
	}

	type row struct {
		ID, Hostname, Status string
		Fail                 int
	}
	list := func(args ...string) []row {
		t.Helper()
		out, code := run(t, append([]string{"devices", "list", "--data", dir, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("devices list %v failed", args)
		}
		var rows []row
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("devices list: %q: %v", out, err)
		}
		return rows
	}
	want := fmt.Sprintf("[{%s pg-laptop failing", resp.DeviceId)
	if rows := list("--store", storeURL); !strings.HasPrefix(fmt.Sprint(rows), want) || rows[0].Fail == 0 {
		t.Errorf("devices list --store = %+v, want %s… with failures", rows, want)
	}
	t.Setenv("WARD_STORE", storeURL)
	if rows := list(); len(rows) != 1 || rows[0].ID != resp.DeviceId {
		t.Errorf("devices list with WARD_STORE = %+v", rows)
	}
	// The data directory's SQLite file is not the fleet.
	if _, _, code := runErr("devices", "list", "--data", dir, "--store", "sqlite"); code == 0 {
		t.Error("devices list --store sqlite found a fleet in the data directory")
	}
}

func TestStoreFlagRefusesUnknownSpec(t *testing.T) {
	_, stderr, code := runErr("devices", "list", "--data", t.TempDir(), "--store", "mysql://u:hunter2@db/ward")
	if code != 3 || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "postgres://") {
		t.Errorf("exit %d, %q: want a usage error (3) naming postgres://, without the password", code, stderr)
	}
}

// Once the CA exists, serve refuses a PostgreSQL database without the
// collector's tables (a wrong or lost database is never a new fleet);
// new-fleet --store creates them on purpose, and refuses to twice.
func TestServePostgresRefusesEmptyDatabase(t *testing.T) {
	dir, _ := ranOnce(t)
	storeURL := pgtest.URL(t)
	_, stderr, code := runErr("serve", "--data", dir, "--store", storeURL, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("serve on an empty database after a first run: exit %d, want 1 (%s)", code, stderr)
	}
	for _, want := range []string{"refusing to start", "database holds no fleet", "ca.key", "new-fleet --data " + dir + " --store"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("serve's error %q does not say %q", stderr, want)
		}
	}
	if _, _, code := runErr("devices", "list", "--data", dir, "--store", storeURL); code != 1 {
		t.Errorf("devices list on the empty database: exit %d, want 1", code)
	}
	if out, stderr, code := runErr("new-fleet", "--data", dir, "--store", storeURL); code != 0 || !strings.Contains(out, "created an empty fleet") {
		t.Fatalf("new-fleet --store: exit %d, %q %q", code, out, stderr)
	}
	if out, _ := run(t, "devices", "list", "--data", dir, "--store", storeURL, "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("devices list after new-fleet = %q, want []", out)
	}
	if _, stderr, code := runErr("new-fleet", "--data", dir, "--store", storeURL); code != 1 || !strings.Contains(stderr, "holds the collector's tables") {
		t.Errorf("second new-fleet --store: exit %d, %q", code, stderr)
	}
}
