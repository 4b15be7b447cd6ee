package patch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Reads collectApt makes.
var (
	aptSimulateArgs = []string{"-s", "-o", "Debug::NoLocking=1", "dist-upgrade"}
	aptConfigArgs   = []string{"dump"}
)

const (
	aptListsDir       = "/var/lib/apt/lists"
	aptHistoryPath    = "/var/log/apt/history.log"
	dpkgLogPath       = "/var/log/dpkg.log"
	unattendedUpgrade = "/usr/bin/unattended-upgrade"
	maxAptLog         = 16 << 20
	aptUnattendedKey  = "APT::Periodic::Unattended-Upgrade"
	aptSecuritySuffix = "-security"
)

// collectApt reads the patch level of a Debian or Ubuntu system.
//
//   - pending: `apt-get -s dist-upgrade` (a simulation: no root, no
//     network, no lock) against the local package index. An upgrade is an
//     `Inst` line with an installed version; packages newly installed as
//     dependencies are not counted. It is a security update when one of the
//     origins offering the new version is a -security suite
//     (Debian-Security:12/stable-security, Ubuntu:22.04/jammy-security,
//     UbuntuESM:16.04/xenial-infra-security).
//   - metadata_refreshed_at: the newest *_InRelease or *_Release file in
//     /var/lib/apt/lists. No index at all makes the simulation's "nothing
//     pending" meaningless, so the counts are left unset then.
//   - last_update_installed_at: the last /var/log/apt/history.log entry
//     that upgraded or installed packages, else the last upgrade or install
//     in /var/log/dpkg.log. Both logs are in local time without a zone and
//     are read as UTC.
//   - reboot_required: see debianReboot.
//   - automatic_updates: APT::Periodic::Unattended-Upgrade from `apt-config
//     dump` is non-zero and /usr/bin/unattended-upgrade exists.
func collectApt(ctx context.Context, src check.Source) *wardv1.PatchFacts {
	f := &wardv1.PatchFacts{Manager: "apt"}
	var problems check.Problems

	res, err := src.Command(ctx, "apt-get", aptSimulateArgs...)
	switch {
	case err != nil:
		return finish(f, runFailed("apt-get", aptSimulateArgs, err), check.Problems{})
	case res.ExitCode != 0:
		return finish(f, exitFailed("apt-get", aptSimulateArgs, res), check.Problems{})
	case res.Truncated:
		return finish(f, cutOff("apt-get", aptSimulateArgs), check.Problems{})
	}
	sim, err := parseAptSimulate(res.Stdout)
	if err != nil {
		return finish(f, parseFailed("apt-get", aptSimulateArgs, err), check.Problems{})
	}

	indexed, err := newestMtime(ctx, src, aptListsDir, func(n string) []string {
		if strings.HasSuffix(n, "_InRelease") || strings.HasSuffix(n, "_Release") {
			return []string{n}
		}
		return nil
	})
	if err != nil {
		return finish(f, check.Reasoned("package index unknown, so pending updates cannot be told: "+err.Error(),
			texts.New("reason.patch_pending_unknown"), check.ErrText(aptListsDir, err)), check.Problems{})
	}
	f.MetadataRefreshedAt = timestamppb.New(indexed)
	fillApt(f, sim)

	if at, err := aptLastInstall(ctx, src); err != nil {
		problems.Add("last update time unknown: "+err.Error(), texts.New("reason.patch_last_install_unknown"), check.ErrText("", err))
	} else {
		f.LastUpdateInstalledAt = timestamppb.New(at)
	}

	rb := debianReboot(ctx, src)
	f.RebootRequired = rb.required
	if rb.required == nil {
		problems.Add(rb.reason, rebootText(rb)...)
	}

	if auto, err := aptAutomatic(ctx, src); err != nil {
		problems.Add("automatic updates unknown: "+err.Error(), texts.New("reason.patch_auto_unknown"), check.ErrText("", err))
	} else {
		f.AutomaticUpdates = &auto
	}
	return finish(f, nil, problems)
}

