package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/source"
)

// TestNotifySendOnPrivateBus shows a real notification: notify-send
// (libnotify), run through the allow-listed live Source exactly as the
// per-user helper runs it, talks to a notification server on a private
// D-Bus session bus that the test starts (testdata/notifyd.py, which
// records what it receives). It needs Debian's dbus, libnotify-bin,
// python3-dbus and python3-gi; scripts/test.sh installs them.
func TestNotifySendOnPrivateBus(t *testing.T) {
	need := []string{"/usr/bin/dbus-daemon", "/usr/bin/notify-send", "/usr/bin/python3"}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing under CI (scripts/test.sh installs dbus, libnotify-bin, python3-dbus, python3-gi)", p)
			}
			t.Skipf("%s not installed", p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()

	bus := exec.CommandContext(ctx, "/usr/bin/dbus-daemon", "--session", "--nofork", "--nopidfile",
		"--address=unix:path="+filepath.Join(dir, "bus"), "--print-address=1")
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	addr = strings.TrimSpace(addr)

	record := filepath.Join(dir, "received.jsonl")
	server := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join("testdata", "notifyd.py"), record)
	server.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr)
	server.Stderr = os.Stderr
	sout, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })
	if line, err := bufio.NewReader(sout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("notification server did not start: %q, %v", line, err)
	}

	live := source.NewLive()
	live.Env = []string{"LC_ALL=C.UTF-8", "DBUS_SESSION_BUS_ADDRESS=" + addr}
	want := Notice{Summary: "Ward : votre ordinateur a besoin d'attention", Body: "Ouvrez « ward-agent status » — الجدار الناري"}
	if err := Native(live).Show(ctx, want); err != nil {
		t.Fatalf("Show: %v", err)
	}

	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the server received nothing: %v", err)
	}
	var got struct {
		AppName string `json:"app_name"`
		Summary string `json:"summary"`
		Body    string `json:"body"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(data))), &got); err != nil {
		t.Fatalf("received %q: %v", data, err)
	}
	if got.AppName != "Ward" || got.Summary != want.Summary || got.Body != want.Body {
		t.Errorf("server received %+v, want app Ward, %q, %q", got, want.Summary, want.Body)
	}
}
