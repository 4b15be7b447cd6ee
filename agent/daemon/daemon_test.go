package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/service"
)

func TestEndpointPublishesInfoAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	if _, err := Query(context.Background(), dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Query before Open = %v, want ErrNotRunning", err)
	}
	ep, err := Open(dir, Info{Version: "1.2.3", Program: "/usr/bin/ward-agent"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ep.Serve(ctx) }()

	at := time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC)
	ep.Update(func(i *Info) {
		i.Enrolled = true
		i.LastDelivery = &service.Delivery{At: at, Waiting: 2, Problem: "collector unreachable at c:1: connection refused"}
	})
	info, err := Query(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.PID != os.Getpid() || info.Version != "1.2.3" || info.StateDir != dir || !info.Enrolled ||
		info.LastDelivery == nil || !info.LastDelivery.At.Equal(at) || info.LastDelivery.Waiting != 2 ||
		info.LastDelivery.Problem != "collector unreachable at c:1: connection refused" || time.Since(info.StartedAt) > time.Minute {
		t.Errorf("Info = %+v (delivery %+v)", info, info.LastDelivery)
	}
	pid, err := os.ReadFile(filepath.Join(dir, PIDFile))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file = %q, %v", pid, err)
	}
	if st, err := os.Stat(filepath.Join(dir, SocketFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v, %v", st, err)
	}

	// One daemon per state directory.
	if _, err := Open(dir, Info{}); err == nil || !strings.Contains(err.Error(), "a daemon already runs for "+dir+" (pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second Open = %v", err)
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{PIDFile, SocketFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Close: %v", name, err)
		}
	}
	if _, err := Stop(context.Background(), dir, time.Second); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Stop with no daemon = %v, want ErrNotRunning", err)
	}
}

// A stale pid file and socket (a daemon killed with SIGKILL) do not keep a
// new daemon from starting.
func TestOpenReplacesStaleFiles(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{PIDFile: "999999\n", SocketFile: ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ep, err := Open(dir, Info{})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if pid, err := ReadPID(dir); err != nil || pid != os.Getpid() {
		t.Errorf("ReadPID = %d, %v", pid, err)
	}
}
