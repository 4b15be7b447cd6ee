package patch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Reads collectDnf makes.
var (
	dnfCheckUpdateArgs  = []string{"-q", "--cacheonly", "check-update"}
	dnfSecurityArgs     = []string{"-q", "--cacheonly", "updateinfo", "list", "--security", "--available"}
	dnfAdvisoriesArgs   = []string{"-q", "--cacheonly", "updateinfo", "list", "--available"}
	rpmLastArgs         = []string{"-qa", "--last"}
	needsRestartingArgs = []string{"-r"}
)

const (
	dnfCacheDir       = "/var/cache/dnf"
	dnf5CacheDir      = "/var/cache/libdnf5"
	timersWantsDir    = "/etc/systemd/system/timers.target.wants"
	dnfAutomaticConf  = "/etc/dnf/automatic.conf"
	dnfExitUpdates    = 100
	needsRestartingOK = 0
	needsRestartingNo = 1
)

// collectDnf reads the patch level of a Fedora or RHEL-family system.
//
//   - pending: `dnf -q --cacheonly check-update` (exit 100: updates
//     listed, 0: none, anything else: failure), from the local metadata
//     cache only, like apt's simulation.
//   - pending_security_updates: the distinct packages (name.arch) of
//     `dnf updateinfo list --security --available`. When updates are
//     pending but the repositories publish no advisories at all (some
//     rebuilds carry no updateinfo), security updates cannot be told apart
//     and the count is left unset.
//   - metadata_refreshed_at: the newest repodata/repomd.xml in the dnf
//     (/var/cache/dnf/<repo>-<hash>/) or dnf5 (/var/cache/libdnf5/...)
//     cache: librepo writes it when it downloads a repository's metadata.
//   - last_update_installed_at: the first line of `rpm -qa --last`.
//   - reboot_required: `needs-restarting -r` (exit 1: required, 0: not),
//     else the kernel comparison of kernelReboot.
//   - automatic_updates: dnf-automatic-install.timer enabled, or
//     dnf-automatic.timer / dnf5-automatic.timer enabled with apply_updates
//     = yes in /etc/dnf/automatic.conf.
func collectDnf(ctx context.Context, src check.Source) *wardv1.PatchFacts {
	f := &wardv1.PatchFacts{Manager: "dnf"}
	var problems check.Problems

	res, err := src.Command(ctx, "dnf", dnfCheckUpdateArgs...)
	switch {
	case err != nil:
		return finish(f, runFailed("dnf", dnfCheckUpdateArgs, err), check.Problems{})
	case res.ExitCode != 0 && res.ExitCode != dnfExitUpdates:
		return finish(f, exitFailed("dnf", dnfCheckUpdateArgs, res), check.Problems{})
	case res.Truncated:
		return finish(f, cutOff("dnf", dnfCheckUpdateArgs), check.Problems{})
	}
	updates, err := parseDnfCheckUpdate(res.Stdout)
	if err == nil && (len(updates) > 0) != (res.ExitCode == dnfExitUpdates) {
		err = fmt.Errorf("exit status %d with %d updates listed", res.ExitCode, len(updates))
	}
	if err != nil {
		return finish(f, parseFailed("dnf", dnfCheckUpdateArgs, err), check.Problems{})
	}

	var security map[string]bool
	if len(updates) > 0 {
		security, err = dnfSecurity(ctx, src)
		if err != nil {
			problems.Add("security updates unknown: "+err.Error(), texts.New("reason.patch_security_unknown"), check.ErrText("", err))
		}
	}
	var nsec int
	for _, u := range updates {
		sec := security[u.name+"."+u.arch]
		if sec {
			nsec++
		}
		appendPending(f, &wardv1.PendingUpdate{Name: u.name + "." + u.arch, Version: u.version, Security: sec})
	}
	f.PendingUpdates = int32p(len(updates))
	if len(updates) == 0 || security != nil {
		f.PendingSecurityUpdates = int32p(nsec)
	}

	if at, err := newestRepomd(ctx, src); err != nil {
		problems.Add("metadata refresh time unknown: "+err.Error(), texts.New("reason.patch_refresh_unknown"), check.ErrText("", err))
	} else {
		f.MetadataRefreshedAt = timestamppb.New(at)
	}

	if at, err := rpmLastInstall(ctx, src); err != nil {
		problems.Add("last update time unknown: "+err.Error(), texts.New("reason.patch_last_install_unknown"), check.ErrText("", err))
	} else {
		f.LastUpdateInstalledAt = timestamppb.New(at)
	}

	rb := dnfReboot(ctx, src)
	f.RebootRequired = rb.required
	if rb.required == nil {
		problems.Add(rb.reason, rebootText(rb)...)
	}

	if auto, err := dnfAutomatic(ctx, src); err != nil {
		problems.Add("automatic updates unknown: "+err.Error(), texts.New("reason.patch_auto_unknown"), check.ErrText("", err))
	} else {
		f.AutomaticUpdates = &auto
	}
	return finish(f, nil, problems)
}

