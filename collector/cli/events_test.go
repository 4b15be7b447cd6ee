package cli_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/events"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

func TestServeRefusesBadEventFlags(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("webhook-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook-url", "ftp://siem.example/hook", "--webhook-secret-file", secret}, "want an http:// or https:// URL"},
		{[]string{"--webhook-url", "https://siem.example/hook?token=abc"}, "needs --webhook-secret-file"},
		{[]string{"--webhook-secret-file", secret}, "need --webhook-url"},
		{[]string{"--webhook-url", "https://siem.example/hook", "--webhook-secret-file", secret, "--webhook-events", "device.enrolled,device.exploded"}, `unknown event type "device.exploded"`},
		{[]string{"--webhook-url", "https://siem.example/hook", "--webhook-secret-file", filepath.Join(dir, "missing")}, "missing"},
		{[]string{"--events-retain", "-1h", "--event-file", filepath.Join(dir, "e.jsonl")}, "--events-retain"},
	} {
		args := append([]string{"serve", "--data", dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, c.args...)
		_, stderr, code := runErr(args...)
		if code != 3 || !strings.Contains(stderr, c.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 3 and %q", c.args, code, stderr, c.want)
		}
		if strings.Contains(stderr, "token=abc") {
			t.Errorf("serve %v shows the URL's query: %s", c.args, stderr)
		}
	}
}

// TestServeSendsEventsToAWebhookAndAFile runs serve with a webhook to an
// in-test receiver and a JSON-lines file: an agent's enrolment and the
// CLI's device revoke reach both, signed, and webhook deliveries lists
// the attempts.
func TestServeSendsEventsToAWebhookAndAFile(t *testing.T) {
	dir := t.TempDir()
	secret := "webhook-secret-0123456789"
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bodies [][]byte
	var bad []error
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := events.Verify([]byte(secret), b, r.Header.Get(events.SignatureHeader), time.Now(), events.DefaultTolerance); err != nil {
			bad = append(bad, err)
		}
		bodies = append(bodies, b)
		w.WriteHeader(http.StatusOK)
	}))
	defer rcv.Close()
	stream := filepath.Join(dir, "events.jsonl")

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"serve", "--data", dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--webhook-url", rcv.URL + "/ward", "--webhook-secret-file", secretFile, "--event-file", stream}, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	}()
	addr := ""
	grpcLine := regexp.MustCompile(`gRPC on (\S+),`)
	for deadline := time.Now().Add(30 * time.Second); addr == ""; time.Sleep(50 * time.Millisecond) {
		if m := grpcLine.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s %s", stdout.String(), stderr.String())
		}
	}
	out, code := run(t, "token", "create", "--data", dir, "--group", "staff", "--uses", "1", "--ttl", "1h", "--json")
	if code != 0 {
		t.Fatal("token create failed")
	}
	var tok struct{ Token string }
	json.Unmarshal([]byte(out), &tok)
	ca, err := pki.Load(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
	resp, err := wardv1grpc.NewEnrollmentServiceClient(conn).Enroll(ctx, &wardv1.EnrollRequest{Token: tok.Token, CsrDer: csr,
		Device: &wardv1.DeviceInfo{Hostname: "amina-laptop", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test"}})
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	if _, code := run(t, "device", "revoke", resp.DeviceId, "--data", dir); code != 0 {
		t.Fatal("device revoke failed")
	}

	var got []events.Envelope
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		got = got[:0]
		for _, b := range bodies {
			var env events.Envelope
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			got = append(got, env)
		}
		mu.Unlock()
		if len(got) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(got) != 2 || got[0].Type != events.TypeEnrolled || got[1].Type != events.TypeRevoked {
		t.Fatalf("the receiver got %+v; want device.enrolled then device.revoked", got)
	}
	for _, env := range got {
		var d struct{ Device events.DeviceRef }
		json.Unmarshal(env.Data, &d)
		if d.Device != (events.DeviceRef{ID: resp.DeviceId, Hostname: "amina-laptop", Group: "staff"}) {
			t.Errorf("%s names %+v", env.Type, d.Device)
		}
	}
	mu.Lock()
	if len(bad) > 0 {
		t.Errorf("signatures that do not verify: %v", bad)
	}
	mu.Unlock()
	lines, _ := os.ReadFile(stream)
	if n := strings.Count(string(lines), "\n"); n != 2 || !strings.Contains(string(lines), `"type":"device.revoked"`) {
		t.Errorf("the stream holds %d lines: %s", n, lines)
	}

	out, code = run(t, "webhook", "deliveries", "--data", dir, "--json")
	var ds []store.Delivery
	if code != 0 || json.Unmarshal([]byte(out), &ds) != nil || len(ds) != 2 {
		t.Fatalf("webhook deliveries --json: exit %d, %s", code, out)
	}
	for i, d := range ds {
		if d.Outcome != store.DeliveryDelivered || d.Status != 200 || d.Attempt != 1 || d.URL != rcv.URL+"/ward" || d.EventID != got[1-i].ID {
			t.Errorf("delivery %d = %+v", i, d)
		}
	}
	out, code = run(t, "webhook", "deliveries", "--data", dir, "--limit", "1")
	if code != 0 || !strings.Contains(out, "device.revoked") || strings.Contains(out, "device.enrolled") || !strings.Contains(out, "delivered") {
		t.Errorf("webhook deliveries --limit 1: exit %d\n%s", code, out)
	}
	if _, stderr, code := runErr("webhook", "deliveries", "--data", dir, "--limit", "-2"); code != 3 || !strings.Contains(stderr, "--limit") {
		t.Errorf("--limit -2: exit %d %s", code, stderr)
	}

	// Replay: both events again, to the webhook only; audited.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "0"}, "--from"},
		{[]string{"--from", "999"}, "has not sent event 999"},
		{[]string{"--from", "1", "--sink", "kafka"}, "want webhook, file or syslog"},
		{[]string{"--from", "1", "--sink", "syslog"}, "no syslog sink has run"},
	} {
		if _, stderr, code := runErr(append([]string{"webhook", "replay", "--data", dir}, c.args...)...); code != 3 || !strings.Contains(stderr, c.want) {
			t.Errorf("webhook replay %v: exit %d %q; want 3 and %q", c.args, code, stderr, c.want)
		}
	}
	first := strconv.FormatInt(got[0].ID, 10)
	if out, code := run(t, "webhook", "replay", "--data", dir, "--from", first); code != 0 || !strings.Contains(out, "sends events "+first) {
		t.Fatalf("webhook replay: exit %d %s", code, out)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after replay the receiver has %d requests, want 4", n)
		}
	}
	mu.Lock()
	if string(bodies[2]) != string(bodies[0]) || string(bodies[3]) != string(bodies[1]) {
		t.Errorf("replayed bodies differ: %s / %s", bodies[2], bodies[3])
	}
	mu.Unlock()
	if lines, _ := os.ReadFile(stream); strings.Count(string(lines), "\n") != 2 {
		t.Errorf("replaying the webhook wrote to the stream too: %s", lines)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	as, _ := st.Audit(context.Background(), 5)
	if len(as) == 0 || as[0].Action != "events.replay" || as[0].Target != "webhook" {
		t.Errorf("audit log after replay: %+v", as)
	}
}
