package server_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store/sqlite"
)

func durableConfig(dir string) server.Config {
	return server.Config{
		DataDir:  dir,
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// runOnce starts and stops a collector in dir, leaving its CA and a real
// ward.db (with about 2 MB of audit rows, checkpointed into the file).
func runOnce(t *testing.T, dir string) string {
	t.Helper()
	srv, err := server.New(durableConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	path := filepath.Join(dir, server.DatabaseFile)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
		INSERT INTO audit (at, actor, action, target, detail) SELECT i, 'admin', 'test', 'device-' || i, hex(randomblob(500)) FROM n`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	return path
}

func garbleFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 8192)
	for i := range junk {
		junk[i] = byte(i*7 + 13)
	}
	if _, err := f.WriteAt(junk, fi.Size()/2/4096*4096); err != nil {
		t.Fatal(err)
	}
}

func TestStartRefusesEmptyDatabaseAfterFirstRun(t *testing.T) {
	dir := t.TempDir()
	path := runOnce(t, dir)
	// In this order: the zero-length case needs the file, the deleted
	// case removes it (map order would make the first case flaky).
	for _, c := range []struct {
		name   string
		damage func(t *testing.T)
	}{
		{"zero-length", func(t *testing.T) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		name, damage := c.name, c.damage
		t.Run(name, func(t *testing.T) {
			damage(t)
			srv, err := server.New(durableConfig(dir))
			if err == nil {
				srv.Stop()
				t.Fatal("started on a lost database as a new, empty fleet")
			}
			for _, want := range []string{"refusing to start", path, filepath.Join(dir, "pki", "ca.key"), "backup", "ward-collector new-fleet --data " + dir} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if fi, err := os.Stat(path); err == nil && fi.Size() != 0 {
				t.Errorf("the refused database was written (%d bytes)", fi.Size())
			}
		})
	}
}

func TestStartRefusesGarbledDatabase(t *testing.T) {
	dir := t.TempDir()
	path := runOnce(t, dir)
	garbleFile(t, path)
	srv, err := server.New(durableConfig(dir))
	if err == nil {
		srv.Stop()
		t.Fatal("started on a garbled database")
	}
	for _, want := range []string{"refusing to start", "corrupt", "quick_check", path, "new-fleet"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestNewInstallStarts(t *testing.T) {
	for name, prepare := range map[string]func(dir string){
		"empty data dir": func(string) {},
		"zero-length ward.db, no CA": func(dir string) {
			if err := os.WriteFile(filepath.Join(dir, server.DatabaseFile), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			prepare(dir)
			srv, err := server.New(durableConfig(dir))
			if err != nil {
				t.Fatalf("new install refused: %v", err)
			}
			if !srv.CACreated() {
				t.Error("no CA created on a new install")
			}
			srv.Stop()
			// And the second start of that install is a normal restart.
			srv, err = server.New(durableConfig(dir))
			if err != nil {
				t.Fatalf("restart refused: %v", err)
			}
			srv.Stop()
		})
	}
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, srv *server.Server) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + srv.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

func TestReadyzFailsOnCorruptionWhileRunning(t *testing.T) {
	dir := t.TempDir()
	path := runOnce(t, dir)
	st, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{RequireFleet: true, CheckEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := durableConfig(dir)
	cfg.Store = st
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if code, body := readyz(t, srv); code != 200 {
		t.Fatalf("intact store: /readyz %d %q", code, body)
	}
	garbleFile(t, path)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := readyz(t, srv)
		if code == http.StatusServiceUnavailable {
			if body != "not ready: store corrupt" {
				t.Errorf("/readyz body %q, want the reason", body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %q 10 s after the database was garbled", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tinyTmpfs mounts a 16 MiB tmpfs (root only). Outside CI a machine that
// cannot mount skips the test; under CI=true that is a failure.
func tinyTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs (the full-disk test needs root): %v", err)
		}
		t.Skipf("mount tmpfs: %v (run as root; under CI=true this fails)", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func TestReadyzFailsOnFullDisk(t *testing.T) {
	dir := tinyTmpfs(t)
	srv, err := server.New(durableConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if code, body := readyz(t, srv); code != 200 {
		t.Fatalf("16 MiB free: /readyz %d %q", code, body)
	}
	// Fill the filesystem until the kernel says it is full.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v, want ENOSPC", err)
	}
	if code, body := readyz(t, srv); code != http.StatusServiceUnavailable || body != "not ready: disk full" {
		t.Errorf("full disk: /readyz %d %q, want 503 \"not ready: disk full\"", code, body)
	}
	// Room again: ready again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(t, srv); code != 200 {
		t.Errorf("after freeing space: /readyz %d %q", code, body)
	}
}