// dnfSecurity returns the set of name.arch with a pending security
// advisory. An empty set is trusted only when the repositories publish
// advisories of some kind.
func dnfSecurity(ctx context.Context, src check.Source) (map[string]bool, error) {
	sec, err := runUpdateinfo(ctx, src, dnfSecurityArgs)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, a := range sec {
		if a.security {
			set[a.name+"."+a.arch] = true
		}
	}
	if len(set) > 0 {
		return set, nil
	}
	all, err := runUpdateinfo(ctx, src, dnfAdvisoriesArgs)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, errors.New("updates are pending but the repositories publish no advisories (updateinfo), so security updates cannot be told apart")
	}
	return set, nil
}

func runUpdateinfo(ctx context.Context, src check.Source, args []string) ([]dnfAdvisory, error) {
	res, err := src.Command(ctx, "dnf", args...)
	switch {
	case err != nil:
		return nil, fmt.Errorf("cannot run %s: %w", commandLine("dnf", args), err)
	case res.ExitCode != 0:
		return nil, errors.New(commandFailure("dnf", args, res))
	case res.Truncated:
		return nil, fmt.Errorf("%s: output truncated", commandLine("dnf", args))
	}
	adv, err := parseUpdateinfo(res.Stdout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", commandLine("dnf", args), err)
	}
	return adv, nil
}

// dnfUpdate is one line of check-update.
type dnfUpdate struct {
	name, arch, version, repo string
}

// parseDnfCheckUpdate parses `dnf -q check-update` (dnf4 and dnf5): lines
// "name.arch  [epoch:]version-release  repo", a name too long for its
// column on a line of its own with the rest on the next, dnf5's
// "Upgrades" heading, and the "Obsoleting Packages" section that ends the
// listing. Any other line is an error.
func parseDnfCheckUpdate(out []byte) ([]dnfUpdate, error) {
	var updates []dnfUpdate
	var pending string // a wrapped name.arch
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case line == "":
			continue
		case line == "Obsoleting Packages" || line == "Obsoleting packages":
			if pending != "" {
				return nil, fmt.Errorf("%q has no version", pending)
			}
			return updates, nil
		case line == "Upgrades" && len(updates) == 0 && pending == "":
			continue
		case strings.HasPrefix(line, "Last metadata expiration check:"), strings.HasPrefix(line, "Security: "):
			continue
		}
		if pending != "" {
			if len(fields) != 2 {
				return nil, fmt.Errorf("%q is followed by %q, not its version and repository", pending, check.Shorten(line, 200))
			}
			fields = append([]string{pending}, fields...)
			pending = ""
		}
		switch len(fields) {
		case 1:
			pending = fields[0]
			continue
		case 3:
		default:
			return nil, fmt.Errorf("unrecognised line %q", check.Shorten(line, 200))
		}
		dot := strings.LastIndexByte(fields[0], '.')
		if dot <= 0 || dot == len(fields[0])-1 || !strings.Contains(fields[1], "-") {
			return nil, fmt.Errorf("unrecognised line %q", check.Shorten(line, 200))
		}
		updates = append(updates, dnfUpdate{name: fields[0][:dot], arch: fields[0][dot+1:], version: fields[1], repo: fields[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if pending != "" {
		return nil, fmt.Errorf("%q has no version (truncated?)", pending)
	}
	return updates, nil
}

// dnfAdvisory is one line of updateinfo list: an advisory and one package
// it updates.
type dnfAdvisory struct {
	id, kind, severity string
	name, arch, nevra  string
	security           bool
}

// parseUpdateinfo parses `dnf updateinfo list` of dnf4 ("FEDORA-2023-1
// Important/Sec. pkg-1.0-1.fc38.x86_64", also yum's list-sec) and of dnf5
// ("FEDORA-2024-1 security Moderate pkg-1.0-1.fc40.x86_64 2024-03-01
// 01:02:03" under a "Name Type Severity Package Issued" heading).
func parseUpdateinfo(out []byte) ([]dnfAdvisory, error) {
	var adv []dnfAdvisory
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		fields := strings.Fields(line)
		switch {
		case line == "", strings.HasPrefix(line, "Last metadata expiration check:"):
			continue
		case len(fields) >= 4 && fields[0] == "Name" && fields[1] == "Type":
			continue
		case len(fields) < 3:
			return nil, fmt.Errorf("unrecognised line %q", check.Shorten(line, 200))
		}
		a := dnfAdvisory{id: fields[0]}
		pkgAt := 2
		if class := fields[1]; strings.Contains(class, "/") {
			// dnf4: "Important/Sec.", "bugfix", "enhancement".
			sev, kind, _ := strings.Cut(class, "/")
			a.severity, a.kind = sev, strings.ToLower(kind)
			a.security = strings.HasPrefix(a.kind, "sec")
		} else {
			a.kind = strings.ToLower(class)
			switch {
			case a.kind == "security" && len(fields) >= 4:
				// dnf5: "security Moderate pkg ..."
				a.severity, pkgAt = fields[2], 3
				a.security = true
			case a.kind == "security", a.kind == "bugfix", a.kind == "enhancement", a.kind == "newpackage", a.kind == "unspecified":
				// dnf4 without a severity, or a dnf5 line with one.
				if len(fields) >= 4 && !looksLikeNEVRA(fields[2]) {
					a.severity, pkgAt = fields[2], 3
				}
				a.security = a.kind == "security"
			default:
				return nil, fmt.Errorf("unrecognised advisory type in %q", check.Shorten(line, 200))
			}
		}
		if !looksLikeNEVRA(fields[pkgAt]) {
			return nil, fmt.Errorf("no package in %q", check.Shorten(line, 200))
		}
		a.nevra = fields[pkgAt]
		a.name, a.arch = splitNEVRA(a.nevra)
		adv = append(adv, a)
	}
	return adv, nil
}

// looksLikeNEVRA is true for name-[epoch:]version-release.arch.
func looksLikeNEVRA(s string) bool {
	name, arch := splitNEVRA(s)
	return name != "" && arch != ""
}

// splitNEVRA returns the name and arch of name-[epoch:]version-release.arch.
func splitNEVRA(s string) (name, arch string) {
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return "", ""
	}
	rest, arch := s[:dot], s[dot+1:]
	i := strings.LastIndexByte(rest, '-') // before release
	if i <= 0 {
		return "", ""
	}
	j := strings.LastIndexByte(rest[:i], '-') // before version
	if j <= 0 {
		return "", ""
	}
	return rest[:j], arch
}

