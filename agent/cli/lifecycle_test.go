//go:build !windows

package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/install"
	"github.com/wardhq/ward/agent/install/installtest"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/server/servertest"
)

// noServiceManager returns why this machine has no service manager, and
// skips the test on one that has (systemd as PID 1): these tests are
// about machines without.
func noServiceManager(t *testing.T) error {
	t.Helper()
	_, err := install.ServiceManager()
	if err == nil {
		t.Skip("this machine has a service manager; the test is about machines without one")
	}
	return err
}

// testLayout puts the program and the notifier's login item in a
// temporary directory that install accepts (not under /tmp).
func testLayout(t *testing.T) install.Layout {
	dir := installtest.TempDir(t)
	return install.Layout{Program: filepath.Join(dir, "bin", "ward-agent"), ConfigDir: filepath.Join(dir, "etc"),
		StateDir: filepath.Join(dir, "state"), Notifier: filepath.Join(dir, "autostart", "ward-notify.desktop")}
}

// runIn runs ward-agent in this process with layout l and the live Source.
func runIn(t *testing.T, l install.Layout, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{version: "test", stdout: &stdout, stderr: &stderr, layout: l,
		newSource: func() check.Source { return source.NewLive() }}
	code := a.execute(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

// handDaemon is a daemon process started by hand.
type handDaemon struct {
	pid  int
	done chan struct{} // closed when it exits
}

// startDaemon starts `PROGRAM daemon` as a person would on a machine
// without a service manager; program is a copy of this test binary, which
// is ward-agent with WARD_AGENT_MAIN=1.
func startDaemon(t *testing.T, program, state string) *handDaemon {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(program, "daemon", "--state", state, "--status-dir", filepath.Join(t.TempDir(), "status"),
		"--interval", "1h", "--log-level", "info")
	cmd.Env = append(os.Environ(), "WARD_AGENT_MAIN=1", "HOME="+t.TempDir(), "LANG=C")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &handDaemon{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("daemon pid %d log:\n%s", d.pid, log)
		}
	})
	return d
}

