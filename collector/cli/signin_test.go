package cli_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/dashboard/oidctest"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
)

func TestUserTOTPReset(t *testing.T) {
	c := servertest.Start(t)
	ctx := context.Background()
	st := c.Store().(store.Dashboard)
	si := c.Store().(store.SignIn)
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, store.User{Name: "amina", Role: store.RoleAdmin, Hash: []byte("$2a$x"), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := si.SetTOTP(ctx, "amina", []byte("sealed"), now); err != nil {
		t.Fatal(err)
	}
	if err := si.ConfirmTOTP(ctx, "amina", 7, now); err != nil {
		t.Fatal(err)
	}
	if err := si.CreatePendingSignIn(ctx, store.PendingSignIn{IDHash: []byte("p"), User: "amina", CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, "user", "totp-reset", "--data", c.DataDir, "amina")
	if code != 0 || !strings.Contains(out, "removed the second factor of amina (was on since ") {
		t.Fatalf("totp-reset: %d %q", code, out)
	}
	if _, err := si.TOTP(ctx, "amina"); err == nil {
		t.Fatal("the second factor is still there")
	}
	if _, err := si.PendingSignIn(ctx, []byte("p"), now); err == nil {
		t.Fatal("a sign-in waiting for the old second factor survived the reset")
	}
	es, _ := st.Audit(ctx, 5)
	me, _ := user.Current()
	if len(es) == 0 || es[0].Action != "totp.reset" || es[0].Target != "amina" || es[0].Actor != "cli:"+me.Username || !strings.Contains(es[0].Detail, "was on since") {
		t.Fatalf("audit = %+v", es)
	}
	var errb bytes.Buffer
	if code := cli.Run(ctx, []string{"user", "totp-reset", "--data", c.DataDir, "amina"}, &bytes.Buffer{}, &errb); code != 3 || !strings.Contains(errb.String(), "has no second factor") {
		t.Errorf("second reset: %d %q, want 3", code, errb.String())
	}
	errb.Reset()
	if code := cli.Run(ctx, []string{"user", "totp-reset", "--data", c.DataDir, "nobody"}, &bytes.Buffer{}, &errb); code != 3 || !strings.Contains(errb.String(), "no user nobody") {
		t.Errorf("reset of a missing user: %d %q, want 3", code, errb.String())
	}
	if es2, _ := st.Audit(ctx, 5); len(es2) != len(es) {
		t.Errorf("refused resets were audited: %+v", es2)
	}
}

func TestServeSignInFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--oidc-issuer", "https://idp.example"}, "needs --oidc-client-id and --oidc-redirect-url"},
		{[]string{"--oidc-client-id", "ward"}, "need --oidc-issuer"},
		{[]string{"--oidc-issuer", "https://idp.example", "--oidc-client-id", "w", "--oidc-redirect-url", "https://w/login/oidc/callback", "--oidc-client-secret-file", filepath.Join(dir, "missing")}, "--oidc-client-secret-file"},
		{[]string{"--totp-key-file", filepath.Join(dir, "missing.key")}, "TOTP key file"},
		{[]string{"--totp-key-file", bad}, "want 32 random bytes"},
	} {
		var errb bytes.Buffer
		args := append([]string{"serve", "--data", filepath.Join(dir, "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, tc.args...)
		if code := cli.Run(context.Background(), args, &bytes.Buffer{}, &errb); code != 3 || !strings.Contains(errb.String(), tc.says) {
			t.Errorf("serve %v: %d %q, want 3 saying %q", tc.args, code, errb.String(), tc.says)
		}
	}
}

// syncBuf is an output safe for serve's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve makes the data directory's TOTP key on first start (mode 0600),
// keeps it on the next, and never writes the OIDC client secret out.
func TestServeMakesTOTPKeyAndHidesSecret(t *testing.T) {
	const secret = "oidc-client-secret-42"
	t.Setenv("WARD_OIDC_CLIENT_SECRET", secret)
	data := filepath.Join(t.TempDir(), "data")
	var keys []string
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errb syncBuf
		done := make(chan int)
		go func() {
			done <- cli.Run(ctx, []string{"serve", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "debug",
				"--oidc-issuer", "http://127.0.0.1:1/unreachable", "--oidc-client-id", "ward", "--oidc-redirect-url", "https://ward.example/login/oidc/callback"}, &out, &errb)
		}()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "HTTP on") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("serve: exit %d: %s", code, errb.String())
		}
		if strings.Contains(out.String()+errb.String(), secret) {
			t.Fatal("serve wrote the OIDC client secret out")
		}
		path := filepath.Join(data, cli.TOTPKeyFile)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(k) != 32 {
			t.Fatalf("TOTP key file holds %q", b)
		}
		keys = append(keys, string(b))
	}
	if keys[0] != keys[1] {
		t.Error("the second start replaced the TOTP key")
	}
}

// serve's --oidc-* flags, end to end: a browser-like client signs in
// through an in-process provider to the dashboard of a real serve.
func TestServeOIDCSignIn(t *testing.T) {
	const clientSecret = "serve-oidc-secret"
	p := oidctest.Start(t, "ward", clientSecret)
	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	os.WriteFile(secretFile, []byte(clientSecret+"\n"), 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuf
	done := make(chan int)
	go func() {
		done <- cli.Run(ctx, []string{"serve", "--data", filepath.Join(t.TempDir(), "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", addr, "--insecure-cookies",
			"--oidc-issuer", p.URL(), "--oidc-client-id", "ward", "--oidc-client-secret-file", secretFile,
			"--oidc-redirect-url", "http://" + addr + "/login/oidc/callback", "--oidc-allowed-domain", "example.com",
			"--oidc-role-claim", "realm_access.roles", "--oidc-admin-group", "fleet-admins", "--oidc-label", "Sign in with Corp"}, &out, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "HTTP on") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("%s: %v\n%s", path, err, errb.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if _, page := get("/login"); !strings.Contains(page, "Sign in with Corp") {
		t.Fatalf("sign-in page without the provider:\n%s", page)
	}
	// The default groups claim is not read: the configured nested one is.
	p.Next(map[string]any{"email": "Lee@Example.com", "groups": []string{"ward-admins"}, "realm_access": map[string]any{"roles": []string{"fleet-admins"}}}, "")
	if code, page := get("/login/oidc"); code != http.StatusOK {
		t.Fatalf("OIDC sign-in through serve: %d\n%s\n%s", code, page, errb.String())
	}
	if _, home := get("/"); !strings.Contains(home, "lee@example.com (admin)") {
		t.Fatalf("overview does not show the OIDC admin:\n%s", home)
	}
	p.Next(map[string]any{"email": "kim@example.com", "groups": []string{"ward-admins"}}, "")
	c.Jar, _ = cookiejar.New(nil)
	if code, page := get("/login/oidc"); code != http.StatusForbidden || !strings.Contains(page, "fleet-admins (admin)") {
		t.Fatalf("a user only in the default group: %d\n%s", code, page)
	}
	if strings.Contains(out.String()+errb.String(), clientSecret) {
		t.Fatal("serve wrote the OIDC client secret out")
	}
}