func newestRepomd(ctx context.Context, src check.Source) (time.Time, error) {
	repomd := func(n string) []string { return []string{n + "/repodata/repomd.xml"} }
	at, err := newestMtime(ctx, src, dnfCacheDir, repomd)
	if err == nil {
		return at, nil
	}
	at5, err5 := newestMtime(ctx, src, dnf5CacheDir, repomd)
	if err5 == nil {
		return at5, nil
	}
	return time.Time{}, fmt.Errorf("%w; %w", err, err5)
}

func rpmLastInstall(ctx context.Context, src check.Source) (time.Time, error) {
	res, err := src.Command(ctx, "rpm", rpmLastArgs...)
	if err != nil {
		return time.Time{}, err
	}
	// --last sorts newest first; a truncated output still has its first line.
	if res.ExitCode != 0 {
		return time.Time{}, errors.New(commandFailure("rpm", rpmLastArgs, res))
	}
	return parseRpmLast(res.Stdout)
}

// rpmDateLayouts are the install dates rpm prints: strftime %c in the C
// locale (what Ward runs it with), and the en_US form seen in most pasted
// output.
var rpmDateLayouts = []string{
	"Mon Jan _2 15:04:05 2006",
	"Mon 02 Jan 2006 03:04:05 PM MST",
	"Mon 02 Jan 2006 15:04:05 MST",
	"Mon Jan _2 15:04:05 MST 2006",
}

// parseRpmLast returns the install date on the first line of `rpm -qa
// --last` ("kernel-6.5.6-300.fc39.x86_64   Mon Oct 16 10:13:23 2023"): the
// newest install. A date without a zone is read as UTC.
func parseRpmLast(out []byte) (time.Time, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 {
		return time.Time{}, fmt.Errorf("unrecognised rpm --last line %q", check.Shorten(line, 200))
	}
	date := strings.Join(fields[1:], " ")
	for _, layout := range rpmDateLayouts {
		if at, err := time.Parse(layout, date); err == nil {
			return at, nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised install date %q", check.Shorten(date, 200))
}

func dnfReboot(ctx context.Context, src check.Source) rebootState {
	res, err := src.Command(ctx, "needs-restarting", needsRestartingArgs...)
	if err == nil && !res.Truncated {
		switch res.ExitCode {
		case needsRestartingNo:
			return rebootState{required: boolp(true), reason: check.FirstLine(res.Stdout)}
		case needsRestartingOK:
			return rebootState{required: boolp(false)}
		}
	}
	return kernelReboot(ctx, src)
}

// dnfAutomatic says whether dnf-automatic installs updates on a timer.
func dnfAutomatic(ctx context.Context, src check.Source) (bool, error) {
	names, err := src.ReadDir(ctx, timersWantsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var timer bool
	for _, n := range names {
		switch n {
		case "dnf-automatic-install.timer", "dnf5-automatic-install.timer":
			return true, nil
		case "dnf-automatic.timer", "dnf5-automatic.timer":
			timer = true
		}
	}
	if !timer {
		return false, nil
	}
	conf, err := src.ReadFile(ctx, dnfAutomaticConf, 64<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // apply_updates defaults to no
	}
	if err != nil {
		return false, err
	}
	return parseDnfAutomaticConf(conf), nil
}

// parseDnfAutomaticConf reads apply_updates in [commands]; it defaults to
// no.
func parseDnfAutomaticConf(data []byte) bool {
	var section string
	apply := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "commands" || strings.TrimSpace(k) != "apply_updates" {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "yes", "true", "1", "on":
			apply = true
		default:
			apply = false
		}
	}
	return apply
}