// exited waits up to timeout for the daemon to exit.
func (d *handDaemon) exited(timeout time.Duration) bool {
	select {
	case <-d.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// procState waits up to d for process pid's state (/proc/PID/stat) to be
// state; SIGSTOP takes effect after kill returns.
func procState(pid int, state byte, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); err == nil && i >= 0 && i+2 < len(stat) && stat[i+2] == state {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// statusUntil runs `status --service` until its output matches want, and
// returns the last exit code and output.
func statusUntil(t *testing.T, l install.Layout, want *regexp.Regexp, d time.Duration) (int, string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, out, stderr := runIn(t, l, "status", "--service", "--state", l.StateDir)
		if want.MatchString(out) {
			return code, out
		}
		if time.Now().After(deadline) {
			t.Fatalf("status --service never matched %s within %s; last (exit %d):\n%s%s", want, d, code, out, stderr)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Without a service manager, install refuses before it enrols: the token
// keeps its one use, nothing is written, and the message says what to do.
func TestInstallWithoutServiceManagerRefusesBeforeEnrolling(t *testing.T) {
	why := noServiceManager(t)
	c := servertest.Start(t)
	tok := c.Token("staff", 1, time.Hour)
	l := testLayout(t)
	flags := []string{"--collector", c.Addr, "--token", tok, "--ca-fingerprint", c.Fingerprint, "--state", l.StateDir}
	code, stdout, stderr := runIn(t, l, append([]string{"install"}, flags...)...)
	if code != ExitUsage {
		t.Errorf("exit = %d, want %d; stdout %s", code, ExitUsage, stdout)
	}
	for _, want := range []string{why.Error(), "Nothing was done (not enrolled)", "--no-service",
		l.Program + " daemon --state " + l.StateDir} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, p := range []string{l.StateDir, l.Program, l.Notifier} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a refused install (err %v)", p, err)
		}
	}
	// The token was not used: with --no-service the same single-use token
	// enrols.
	code, stdout, stderr = runIn(t, l, append([]string{"install", "--no-service"}, flags...)...)
	if code != 0 || !strings.Contains(stdout, "enrolled as ") {
		t.Fatalf("install --no-service with the same token: exit %d\n%s%s", code, stdout, stderr)
	}
}

// The daemon, which people run by hand where there is no service manager,
// is listed in --help, and its help says how.
func TestHelpListsDaemon(t *testing.T) {
	_, stdout, _ := run(t, "--help")
	if !regexp.MustCompile(`(?m)^  daemon\s+Run the agent in the foreground, as the service manager does \(or by hand where there is none\)$`).MatchString(stdout) {
		t.Errorf("--help does not list daemon:\n%s", stdout)
	}
	_, stdout, _ = run(t, "daemon", "--help")
	if !strings.Contains(stdout, "nohup "+install.DefaultLayout().Program+" daemon --state "+install.DefaultLayout().StateDir+" >>/var/log/ward-agent.log 2>&1 </dev/null &") {
		t.Errorf("daemon --help does not say how to run it by hand:\n%s", stdout)
	}
}

// TestLifecycleWithoutServiceManager is the life of an agent on a machine
// whose PID 1 is not an init system (this one): install --no-service
// against a real collector, the daemon started by hand, status --service
// from the daemon's endpoint through a delivered report, a revoked
// certificate and an unreachable collector, stop, and uninstall --purge of
// a running daemon, twice.
func TestLifecycleWithoutServiceManager(t *testing.T) {
	// With --no-service the same steps hold on a machine that has a
	// service manager; only status's reason for "not running" differs.
	platform, why := install.ServiceManager()
	notRunning := "service:  not running (no service registered with " + platform + ")"
	if why != nil {
		notRunning = "service:  not running (" + why.Error() + "; start it by hand: nohup " // completed below
	}
	c := servertest.Start(t)
	l := testLayout(t)
	state := l.StateDir

	// Install: enrol, program, notifier; no service, and it says so.
	code, stdout, stderr := runIn(t, l, "install", "--no-service", "--collector", c.Addr, "--token", c.Token("staff", 1, time.Hour),
		"--ca-fingerprint", c.Fingerprint, "--state", state)
	if code != 0 {
		t.Fatalf("install --no-service: exit %d\n%s%s", code, stdout, stderr)
	}
	id, err := enroll.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{
		"enrolled as " + id.DeviceID + ` (group "staff") with collector ` + c.Addr,
		"installed program " + l.Program,
		"registered notifier login item " + l.Notifier,
		"no service registered (--no-service): nothing will start the agent by itself.",
		"  nohup " + l.Program + " daemon --state " + state + " >>/var/log/ward-agent.log 2>&1 </dev/null &",
	}
	for _, want := range lines {
		if !strings.Contains(stdout, want+"\n") {
			t.Errorf("install output lacks line %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "registered service") || strings.Contains(stdout, "as service") {
		t.Errorf("install claims a service:\n%s", stdout)
	}
	if st, err := os.Stat(l.Program); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("program: %v %v", st, err)
	}
	if entry, err := os.ReadFile(l.Notifier); err != nil || !strings.Contains(string(entry), "Exec="+l.Program+" notify\n") {
		t.Errorf("notifier login item: %v\n%s", err, entry)
	}

	// Not running yet: status says so, why, and how to run it.
	code, stdout, _ = runIn(t, l, "status", "--service", "--state", state)
	if why != nil {
		notRunning += l.Program + " daemon --state " + state
	}
	if code != ExitFail || !strings.Contains(stdout, notRunning) {
		t.Errorf("status --service before the daemon: exit %d\n%s", code, stdout)
	}

	// 1. The daemon, started by hand, delivers; status reports it from
	// the daemon's endpoint.
	d1 := startDaemon(t, l.Program, state)
	code, stdout = statusUntil(t, l, regexp.MustCompile(`(?m)^last delivery: delivered`), 60*time.Second)
	want := regexp.MustCompile(`(?m)^service:  running \(pid ` + strconv.Itoa(d1.pid) + `, version test, since \d{4}-\d\d-\d\dT[^)]+\)\nlast delivery: delivered 1 report at [^,]+, none waiting\nenrolled: ` + id.DeviceID + ` `)
	if code != 0 || !want.MatchString(stdout) {
		t.Errorf("status --service with the daemon delivering: exit %d, want 0 and %s:\n%s", code, want, stdout)
	}
	// 90-day certificate, renewing from day 60.
	if !regexp.MustCompile(`(?m)^certificate: valid until \d{4}-\d\d-\d\d \d\d:\d\d; renews itself from \d{4}-\d\d-\d\d`).MatchString(stdout) {
		t.Errorf("status --service does not describe the certificate:\n%s", stdout)
	}
	if n := len(c.Reports(id.DeviceID)); n != 1 {
		t.Errorf("collector holds %d reports, want 1", n)
	}
	if pid, err := os.ReadFile(filepath.Join(state, "daemon.pid")); err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(d1.pid) {
		t.Errorf("daemon.pid = %q (%v), want %d", pid, err, d1.pid)
	}
	// A second daemon on the same state refuses to run.
	code, _, stderr = runIn(t, l, "daemon", "--state", state)
	if code != ExitInternal || !strings.Contains(stderr, "a daemon already runs for "+state+" (pid "+strconv.Itoa(d1.pid)) {
		t.Errorf("second daemon: exit %d, stderr %s", code, stderr)
	}

	// ward-agent stop stops a daemon run by hand.
	code, stdout, stderr = runIn(t, l, "stop", "--state", state)
	if code != 0 || stdout != "stopped the ward-agent daemon (pid "+strconv.Itoa(d1.pid)+")\n" {
		t.Errorf("stop: exit %d\n%s%s", code, stdout, stderr)
	}
	if !d1.exited(5 * time.Second) {
		t.Fatal("the daemon still runs after stop")
	}
	if _, err := os.Stat(filepath.Join(state, "daemon.pid")); !os.IsNotExist(err) {
		t.Errorf("daemon.pid left after the daemon stopped: %v", err)
	}

	// 2. The collector revokes the device: status says the collector
	// refused the certificate, and exits 1.
	if err := c.Store().RevokeDevice(context.Background(), id.DeviceID, time.Now()); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, l.Program, state)
	code, stdout = statusUntil(t, l, regexp.MustCompile(`(?m)^last delivery: failed`), 60*time.Second)
	want = regexp.MustCompile(`(?m)^service:  running \(pid ` + strconv.Itoa(d2.pid) + `, .*\nlast delivery: failed at [^:]+:\d\d:\d\d[^:]*: the collector refused this device's certificate \(client certificate was revoked\); enrol it again with ward-agent install --reenroll \(1 report waiting\)$`)
	if code != ExitFail || !want.MatchString(stdout) {
		t.Errorf("status --service after revocation: exit %d, want %d and %s:\n%s", code, ExitFail, want, stdout)
	}
	if code, stdout, _ := runIn(t, l, "stop", "--state", state); code != 0 || !d2.exited(5*time.Second) {
		t.Fatalf("stop: exit %d %s", code, stdout)
	}

	// 3. The collector is gone: status names its address and the cause.
	c.Stop()
	d3 := startDaemon(t, l.Program, state)
	code, stdout = statusUntil(t, l, regexp.MustCompile(`(?m)^last delivery: failed`), 90*time.Second)
	want = regexp.MustCompile(`(?m)^last delivery: failed at .*: collector unreachable at ` + regexp.QuoteMeta(c.Addr) + `: connection refused \(2 reports waiting\)$`)
	if code != ExitFail || !want.MatchString(stdout) {
		t.Errorf("status --service with the collector down: exit %d, want %d and %s:\n%s", code, ExitFail, want, stdout)
	}

	// A daemon that stops answering (here: SIGSTOP) is still found,
	// through its pid file and /proc, by status and uninstall.
	if err := syscall.Kill(d3.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if !procState(d3.pid, 'T', 5*time.Second) {
		t.Fatalf("daemon %d did not stop on SIGSTOP", d3.pid)
	}
	code, stdout, _ = runIn(t, l, "status", "--service", "--state", state)
	if want := "service:  not answering (pid " + strconv.Itoa(d3.pid) + " runs ward-agent daemon but does not answer on " +
		filepath.Join(state, "daemon.sock") + "; ward-agent stop stops it)\n"; code != ExitFail || !strings.HasPrefix(stdout, want) {
		t.Errorf("status --service of a silent daemon: exit %d\n%swant\n%s", code, stdout, want)
	}

	// Uninstall --purge stops the daemon and removes everything install
	// left, saying what.
	code, stdout, stderr = runIn(t, l, "uninstall", "--purge", "--state", state)
	wantOut := "stopped the daemon (pid " + strconv.Itoa(d3.pid) + ")\n" +
		"removed notifier login item " + l.Notifier + "\n" +
		"removed program " + l.Program + "\n" +
		"removed enrolment, outbox and policy cache in " + state + "\n"
	if code != 0 || stdout != wantOut {
		t.Errorf("uninstall --purge: exit %d\n%s%s\nwant\n%s", code, stdout, stderr, wantOut)
	}
	if !d3.exited(5 * time.Second) {
		t.Error("the daemon still runs after uninstall")
	}
	for _, p := range []string{state, l.Program, l.Notifier} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after uninstall --purge: %v", p, err)
		}
	}
	// Again, on nothing: it succeeds and says there was nothing.
	code, stdout, stderr = runIn(t, l, "uninstall", "--purge", "--state", state)
	if code != 0 || stdout != "nothing to remove: ward-agent is not installed here (state "+state+")\n" {
		t.Errorf("second uninstall --purge: exit %d\n%s%s", code, stdout, stderr)
	}
}
