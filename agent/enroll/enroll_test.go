package enroll_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
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

// fixtureSource is the live Source reading files from a small tree: the
// OS boundary is the only thing replaced.
func fixtureSource(t *testing.T) *source.Live {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"), 0o644)
	live := source.NewLive()
	live.Root = root
	return live
}

func TestEnrollThenCallWithMTLS(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	dir := filepath.Join(t.TempDir(), "state")
	id, err := enroll.Enroll(ctx, enroll.Options{
		Collector: c.Addr, Token: c.Token("field", 1, time.Hour), Fingerprint: c.Fingerprint,
		StateDir: dir, Source: fixtureSource(t), AgentVersion: "1.2.3",
	})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if id.Group != "field" || !strings.HasPrefix(id.DeviceID, "dev_") {
		t.Errorf("identity = %+v, want group field and a dev_ id", id.Device)
	}
	fi, err := os.Stat(filepath.Join(dir, enroll.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", fi.Mode().Perm())
	}
	loaded, err := enroll.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if loaded.DeviceID != id.DeviceID || loaded.Collector != c.Addr || enroll.Fingerprint(loaded.CA.Raw) != c.Fingerprint {
		t.Errorf("loaded %+v (CA %s), want device %s at %s, CA %s", loaded.Device, enroll.Fingerprint(loaded.CA.Raw), id.DeviceID, c.Addr, c.Fingerprint)
	}

	dev, err := c.Store().Device(ctx, id.DeviceID)
	if err != nil {
		t.Fatalf("collector has no device %s: %v", id.DeviceID, err)
	}
	if dev.OSName != "Debian GNU/Linux" || dev.OSVersion != "12" || dev.AgentVersion != "1.2.3" {
		t.Errorf("collector recorded %+v", dev.DeviceInfo)
	}
	// The raw machine id is never sent: only its salted hash.
	want := enroll.MachineID(ctx, fixtureSource(t), "linux")
	if dev.MachineID != want || len(want) != 64 || strings.Contains(dev.MachineID, "0123456789abcdef") {
		t.Errorf("machine id = %q, want the salted hash %q", dev.MachineID, want)
	}

	// The stored identity speaks mTLS with the pinned CA as the only root.
	conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(credentials.NewTLS(loaded.TLSConfig())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := wardv1grpc.NewAgentServiceClient(conn).GetPolicy(ctx, &wardv1.GetPolicyRequest{})
	if err != nil {
		t.Fatalf("GetPolicy over mTLS: %v", err)
	}
	if !resp.Changed || resp.Name == "" {
		t.Errorf("GetPolicy = %v, want the group's policy", resp)
	}
}

// assertEmpty fails when dir holds anything.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("state directory holds %s after a failed enrolment", e.Name())
	}
}

func TestEnrollRefusals(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	other := servertest.Start(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name        string
		addr, token string
		fingerprint string
		want        string
		wantErr     error
	}{
		{"wrong fingerprint", c.Addr, c.Token("g", 1, time.Hour), other.Fingerprint, "does not match", enroll.ErrWrongCA},
		{"bad token", c.Addr, "not-a-token", c.Fingerprint, "refused the enrolment token", nil},
		{"expired token", c.Addr, c.Token("g", 1, time.Nanosecond), c.Fingerprint, "refused the enrolment token", nil},
		{"unreachable", deadAddr, "tok", c.Fingerprint, "cannot reach collector", nil},
		{"malformed fingerprint", c.Addr, "tok", "md5:abcd", "want sha256", nil},
		{"no port", "127.0.0.1", "tok", c.Fingerprint, "want HOST:PORT", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := enroll.Enroll(ctx, enroll.Options{
				Collector: tt.addr, Token: tt.token, Fingerprint: tt.fingerprint,
				StateDir: dir, Source: fixtureSource(t), Timeout: 10 * time.Second,
			})
			if err == nil {
				t.Fatal("Enroll succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			assertEmpty(t, dir)
			if _, err := enroll.Load(dir); !errors.Is(err, enroll.ErrNotEnrolled) {
				t.Errorf("Load after refusal: %v, want ErrNotEnrolled", err)
			}
		})
	}
}

func TestParseFingerprint(t *testing.T) {
	hex64 := strings.Repeat("ab", 31) + "0f"
	want := strings.Repeat("ab", 31) + "0f"
	colons := strings.Repeat("AB:", 31) + "0F"
	for _, ok := range []string{
		"sha256:" + hex64, "SHA256:" + strings.ToUpper(hex64), "sha256:" + strings.ToLower(colons),
		hex64, strings.ToUpper(hex64), " " + hex64 + "\n",
		colons, strings.ToLower(colons), "sha256 Fingerprint=" + colons, "SHA256 Fingerprint=" + colons,
	} {
		b, err := enroll.ParseFingerprint(ok)
		if err != nil || fmt.Sprintf("%x", b) != want {
			t.Errorf("ParseFingerprint(%q) = %x, %v; want %s", ok, b, err, want)
		}
	}
	for _, bad := range []string{
		"", "sha256:", "sha256:" + hex64[:62], "sha256:" + hex64 + "00", "sha1:" + hex64, "md5:abcd", "sha256:zz" + hex64[2:],
		colons[:len(colons)-3], colons + ":00", strings.Replace(colons, "AB:", "ABC", 1), strings.Replace(colons, ":", "::", 1),
		"SHA1 Fingerprint=" + strings.Repeat("AB:", 19) + "AB", "sha256:a:b" + hex64[4:],
	} {
		if _, err := enroll.ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "want sha256:") {
			t.Errorf("ParseFingerprint(%q): %v does not say what it wants", bad, err)
		}
	}
}
