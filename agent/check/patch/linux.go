package patch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// maxPendingListed caps PatchFacts.pending; the counts always count all.
const maxPendingListed = 200

// linuxManagers maps an os-release ID (and the IDs of close derivatives) to
// the package manager that updates it.
var linuxManagers = map[string]string{
	"debian": "apt", "ubuntu": "apt", "linuxmint": "apt", "pop": "apt", "raspbian": "apt",
	"kali": "apt", "elementary": "apt", "zorin": "apt", "neon": "apt", "devuan": "apt", "tails": "apt",
	"fedora": "dnf", "rhel": "dnf", "centos": "dnf", "rocky": "dnf", "almalinux": "dnf",
	"ol": "dnf", "amzn": "dnf", "nobara": "dnf",
	"opensuse-leap": "zypper", "opensuse-tumbleweed": "zypper", "opensuse-slowroll": "zypper",
	"opensuse-microos": "zypper", "sles": "zypper", "sled": "zypper", "sle-micro": "zypper",
	"arch": "pacman", "manjaro": "pacman", "endeavouros": "pacman", "garuda": "pacman", "artix": "pacman",
}

// managerBinaries is where each manager is looked for when the distribution
// is not one linuxManagers knows, in the order tried.
var managerBinaries = []struct{ manager, path string }{
	{"apt", "/usr/bin/apt-get"},
	{"dnf", "/usr/bin/dnf"},
	{"dnf", "/usr/bin/dnf5"},
	{"zypper", "/usr/bin/zypper"},
	{"pacman", "/usr/bin/pacman"},
}

// collectLinux reads the patch level of a Linux system through its package
// manager: apt (Debian, Ubuntu), dnf (Fedora, RHEL), zypper (openSUSE,
// SLES) or pacman (Arch). The distribution ID from os-release decides; for
// an unknown ID the first manager installed is used. Each manager's file
// says what it reads.
func collectLinux(ctx context.Context, src check.Source, osf *wardv1.OSFacts) *wardv1.PatchFacts {
	mgr, err := linuxManager(ctx, src, osf.GetId())
	if err != nil {
		return &wardv1.PatchFacts{Collection: check.FailedText(check.TextOf("", err), "%v", err)}
	}
	switch mgr {
	case "apt":
		return collectApt(ctx, src)
	case "dnf":
		return collectDnf(ctx, src)
	case "zypper":
		return collectZypper(ctx, src)
	case "pacman":
		return collectPacman(ctx, src)
	}
	return &wardv1.PatchFacts{Collection: check.FailedText([]texts.Text{texts.New("reason.patch_no_manager")}, "no collector for package manager %q", mgr)}
}

func linuxManager(ctx context.Context, src check.Source, id string) (string, error) {
	if m, ok := linuxManagers[strings.ToLower(id)]; ok {
		return m, nil
	}
	var unreadable []string
	for _, b := range managerBinaries {
		_, err := src.Stat(ctx, b.path)
		if err == nil {
			return b.manager, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			unreadable = append(unreadable, fmt.Sprintf("%s: %v", b.path, err))
		}
	}
	if len(unreadable) > 0 {
		english := fmt.Sprintf("distribution %q: cannot tell which package manager is installed: %s", id, strings.Join(unreadable, "; "))
		return "", check.Reasoned(english, texts.New("reason.patch_pending_unknown"), texts.New(check.IDDetail, "detail", strings.Join(unreadable, "; ")))
	}
	return "", check.Reasoned(fmt.Sprintf("distribution %q: none of apt-get, dnf, zypper or pacman is installed", id), texts.New("reason.patch_no_manager"))
}

// finish sets f.Collection from what is known: FAILED when the pending
// security count is unknown and nothing but problems were found, PARTIAL
// when some facts are unknown, OK when none is.
//
// fatal (nil when there is none) is why the pending updates are unknown,
// a check.Reasoned error from runFailed, exitFailed, cutOff or parseFailed.
func finish(f *wardv1.PatchFacts, fatal error, problems check.Problems) *wardv1.PatchFacts {
	switch {
	case fatal != nil:
		f.PendingUpdates, f.PendingSecurityUpdates, f.Pending = nil, nil, nil
		f.Collection = check.FailedText(append(check.TextOf("", fatal), problems.Text...),
			"%s", strings.Join(append([]string{fatal.Error()}, problems.English...), "; "))
	case problems.Len() == 0 && f.PendingSecurityUpdates != nil:
		f.Collection = check.OK()
	case f.PendingUpdates == nil && f.PendingSecurityUpdates == nil:
		f.Collection = check.FailedText(problems.Text, "%s", problems.String())
	default:
		f.Collection = check.PartialText(problems.Text, "%s", problems.String())
	}
	return f
}

