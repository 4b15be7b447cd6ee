package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/agent/service"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/policies"
)

// TestMain lets the tests run ward-agent as a separate process: the test
// binary re-executed with WARD_AGENT_MAIN=1 is ward-agent.
func TestMain(m *testing.M) {
	if os.Getenv("WARD_AGENT_MAIN") == "1" {
		os.Exit(Main(context.Background(), "test", os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// agentProcess runs ward-agent in a child process with a private HOME.
func agentProcess(t *testing.T, home string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WARD_AGENT_MAIN=1", "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "LANG=C", "LC_ALL=", "LANGUAGE=")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ward-agent %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// quietHoursOff writes home's user config without quiet hours, owned by
// uid (-1: as is), so a notify test shows what it must whatever the time of
// day it runs at (the default quiet hours are 21:00-08:00 local time).
func quietHoursOff(t *testing.T, home string, uid int) {
	t.Helper()
	dir := filepath.Join(home, ".config", "ward")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "config.json")
	if err := os.WriteFile(file, []byte(`{"quiet_hours": ""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		for _, p := range []string{filepath.Join(home, ".config"), dir, file} {
			if err := os.Chown(p, uid, -1); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestStatusAndNotifyEndToEnd runs the agent loop on a replayed laptop with
// a firewall off and an unencrypted disk, then `status` and `notify` as
// separate processes reading its local endpoint, with the collector down.
func TestStatusAndNotifyEndToEnd(t *testing.T) {
	c := servertest.Start(t)
	_, state := reporttest.Enrolled(t, c, "staff")
	dir := filepath.Join(t.TempDir(), "status")
	srv, err := notify.NewServer(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.StateDir = state
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

	// Wait until the loop's first round is served on the socket.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, origin, err := notify.Read(context.Background(), dir); err == nil && origin == notify.FromService {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the service never published its status")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Stop() // the collector is unreachable from here on
	home := t.TempDir()

	code, out := agentProcess(t, home, "status", "--json", "--status-dir", dir)
	var st struct {
		notify.Status
		From string `json:"from"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	failing := map[string]bool{}
	for _, r := range st.Results {
		if r.Status == "FAIL" {
			failing[r.RuleID] = true
			if r.Deadline == nil || r.FailingSince == nil || r.In("ar").Why == "" {
				t.Errorf("%s: deadline %v, failing since %v, Arabic why %q", r.RuleID, r.Deadline, r.FailingSince, r.In("ar").Why)
			}
		}
	}
	if code != ExitFail || st.From != "service" || st.Policy != "baseline" || !failing["disk-encrypted"] || !failing["firewall-on"] {
		t.Fatalf("status --json = %d, from %q, policy %q, failing %v", code, st.From, st.Policy, failing)
	}

	// The firewall's item is titled with its problem in French (else in
	// English), or with its French title when the policy gives no problem.
	pol, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	fwHeading := ""
	for _, r := range pol.Rules {
		if r.ID == "firewall-on" {
			fwHeading = cmp.Or(r.Problem["fr"], r.Problem["en"], r.Titles["fr"])
		}
	}
	code, out = agentProcess(t, home, "status", "--lang", "fr", "--status-dir", dir)
	for _, want := range []string{"Points qui demandent votre attention", ". " + fwHeading + "\n", "Pourquoi c'est important : Sur les réseaux", "Que faire :", "Date limite : "} {
		if !strings.Contains(out, want) {
			t.Errorf("status --lang fr lacks %q:\n%s", want, out)
		}
	}
	if code != ExitFail {
		t.Errorf("status exit %d, want %d", code, ExitFail)
	}

	// The language comes from the config file when no flag is given.
	os.MkdirAll(filepath.Join(home, ".config", "ward"), 0o700)
	os.WriteFile(filepath.Join(home, ".config", "ward", "config.json"), []byte(`{"lang": "es", "quiet_hours": ""}`), 0o600)
	if _, out := agentProcess(t, home, "status", "--status-dir", dir); !strings.Contains(out, "Cosas que necesitan su atención") {
		t.Errorf("status with lang es in the config file:\n%s", out)
	}

	record := filepath.Join(t.TempDir(), "shown.jsonl")
	if code, out := agentProcess(t, home, "notify", "--once", "--status-dir", dir, "--record-to", record); code != 0 {
		t.Fatalf("notify --once = %d: %s", code, out)
	}
	notices := readNotices(t, record)
	if len(notices) == 0 || len(notices) > notify.DefaultMaxPerDay {
		t.Fatalf("notify showed %d notices: %+v", len(notices), notices)
	}
	for _, n := range notices {
		if n.Kind != notify.KindNew || n.Summary != "Ward: hay algo que corregir en su portátil" || !strings.Contains(n.Body, "ward-agent status") {
			t.Errorf("notice %+v", n)
		}
	}
	// A second run right away shows nothing new.
	agentProcess(t, home, "notify", "--once", "--status-dir", dir, "--record-to", record)
	if again := readNotices(t, record); len(again) != len(notices) {
		t.Errorf("a second notify right away showed %d more", len(again)-len(notices))
	}

	// privacy shows the report queued for the collector.
	if _, out := agentProcess(t, home, "privacy", "--lang", "en", "--status-dir", dir); !strings.Contains(out, "What Ward sends to your organisation") || !strings.Contains(out, "- the firewall:") {
		t.Errorf("privacy:\n%s", out)
	}
	if _, out := agentProcess(t, home, "privacy", "--json", "--status-dir", dir); !strings.Contains(out, `"rule_id": "firewall-on"`) || !strings.Contains(out, `"platform": "linux"`) {
		t.Errorf("privacy --json:\n%s", out)
	}

	// With the service stopped, status falls back to the saved file and
	// says so.
	cancel()
	wg.Wait()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	code, out = agentProcess(t, home, "status", "--lang", "en", "--status-dir", dir, "--state", state)
	if code != ExitFail || !strings.Contains(out, "The Ward service is not running right now") || !strings.Contains(out, "Things that need your attention") {
		t.Errorf("status with the service stopped = %d:\n%s", code, out)
	}
}

func readNotices(t *testing.T, path string) []notify.Notice {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []notify.Notice
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var n notify.Notice
		if err := json.Unmarshal(sc.Bytes(), &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}