func fillApt(f *wardv1.PatchFacts, sim aptSim) {
	var security int
	for _, u := range sim.upgrades {
		if u.security {
			security++
		}
		appendPending(f, &wardv1.PendingUpdate{Name: u.name, Version: u.version, Security: u.security})
	}
	f.PendingUpdates = int32p(len(sim.upgrades))
	f.PendingSecurityUpdates = int32p(security)
}

// aptUpgrade is one Inst line that upgrades an installed package.
type aptUpgrade struct {
	name, installed, version string
	origins                  []string
	security                 bool
}

// aptSim is a parsed `apt-get -s dist-upgrade`.
type aptSim struct {
	upgrades []aptUpgrade
	// newInstalls counts Inst lines without an installed version.
	newInstalls int
}

// aptInstRe matches "Inst pkg [old] (new Origin:Ver/suite, ... [arch])",
// the old version and the trailing "[]" or "[dep on pkg]" being optional.
var aptInstRe = regexp.MustCompile(`^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) (.*) \[([^\]]+)\]\)(?: \[.*\])?$`)

// aptSummaryRe is "12 upgraded, 0 newly installed, 0 to remove and 5 not upgraded."
var aptSummaryRe = regexp.MustCompile(`^(\d+) upgraded, (\d+) newly installed, (\d+) to remove and (\d+) not upgraded\.$`)

// parseAptSimulate parses `apt-get -s dist-upgrade`. The summary line is
// required and must agree with the Inst lines (a cut-off listing does
// not), so a listing that is not whole is an error, never "nothing
// pending".
func parseAptSimulate(out []byte) (aptSim, error) {
	var sim aptSim
	summary := -1
	var newly int
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		switch {
		case strings.HasPrefix(line, "Inst "):
			m := aptInstRe.FindStringSubmatch(line)
			if m == nil {
				return aptSim{}, fmt.Errorf("unrecognised line %q", check.Shorten(line, 200))
			}
			if m[2] == "" {
				sim.newInstalls++
				continue
			}
			u := aptUpgrade{name: m[1], installed: m[2], version: m[3]}
			for _, o := range strings.Split(m[4], ", ") {
				o = strings.TrimSpace(o)
				u.origins = append(u.origins, o)
				if _, suite, ok := strings.Cut(o, "/"); ok && strings.Contains(suite, aptSecuritySuffix) {
					u.security = true
				}
			}
			sim.upgrades = append(sim.upgrades, u)
		case aptSummaryRe.MatchString(line):
			if summary >= 0 {
				return aptSim{}, errors.New("two summary lines")
			}
			m := aptSummaryRe.FindStringSubmatch(line)
			summary, _ = strconv.Atoi(m[1])
			newly, _ = strconv.Atoi(m[2])
		case strings.HasPrefix(line, "E: "), strings.HasPrefix(line, "Err"):
			return aptSim{}, fmt.Errorf("apt reported %q", check.Shorten(line, 200))
		}
	}
	if err := sc.Err(); err != nil {
		return aptSim{}, err
	}
	switch {
	case summary < 0:
		return aptSim{}, errors.New("no summary line (\"N upgraded, ...\"): not a complete simulation")
	case summary != len(sim.upgrades) || newly != sim.newInstalls:
		return aptSim{}, fmt.Errorf("summary says %d upgraded and %d newly installed, the listing has %d and %d (truncated?)",
			summary, newly, len(sim.upgrades), sim.newInstalls)
	}
	return sim, nil
}

// aptLastInstall returns when apt last upgraded or installed a package,
// from history.log, else dpkg.log.
func aptLastInstall(ctx context.Context, src check.Source) (time.Time, error) {
	data, herr := readCapped(ctx, src, aptHistoryPath, maxAptLog)
	if herr == nil {
		at, err := parseHistoryLog(data)
		if err == nil {
			return at, nil
		}
		herr = fmt.Errorf("%s: %w", aptHistoryPath, err)
	}
	data, derr := readCapped(ctx, src, dpkgLogPath, maxAptLog)
	if derr == nil {
		at, err := parseDpkgLog(data)
		if err == nil {
			return at, nil
		}
		derr = fmt.Errorf("%s: %w", dpkgLogPath, err)
	}
	return time.Time{}, fmt.Errorf("%w; %w", herr, derr)
}

