package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/agent/service"
	"github.com/wardhq/ward/collector/server/servertest"
)

// The uids the commands run as: the person logged in at the computer and
// another local user.
const (
	deskUID  = 65534
	otherUID = 65533
)

// openTempDir is a temporary directory other users can enter.
func openTempDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

var (
	publicAgentOnce sync.Once
	publicAgent     string
)

// agentAs runs ward-agent (this test binary, copied where other users may
// run it) as uid, with a HOME of its own, and returns its exit code and
// output.
func agentAs(t *testing.T, uid int, home string, args ...string) (int, string) {
	t.Helper()
	publicAgentOnce.Do(func() {
		d, err := os.MkdirTemp("", "ward-agent-public-")
		if err != nil || os.Chmod(d, 0o755) != nil {
			return
		}
		data, err := os.ReadFile(os.Args[0])
		if err != nil || os.WriteFile(filepath.Join(d, "ward-agent"), data, 0o755) != nil {
			return
		}
		publicAgent = filepath.Join(d, "ward-agent")
		t.Cleanup(func() { os.RemoveAll(d) })
	})
	if publicAgent == "" {
		t.Fatal("cannot copy ward-agent where other users may run it")
	}
	cmd := exec.Command(publicAgent, args...)
	cmd.Env = []string{"WARD_AGENT_MAIN=1", "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"PATH=/usr/bin:/bin", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ward-agent %v as uid %d: %v", args, uid, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestStatusOnlyForRootAndTheDesktopUser runs the agent loop with one
// desktop session (a logind session file naming uid 65534), then status,
// privacy and notify as that user and as another one: the desktop user
// sees everything, from the socket and, with the service stopped, from
// their own copy; the other user sees none of it and is told why.
func TestStatusOnlyForRootAndTheDesktopUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs commands as other users")
	}
	c := servertest.Start(t)
	_, state := reporttest.Enrolled(t, c, "staff")
	dir := filepath.Join(openTempDir(t), "status")
	sessions := filepath.Join(t.TempDir(), "sessions")
	os.MkdirAll(sessions, 0o755)
	session := fmt.Sprintf("UID=%d\nUSER=staff\nACTIVE=1\nSTATE=active\nREMOTE=0\nTYPE=wayland\nCLASS=user\nSEAT=seat0\n", deskUID)
	if err := os.WriteFile(filepath.Join(sessions, "2"), []byte(session), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := notify.NewServer(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.StateDir = state
	srv.Desktop = func() ([]notify.User, error) { return notify.SessionUsers(sessions) }
	svc, err := service.New(service.Config{StateDir: state, Source: replayed(t), AgentVersion: "test",
		Interval: time.Hour, Status: srv, CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { svc.Run(ctx) })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, origin, err := notify.Read(context.Background(), dir)
		_, cerr := os.Stat(filepath.Join(dir, notify.UsersDir, "65534", notify.LastReportFile))
		if err == nil && origin == notify.FromService && cerr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the service never published its status")
		}
		time.Sleep(10 * time.Millisecond)
	}
	homes := openTempDir(t)
	home := func(uid int) string {
		h := filepath.Join(homes, fmt.Sprint(uid))
		os.Mkdir(h, 0o700)
		os.Chown(h, uid, -1)
		return h
	}
	desk, other := home(deskUID), home(otherUID)
	const denied = "Only root and the person logged in at this computer can read Ward's status."

	// The desktop user.
	code, out := agentAs(t, deskUID, desk, "status", "--json", "--status-dir", dir)
	var st struct {
		notify.Status
		From string `json:"from"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != ExitFail || st.From != "service" || st.Policy != "baseline" {
		t.Errorf("status --json as the desktop user = %d, from %q, policy %q (%v):\n%s", code, st.From, st.Policy, err, out)
	}
	if code, out := agentAs(t, deskUID, desk, "privacy", "--lang", "en", "--status-dir", dir); code != 0 || !strings.Contains(out, "What Ward sends to your organisation") || !strings.Contains(out, "- the firewall:") {
		t.Errorf("privacy as the desktop user = %d:\n%s", code, out)
	}
	if code, out := agentAs(t, deskUID, desk, "privacy", "--json", "--status-dir", dir); code != 0 || !strings.Contains(out, `"platform": "linux"`) {
		t.Errorf("privacy --json as the desktop user = %d:\n%s", code, out)
	}
	quietHoursOff(t, desk, deskUID)
	record := filepath.Join(desk, "shown.jsonl")
	if code, out := agentAs(t, deskUID, desk, "notify", "--once", "--status-dir", dir, "--record-to", record); code != 0 || len(readNotices(t, record)) == 0 {
		t.Errorf("notify --once as the desktop user = %d, showed nothing: %s", code, out)
	}

	// Another local user.
	for _, args := range [][]string{
		{"status", "--lang", "en", "--status-dir", dir},
		{"privacy", "--lang", "en", "--status-dir", dir},
		{"notify", "--once", "--lang", "en", "--status-dir", dir, "--record-to", filepath.Join(other, "shown.jsonl")},
	} {
		code, out := agentAs(t, otherUID, other, args...)
		if code != ExitUnknown || !strings.Contains(out, denied) || !strings.Contains(out, "sudo ward-agent") {
			t.Errorf("%s as another user = %d:\n%s\nwant %d and %q", args[0], code, out, ExitUnknown, denied)
		}
		for _, leak := range []string{"firewall", "platform", "baseline", "shown"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s as another user shows %q:\n%s", args[0], leak, out)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(other, "shown.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("notify showed another user something (err %v)", err)
	}
	if _, out := agentAs(t, otherUID, other, "status", "--lang", "fr", "--status-dir", dir); !strings.Contains(out, "Seuls root et la personne connectée sur cet ordinateur") {
		t.Errorf("status --lang fr as another user:\n%s", out)
	}

	// With the service stopped the desktop user reads their own copy;
	// the other user still nothing.
	cancel()
	wg.Wait()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if code, out := agentAs(t, deskUID, desk, "status", "--lang", "en", "--status-dir", dir, "--state", state); code != ExitFail || !strings.Contains(out, "The Ward service is not running right now") || !strings.Contains(out, "Things that need your attention") {
		t.Errorf("status as the desktop user, service stopped = %d:\n%s", code, out)
	}
	if code, out := agentAs(t, otherUID, other, "status", "--lang", "en", "--status-dir", dir, "--state", state); code != ExitUnknown || !strings.Contains(out, denied) {
		t.Errorf("status as another user, service stopped = %d:\n%s", code, out)
	}
}
