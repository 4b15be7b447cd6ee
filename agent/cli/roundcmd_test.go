package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/daemon"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/collector/server/servertest"
)

// The daemon runs each round in a child process of its own program: the
// round's report reaches the collector, its delivery `status --service`,
// and its results the daemon's status endpoint, while everything the
// round logged comes from the child (the daemon itself never collects).
func TestDaemonRunsRoundsInAChild(t *testing.T) {
	c := servertest.Start(t)
	id, state := reporttest.Enrolled(t, c, "staff")
	statusDir := filepath.Join(t.TempDir(), "status")
	logPath := filepath.Join(t.TempDir(), "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// This test binary is ward-agent with WARD_AGENT_MAIN=1 (TestMain),
	// and so is the child the daemon runs, which inherits it.
	cmd := exec.Command(os.Args[0], "daemon", "--state", state, "--status-dir", statusDir, "--interval", "1h", "--log-level", "info")
	cmd.Env = append(os.Environ(), "WARD_AGENT_MAIN=1", "HOME="+t.TempDir(), "LANG=C")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("daemon log:\n%s", log)
		}
	})

	var info daemon.Info
	for deadline := time.Now().Add(60 * time.Second); ; {
		if info, err = daemon.Query(context.Background(), state); err == nil && info.LastDelivery != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery published within 60 s: %+v, %v", info, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := info.LastDelivery; d.Delivered != 1 || d.Waiting != 0 || d.Problem != "" || !info.Enrolled || info.PID != cmd.Process.Pid {
		t.Errorf("daemon info = %+v, delivery %+v; want pid %d, enrolled, 1 delivered, none waiting", info, *d, cmd.Process.Pid)
	}
	if n := len(c.Reports(id.DeviceID)); n != 1 {
		t.Errorf("collector holds %d reports, want 1", n)
	}
	st, origin, err := notify.Read(context.Background(), statusDir)
	if err != nil || origin != notify.FromService {
		t.Fatalf("status: origin %q, %v; want the daemon's endpoint", origin, err)
	}
	if st.DeviceID != id.DeviceID || st.Policy != "baseline" || len(st.Results) == 0 {
		t.Errorf("status = device %q, policy %q, %d results; want %s, baseline, its rules", st.DeviceID, st.Policy, len(st.Results), id.DeviceID)
	}
	file, err := os.ReadFile(filepath.Join(statusDir, notify.StatusFile))
	if err != nil || !strings.Contains(string(file), `"device_id": "`+id.DeviceID+`"`) {
		t.Errorf("status file: %v\n%s", err, file)
	}

	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	queued := regexp.MustCompile(`(?m)^.*report queued.*$`).FindAllString(string(log), -1)
	if len(queued) != 1 {
		t.Fatalf("daemon log has %d lines \"report queued\", want 1:\n%s", len(queued), log)
	}
	m := regexp.MustCompile(`round_pid=(\d+)`).FindStringSubmatch(queued[0])
	if m == nil {
		t.Fatalf("the report was not queued by a round's child: %s", queued[0])
	}
	if pid, _ := strconv.Atoi(m[1]); pid == cmd.Process.Pid || pid <= 0 {
		t.Errorf("round_pid %d, daemon pid %d: the round ran in the daemon", pid, cmd.Process.Pid)
	}
	// The policy fetch was the child's too.
	if adopted := regexp.MustCompile(`(?m)^.*policy adopted.*$`).FindString(string(log)); !strings.Contains(adopted, "round_pid="+m[1]) {
		t.Errorf("the policy was not fetched by the round's child (pid %s): %q", m[1], adopted)
	}
}

// A round's JSON log lines are logged by the daemon at their own level
// (filtered by the daemon's), with their attributes; other output is kept
// as it is.
func TestRelogRoundOutput(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})).With("round_pid", 42)
	in := `{"time":"2026-12-01T10:00:00Z","level":"DEBUG","msg":"read file","path":"/etc/os-release"}
{"time":"2026-12-01T10:00:01Z","level":"WARN","msg":"delivery failed","waiting":2,"err":"refused"}
panic: something
`
	relog(log, strings.NewReader(in))
	want := `level=WARN msg="delivery failed" round_pid=42 err=refused waiting=2
level=WARN msg="round output" round_pid=42 line="panic: something"
`
	if out.String() != want {
		t.Errorf("relogged:\n%s\nwant:\n%s", out.String(), want)
	}
}
