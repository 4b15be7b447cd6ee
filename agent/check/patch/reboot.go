package patch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

const (
	kernelReleasePath = "/proc/sys/kernel/osrelease"
	debRebootFile     = "/var/run/reboot-required"
	debRebootPkgsFile = "/var/run/reboot-required.pkgs"
	suseRebootFile    = "/run/reboot-needed"
)

// rebootState is what a reboot check found: required is nil when unknown,
// with why in reason.
type rebootState struct {
	required *bool
	reason   string
}

// debianReboot reads /var/run/reboot-required, which packages' hooks write
// where update-notifier-common or unattended-upgrades is installed (Ubuntu
// always, Debian often not). Its absence alone is weak on Debian, so a
// newer kernel image installed than the one running also means a reboot is
// required. The package names in reboot-required.pkgs go into the reason.
func debianReboot(ctx context.Context, src check.Source) rebootState {
	_, err := src.ReadFile(ctx, debRebootFile, 4096)
	switch {
	case err == nil:
		var pkgs []string
		if data, err := src.ReadFile(ctx, debRebootPkgsFile, 64<<10); err == nil {
			pkgs = uniqueLines(data)
		}
		if len(pkgs) > 0 {
			return rebootState{required: boolp(true), reason: fmt.Sprintf("%s exists (packages: %s)", debRebootFile, strings.Join(pkgs, ", "))}
		}
		return rebootState{required: boolp(true)}
	case !errors.Is(err, fs.ErrNotExist):
		return rebootState{reason: fmt.Sprintf("reboot required unknown: %v", err)}
	}
	return kernelReboot(ctx, src)
}

// kernelReboot compares the running kernel with the newest kernel image in
// /boot (vmlinuz-<release>): a newer one installed means the system runs an
// outdated kernel until it reboots.
func kernelReboot(ctx context.Context, src check.Source) rebootState {
	running, err := src.ReadFile(ctx, kernelReleasePath, 256)
	if err != nil {
		return rebootState{reason: fmt.Sprintf("reboot required unknown: running kernel: %v", err)}
	}
	rel := strings.TrimSpace(string(running))
	names, err := src.ReadDir(ctx, "/boot")
	if err != nil {
		return rebootState{reason: fmt.Sprintf("reboot required unknown: installed kernels: %v", err)}
	}
	newest := newestKernel(names)
	if newest == "" {
		return rebootState{reason: "reboot required unknown: no versioned kernel image (vmlinuz-*) in /boot to compare with the running kernel " + rel}
	}
	if compareVersions(newest, rel) > 0 {
		return rebootState{required: boolp(true), reason: fmt.Sprintf("kernel %s is installed, %s is running", newest, rel)}
	}
	return rebootState{required: boolp(false)}
}

// newestKernel returns the highest release among /boot's vmlinuz-<release>
// names, ignoring rescue images and unversioned links.
func newestKernel(names []string) string {
	var newest string
	for _, n := range names {
		rel, ok := strings.CutPrefix(n, "vmlinuz-")
		if !ok || rel == "" || strings.Contains(rel, "rescue") || rel[0] < '0' || rel[0] > '9' {
			continue
		}
		if newest == "" || compareVersions(rel, newest) > 0 {
			newest = rel
		}
	}
	return newest
}

// modulesReboot is Arch's check: pacman replaces /boot/vmlinuz-linux in
// place and removes the old kernel's modules, so a running kernel whose
// /usr/lib/modules/<release> is gone has been upgraded.
func modulesReboot(ctx context.Context, src check.Source) rebootState {
	running, err := src.ReadFile(ctx, kernelReleasePath, 256)
	if err != nil {
		return rebootState{reason: fmt.Sprintf("reboot required unknown: running kernel: %v", err)}
	}
	rel := strings.TrimSpace(string(running))
	names, err := src.ReadDir(ctx, "/usr/lib/modules")
	if err != nil {
		return rebootState{reason: fmt.Sprintf("reboot required unknown: installed kernels: %v", err)}
	}
	for _, n := range names {
		if n == rel {
			return rebootState{required: boolp(false)}
		}
	}
	return rebootState{required: boolp(true), reason: fmt.Sprintf("the running kernel %s is no longer installed", rel)}
}

// compareVersions orders version strings the way dpkg and rpm mostly do:
// runs of digits compare numerically, other runs by byte, and '~' sorts
// before anything (1.0~rc1 < 1.0).
func compareVersions(a, b string) int {
	for a != "" || b != "" {
		if a == "" || b == "" {
			switch {
			case strings.HasPrefix(a, "~"):
				return -1
			case strings.HasPrefix(b, "~"):
				return 1
			case a == "":
				return -1
			}
			return 1
		}
		if isDigit(a[0]) && isDigit(b[0]) {
			var na, nb string
			na, a = splitRun(a, true)
			nb, b = splitRun(b, true)
			na, nb = strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(na) != len(nb) {
				return cmpInt(len(na), len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if a[0] != b[0] {
			switch {
			case a[0] == '~':
				return -1
			case b[0] == '~':
				return 1
			case isDigit(a[0]):
				return 1 // a number sorts after a separator or letter
			case isDigit(b[0]):
				return -1
			}
			return cmpInt(int(a[0]), int(b[0]))
		}
		a, b = a[1:], b[1:]
	}
	return 0
}

func splitRun(s string, digits bool) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) == digits {
		i++
	}
	return s[:i], s[i:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func uniqueLines(data []byte) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}
