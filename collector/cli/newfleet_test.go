package cli_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/server"
)

// runErr runs ward-collector and returns stdout, stderr and the exit code.
func runErr(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// ranOnce leaves dir as a collector that has run: a CA and a migrated
// ward.db, whose path it returns.
func ranOnce(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	srv, err := server.New(server.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	return dir, filepath.Join(dir, server.DatabaseFile)
}

func TestLostDatabaseThenNewFleet(t *testing.T) {
	dir, path := ranOnce(t)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}

	// serve refuses, naming the file and both ways out.
	_, stderr, code := runErr("serve", "--data", dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("serve on a zero-length ward.db after a first run: exit %d, want 1 (%s)", code, stderr)
	}
	for _, want := range []string{"refusing to start", path, "backup", "ward-collector new-fleet --data " + dir} {
		if !strings.Contains(stderr, want) {
			t.Errorf("serve's error %q does not say %q", stderr, want)
		}
	}

	// Admin commands do not turn the empty file into a fleet either.
	if _, stderr, code := runErr("devices", "list", "--data", dir); code != 1 || !strings.Contains(stderr, "empty") {
		t.Errorf("devices list on a zero-length ward.db: exit %d, %q", code, stderr)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("an admin command wrote the lost database: %v, %v", fi, err)
	}

	// new-fleet sets the file aside and creates an empty fleet ...
	stdout, stderr, code := runErr("new-fleet", "--data", dir)
	if code != 0 {
		t.Fatalf("new-fleet: exit %d: %s", code, stderr)
	}
	aside, _ := filepath.Glob(path + ".set-aside-*")
	if len(aside) != 1 || !strings.Contains(stdout, aside[0]) {
		t.Fatalf("set aside: %v; stdout %q", aside, stdout)
	}
	// ... which serve then starts on.
	srv, err := server.New(server.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start after new-fleet: %v", err)
	}
	srv.Stop()

	// new-fleet refuses a database that holds a fleet.
	before, _ := os.ReadFile(path)
	if _, stderr, code := runErr("new-fleet", "--data", dir); code != 1 || !strings.Contains(stderr, "holds a fleet") {
		t.Errorf("new-fleet on a healthy database: exit %d, %q", code, stderr)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("new-fleet changed a healthy database")
	}
}
