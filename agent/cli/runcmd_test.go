package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/agent/service"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/server/servertest"
)

// runWith runs ward-agent with src as the machine.
func runWith(t *testing.T, src check.Source, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{version: "test", stdout: &stdout, stderr: &stderr, newSource: func() check.Source { return src }}
	code := a.execute(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

func replayed(t *testing.T) check.Source {
	t.Helper()
	_, rec, err := source.OpenBundle(filepath.Join("..", "testdata", "bundles", "linux-plain-nft-empty"))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestRunOnceDelivers(t *testing.T) {
	c := servertest.Start(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	code, stdout, stderr := runWith(t, replayed(t), "run", "--once", "--state", dir)
	if code != 0 || !strings.Contains(stdout, "report 1 queued; 1 delivered, 0 waiting") {
		t.Fatalf("run --once = %d, %q, %q", code, stdout, stderr)
	}
	if reps := c.Reports(id.DeviceID); len(reps) != 1 || reps[0].Sequence != 1 {
		t.Fatalf("collector stored %v", reps)
	}
}

func TestRunNotEnrolled(t *testing.T) {
	code, _, stderr := runWith(t, replayed(t), "run", "--once", "--state", t.TempDir())
	if code != ExitUsage || !strings.Contains(stderr, "ward-agent enroll") {
		t.Fatalf("run unenrolled = %d, %q; want exit 3 pointing at enroll", code, stderr)
	}
}

func TestEnrollUsage(t *testing.T) {
	for _, args := range [][]string{
		{"enroll"},
		{"enroll", "--collector", "127.0.0.1:1", "--ca-fingerprint", "sha256:00"},
		{"enroll", "--collector", "127.0.0.1:1", "--token", "t", "--token-file", "f", "--ca-fingerprint", "x"},
		{"run", "--interval", "1ms"},
	} {
		if code, _, stderr := runWith(t, replayed(t), args...); code != ExitUsage {
			t.Errorf("%v = %d (%s), want %d", args, code, stderr, ExitUsage)
		}
	}
}

func TestEnrollWrongFingerprintWritesNothing(t *testing.T) {
	c := servertest.Start(t)
	other := servertest.Start(t)
	dir := t.TempDir()
	code, _, stderr := runWith(t, replayed(t), "enroll", "--collector", c.Addr, "--token", c.Token("g", 1, time.Hour),
		"--ca-fingerprint", other.Fingerprint, "--state", dir)
	if code == 0 || !strings.Contains(stderr, "does not match") {
		t.Fatalf("enroll with another CA's fingerprint = %d, %q", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("state directory holds %d entries", len(entries))
	}
}

func TestEnrollThenRun(t *testing.T) {
	c := servertest.Start(t)
	dir := filepath.Join(t.TempDir(), "state")
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(c.Token("staff", 1, time.Hour)+"\n"), 0o600)
	code, stdout, stderr := runWith(t, replayed(t), "enroll", "--collector", c.Addr, "--token-file", tokFile,
		"--ca-fingerprint", c.Fingerprint, "--state", dir)
	if code != 0 || !strings.Contains(stdout, "enrolled as dev_") {
		t.Fatalf("enroll = %d, %q, %q", code, stdout, stderr)
	}
	id, err := enroll.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runWith(t, replayed(t), "run", "--once", "--state", dir); code != 0 || !strings.Contains(stdout, "1 delivered") {
		t.Fatalf("run --once = %d, %q, %q", code, stdout, stderr)
	}
	if reps := c.Reports(id.DeviceID); len(reps) != 1 {
		t.Fatalf("collector stored %d reports, want 1", len(reps))
	}
}

// The daemon gives the round's memory back to the OS once the round's
// delivery attempt is over, so between rounds it holds its live heap only.
func TestDaemonReleasesMemoryAfterDelivery(t *testing.T) {
	c := servertest.Start(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stored := make(chan int, 10)
	var stdout, stderr bytes.Buffer
	a := &app{version: "test", stdout: &stdout, stderr: &stderr, newSource: func() check.Source { return replayed(t) },
		releaseMemory: func() { stored <- len(c.Reports(id.DeviceID)) }}
	log := slog.New(slog.NewTextHandler(&stderr, nil))
	statusDir := t.TempDir()
	// The round runs in this process, on the replayed laptop.
	a.runRound = func(ctx context.Context, o service.RoundOptions) (service.RoundResult, error) {
		return a.round(ctx, log, dir, statusDir, o)
	}
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, log, dir, statusDir, time.Hour, nil) }()
	select {
	case n := <-stored:
		if n != 1 {
			t.Fatalf("memory released with %d reports stored, want after the round's report (1)", n)
		}
	case err := <-done:
		t.Fatalf("serve ended before releasing memory: %v; log: %s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no memory release within 30 s of the first round; log: %s", stderr.String())
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("serve: %v", err)
	}
}
