package cli

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// checkPath is what `ward-agent check` runs: collection and evaluation.
var checkPath = []string{
	"github.com/wardhq/ward/policies",
	"github.com/wardhq/ward/agent/collect",
	"github.com/wardhq/ward/agent/source",
	"github.com/wardhq/ward/agent/check",
	"github.com/wardhq/ward/agent/check/diskenc",
	"github.com/wardhq/ward/agent/check/firewall",
	"github.com/wardhq/ward/agent/check/osinfo",
	"github.com/wardhq/ward/agent/check/patch",
	"github.com/wardhq/ward/agent/check/plist",
}

// The check path links none of the service parts (enrolment, delivery,
// installer, service manager, notifications, CLI framework), and gRPC
// only through proto/ward/v1's generated service stubs: every package
// linked is initialised and paged in on every run, and gRPC alone costs a
// check about 5 MiB of RSS (see doc.go). Once the stubs live in their own
// package, the check path has no gRPC at all; this test then forbids it.
func TestCheckPathImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	cmd := exec.Command(goTool, append([]string{"list", "-deps", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}"}, checkPath...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/wardhq/ward/agent/cli",
		"github.com/wardhq/ward/agent/daemon",
		"github.com/wardhq/ward/agent/enroll",
		"github.com/wardhq/ward/agent/install",
		"github.com/wardhq/ward/agent/notify",
		"github.com/wardhq/ward/agent/outbox",
		"github.com/wardhq/ward/agent/report",
		"github.com/wardhq/ward/agent/service",
		"github.com/wardhq/ward/collector",
		"github.com/kardianos/service",
		"github.com/spf13/cobra",
		"github.com/goreleaser",
	}
	var deps int
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "\t")
		deps++
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("the check path links %s", pkg)
			}
		}
		if pkg == "github.com/wardhq/ward/proto/ward/v1" || isGRPC(pkg) {
			continue
		}
		if i := slices.IndexFunc(strings.Fields(imports), isGRPC); i >= 0 {
			t.Errorf("%s imports %s; on the check path only proto/ward/v1's service stubs may import gRPC", pkg, strings.Fields(imports)[i])
		}
	}
	if deps < len(checkPath) {
		t.Fatalf("go list printed %d packages for the %d of the check path:\n%s", deps, len(checkPath), out)
	}
}

func isGRPC(pkg string) bool {
	return pkg == "google.golang.org/grpc" || strings.HasPrefix(pkg, "google.golang.org/grpc/")
}