const aptLogTime = "2006-01-02 15:04:05"

// parseHistoryLog returns the End-Date (else the Start-Date, for an entry
// cut short) of the last /var/log/apt/history.log entry with an Upgrade:
// or Install: line. No such entry is an error.
func parseHistoryLog(data []byte) (time.Time, error) {
	var last time.Time
	var start, end string
	var changes bool
	flush := func() error {
		if changes {
			d := end
			if d == "" {
				d = start
			}
			at, err := time.Parse(aptLogTime, strings.Join(strings.Fields(d), " "))
			if err != nil {
				return fmt.Errorf("bad date %q", check.Shorten(d, 200))
			}
			last = at
		}
		start, end, changes = "", "", false
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		key, val, _ := strings.Cut(line, ": ")
		switch {
		case line == "":
			if err := flush(); err != nil {
				return time.Time{}, err
			}
		case key == "Start-Date":
			if err := flush(); err != nil {
				return time.Time{}, err
			}
			start = val
		case key == "End-Date":
			end = val
		case key == "Upgrade" || key == "Install":
			changes = true
		}
	}
	if err := flush(); err != nil {
		return time.Time{}, err
	}
	if last.IsZero() {
		return time.Time{}, errors.New("no entry that upgraded or installed packages")
	}
	return last, nil
}

// parseDpkgLog returns the time of the last "upgrade" or "install" line of
// /var/log/dpkg.log ("2025-06-24 14:36:25 upgrade pkg:arch old new").
func parseDpkgLog(data []byte) (time.Time, error) {
	var last time.Time
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || (fields[2] != "upgrade" && fields[2] != "install") {
			continue
		}
		at, err := time.Parse(aptLogTime, fields[0]+" "+fields[1])
		if err != nil {
			return time.Time{}, fmt.Errorf("bad date in %q", check.Shorten(line, 200))
		}
		last = at
	}
	if last.IsZero() {
		return time.Time{}, errors.New("no upgrade or install line")
	}
	return last, nil
}

// aptAutomatic says whether unattended-upgrades runs.
func aptAutomatic(ctx context.Context, src check.Source) (bool, error) {
	res, err := src.Command(ctx, "apt-config", aptConfigArgs...)
	if err != nil {
		return false, err
	}
	if res.ExitCode != 0 || res.Truncated {
		return false, errors.New(commandFailure("apt-config", aptConfigArgs, res))
	}
	interval, err := parseAptConfigDump(res.Stdout)
	if err != nil {
		return false, err
	}
	if interval <= 0 {
		return false, nil
	}
	if _, err := src.Stat(ctx, unattendedUpgrade); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// parseAptConfigDump returns APT::Periodic::Unattended-Upgrade (a number
// of days; 0 or unset is off) from `apt-config dump`. Output without any
// APT:: setting is not a dump and is an error.
func parseAptConfigDump(out []byte) (int, error) {
	var seenAPT bool
	value := 0
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "APT::") {
			seenAPT = true
		}
		key, val, ok := strings.Cut(line, " ")
		if !ok || key != aptUnattendedKey {
			continue
		}
		val = strings.TrimSuffix(strings.TrimSpace(val), ";")
		val = strings.Trim(val, `"`)
		switch strings.ToLower(val) {
		case "true", "yes", "on":
			value = 1
			continue
		case "false", "no", "off", "":
			value = 0
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return 0, fmt.Errorf("%s is %q, not a number", aptUnattendedKey, check.Shorten(val, 200))
		}
		value = n
	}
	if !seenAPT {
		return 0, errors.New("apt-config dump printed no APT:: settings")
	}
	return value, nil
}