// runFailed: the command listing pending updates could not be run.
func runFailed(tool string, args []string, err error) error {
	return check.Reasoned(fmt.Sprintf("cannot run %s: %v", commandLine(tool, args), err),
		texts.New("reason.patch_pending_unknown"), check.ErrText(tool, err))
}

// exitFailed: the command listing pending updates failed.
func exitFailed(tool string, args []string, res check.CommandResult) error {
	return check.Reasoned(commandFailure(tool, args, res), texts.New("reason.patch_pending_unknown"),
		texts.New(check.IDToolFailed, "source", tool, "detail", check.FirstLine(res.Stderr, res.Stdout)))
}

// cutOff: the command listing pending updates printed more than is read.
func cutOff(tool string, args []string) error {
	return check.Reasoned(commandLine(tool, args)+": output truncated", texts.New("reason.patch_pending_unknown"),
		texts.New(check.IDOutputCut, "source", tool))
}

// parseFailed: what the command listing pending updates printed could
// not be understood.
func parseFailed(tool string, args []string, err error) error {
	return check.Reasoned(fmt.Sprintf("%s: %v", commandLine(tool, args), err), texts.New("reason.patch_pending_unknown"),
		check.ParseText(tool, err))
}

// rebootText is why whether a restart is needed is unknown, for staff.
func rebootText(rb rebootState) []texts.Text {
	return []texts.Text{texts.New("reason.patch_reboot_unknown"),
		texts.New(check.IDDetail, "detail", strings.TrimPrefix(rb.reason, "reboot required unknown: "))}
}

// commandFailure describes a failed command for a reason: the command, its
// exit status and the first line of what it said.
func commandFailure(tool string, args []string, res check.CommandResult) string {
	return fmt.Sprintf("%s exited %d: %s", commandLine(tool, args), res.ExitCode, check.FirstLine(res.Stderr, res.Stdout))
}

func commandLine(tool string, args []string) string {
	return strings.TrimSpace(tool + " " + strings.Join(args, " "))
}

func int32p(n int) *int32 {
	v := int32(n)
	return &v
}

func boolp(b bool) *bool { return &b }

// appendPending adds p to f.Pending unless the list is full.
func appendPending(f *wardv1.PatchFacts, p *wardv1.PendingUpdate) {
	if len(f.Pending) < maxPendingListed {
		f.Pending = append(f.Pending, p)
	}
}

// newestMtime returns the newest modification time among the files
// pathsOf names in dir. It fails when dir cannot be listed or holds no
// such file, so "no index" is never read as "fresh index".
func newestMtime(ctx context.Context, src check.Source, dir string, pathsOf func(name string) []string) (time.Time, error) {
	names, err := src.ReadDir(ctx, dir)
	if err != nil {
		return time.Time{}, err
	}
	var newest time.Time
	var found int
	for _, n := range names {
		for _, p := range pathsOf(n) {
			fi, err := src.Stat(ctx, path.Join(dir, p))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return time.Time{}, err
			}
			found++
			if fi.ModTime.After(newest) {
				newest = fi.ModTime
			}
		}
	}
	if found == 0 {
		return time.Time{}, fmt.Errorf("%s holds no package index", dir)
	}
	return newest, nil
}

// readCapped reads a log of at most limit bytes; a longer one is an error,
// since only its start would be read and its newest entries are at the end.
func readCapped(ctx context.Context, src check.Source, p string, limit int64) ([]byte, error) {
	data, err := src.ReadFile(ctx, p, limit)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) >= limit {
		return nil, tooLarge(p, limit)
	}
	return data, nil
}

// tooLarge is the error for a log that fills the limit it is read with.
func tooLarge(p string, limit int64) error {
	return fmt.Errorf("%s is larger than %d bytes", p, limit)
}
