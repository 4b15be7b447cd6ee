// Package installtest gives tests of the agent's installation places
// that install.Trusted accepts.
package installtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/install"
)

// TempDir returns a new directory, removed when the test ends, that
// install.Trusted accepts: it is made in the user's cache directory, not
// in the temporary directory, which every user can write (/tmp). It fails
// the test when there is no such place.
func TempDir(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no place for install test files: %v", err)
	}
	parent := filepath.Join(cache, "ward-test")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := install.Trusted(parent); err != nil {
		t.Fatalf("no place for install test files that install accepts: %v (point XDG_CACHE_HOME at a directory only you can write)", err)
	}
	dir, err := os.MkdirTemp(parent, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	// Other users may enter it, as they may /usr/bin.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
