package cli

import (
	"os"
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
// installer, service manager, notifications, CLI framework) and no gRPC:
// every package linked is initialised and paged in on every run (see
// doc.go).
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
		"github.com/wardhq/ward/agent/rpc",
		"github.com/wardhq/ward/agent/service",
		"github.com/wardhq/ward/collector",
		"github.com/kardianos/service",
		"github.com/spf13/cobra",
		"connectrpc.com/connect",
		"github.com/wardhq/ward/proto/ward/v1/wardv1grpc",
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
		if isGRPC(pkg) {
			t.Errorf("the check path links %s", pkg)
			continue
		}
		if i := slices.IndexFunc(strings.Fields(imports), isGRPC); i >= 0 {
			t.Errorf("%s imports %s", pkg, strings.Fields(imports)[i])
		}
	}
	if deps < len(checkPath) {
		t.Fatalf("go list printed %d packages for the %d of the check path:\n%s", deps, len(checkPath), out)
	}
}

func isGRPC(pkg string) bool {
	return pkg == "google.golang.org/grpc" || strings.HasPrefix(pkg, "google.golang.org/grpc/")
}

// No command of ward-agent links grpc-go, the daemon's delivery included:
// it calls the collector through agent/rpc (connect's gRPC protocol over
// net/http), since grpc-go's packages alone were about 5 MiB of every
// command's peak RSS.
func TestAgentLinksNoGRPC(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		cmd := exec.Command(goTool, "list", "-deps", "./agent/cmd/ward-agent")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list (%s): %v", goos, err)
		}
		pkgs := strings.Fields(string(out))
		if !slices.Contains(pkgs, "github.com/wardhq/ward/agent/rpc") {
			t.Fatalf("%s: ward-agent does not link agent/rpc; go list printed:\n%s", goos, out)
		}
		for _, p := range pkgs {
			if isGRPC(p) || p == "github.com/wardhq/ward/proto/ward/v1/wardv1grpc" {
				t.Errorf("%s: ward-agent links %s", goos, p)
			}
		}
	}
}
