package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/collector/server/servertest"
)

// The interval serve stored goes into a backup and comes back with a
// restore, so the restored collector judges staleness as before.
func TestBackupKeepsSettings(t *testing.T) {
	c := servertest.Start(t)
	if err := os.WriteFile(filepath.Join(c.DataDir, "settings.json"), []byte("{\n  \"interval\": \"10m0s\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bk := filepath.Join(t.TempDir(), "bk")
	out, code := run(t, "backup", "--data", c.DataDir, "--to", bk)
	if code != 0 || !strings.Contains(out, "settings.json") {
		t.Fatalf("backup: %d\n%s", code, out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if _, code := run(t, "restore", "--from", bk, "--data", restored); code != 0 {
		t.Fatal("restore failed")
	}
	if got := staleAfterOf(t, "fleet", "summary", "--data", restored, "--json"); got != 1800 {
		t.Errorf("restored collector: stale after %ds, want 1800", got)
	}
	// A settings file that is not what serve writes is refused, not taken
	// for the default.
	os.WriteFile(filepath.Join(restored, "settings.json"), []byte(`{"interval": "soon"}`), 0o600)
	if _, code := run(t, "fleet", "summary", "--data", restored); code == 0 {
		t.Error("a garbled settings.json was accepted")
	}
}
