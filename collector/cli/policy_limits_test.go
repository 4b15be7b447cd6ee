package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/server/servertest"
)

// policy set refuses a policy whose worst-case CEL cost is over the
// budget, naming the file and the line of the rule that takes it over.
func TestPolicySetRefusesOverBudget(t *testing.T) {
	c := servertest.Start(t)
	var b strings.Builder
	b.WriteString("name: costly\nversion: 1\nrules:\n")
	for i := range 200 {
		fmt.Fprintf(&b, `  - id: r%d
    title: A rule
    family: disk_encryption
    platforms: [linux]
    require: disk.volumes.all(v, v.mount_point.contains("x") || v.device.contains("y") || v.chain.contains("z") || true)
    expected: x
    severity: low
    remediation: { en: { linux: x } }
`, i)
	}
	file := filepath.Join(t.TempDir(), "costly.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), []string{"policy", "set", "--group", "staff", file, "--data", c.DataDir}, &out, &errb)
	if code != 3 {
		t.Errorf("exit %d, want 3 (input error)", code)
	}
	msg := errb.String()
	if !strings.Contains(msg, file+":") || !strings.Contains(msg, `require takes the policy's worst-case cost to`) {
		t.Errorf("stderr = %q, want FILE:LINE and the budget", msg)
	}
	if list, _ := run(t, "policy", "list", "--data", c.DataDir, "--json"); strings.TrimSpace(list) != "[]" {
		t.Errorf("policy list after a refused set = %s", list)
	}
}
