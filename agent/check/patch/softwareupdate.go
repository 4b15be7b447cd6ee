package patch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/plist"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Reads collectDarwin makes.
var (
	suListArgs       = []string{"--list"}
	suListCachedArgs = []string{"--list", "--no-scan"}
)

const (
	installHistoryPath = "/Library/Receipts/InstallHistory.plist"
	// maxInstallHistory caps InstallHistory.plist; it grows by a few
	// hundred bytes per install and is rarely above a megabyte.
	maxInstallHistory = 8 << 20
	suPrefsDomain     = "/Library/Preferences/com.apple.SoftwareUpdate"
	// suManagedDomain holds settings an MDM profile enforces; they win
	// over the local ones.
	suManagedDomain = "/Library/Managed Preferences/com.apple.SoftwareUpdate"
)

// collectDarwin reads the patch level of a Mac.
//
//   - pending: `softwareupdate --list`, which asks Apple's servers. When it
//     fails (offline), `--list --no-scan` (the last background scan) is
//     used only if it lists updates: its "nothing" may just be stale, so
//     the counts stay unset then, and a cached zero security count is never
//     reported.
//   - pending_security_updates counts pending macOS updates of the running
//     major version (point updates, Rapid Security Responses, Background
//     Security Improvements: Apple ships security fixes in all of them),
//     Safari, anything titled "Security", and any recommended update that
//     needs a restart or shut down (the pre-Catalina way OS and firmware
//     updates are marked). A newer major macOS is an upgrade, not a
//     security update: the running major still gets security fixes.
//   - last_update_installed_at: the newest InstallHistory.plist entry
//     installed by softwareupdated, leaving out config-data (XProtect,
//     Gatekeeper and MRT definitions arrive daily and say nothing about
//     the OS patch level).
//   - reboot_required is true when the live listing (not the cached
//     --no-scan one, which may name updates installed since) holds a
//     security update (as counted above; an offered major upgrade is
//     not one) that needs a restart or shut down to install ("Action:
//     restart", "[restart]"): the Mac will not be up to date until it
//     restarts. Otherwise it stays unset, never false: macOS exposes no
//     documented "no restart pending" state to read (an update staged by
//     a background download and waiting for the restart shows in the
//     listing, but nothing vouches that nothing else waits), so a clean
//     listing proves only that no listed update needs one.
//   - automatic_updates: true when macOS updates
//     (AutomaticallyInstallMacOSUpdates) and security responses and system
//     files (CriticalUpdateInstall) both install automatically, reading the
//     managed (MDM) preference first, then the local one. A missing key is
//     the macOS default: AutomaticallyInstallMacOSUpdates off (the
//     conservative reading; Apple changed this default between releases),
//     CriticalUpdateInstall on.
func collectDarwin(ctx context.Context, src check.Source, osf *wardv1.OSFacts) *wardv1.PatchFacts {
	f := &wardv1.PatchFacts{Manager: "softwareupdate"}
	current := macRelease(osf.GetVersion())
	var problems check.Problems

	list, err := softwareUpdateList(ctx, src, suListArgs)
	if err == nil {
		fillPending(f, list, current)
		if restartPending(list, current) {
			yes := true
			f.RebootRequired = &yes
		}
	} else {
		problems.Add("cannot list pending updates: "+err.Error(), texts.New("reason.patch_pending_unknown"), check.ErrText("", err))
		cached, cerr := softwareUpdateList(ctx, src, suListCachedArgs)
		if cerr == nil && len(cached.updates) > 0 {
			fillPending(f, cached, current)
			if f.GetPendingUpdates() == 0 {
				f.PendingUpdates = nil
			}
			if f.GetPendingSecurityUpdates() == 0 {
				f.PendingSecurityUpdates = nil
			}
			problems.Add("pending updates are from the last background scan (softwareupdate --no-scan) and may be incomplete", texts.New("reason.patch_scan_old"))
		}
	}

	if at, err := lastSoftwareUpdate(ctx, src); err != nil {
		problems.Add("last update time unknown: "+err.Error(), texts.New("reason.patch_last_install_unknown"), check.ErrText("", err))
	} else {
		f.LastUpdateInstalledAt = timestamppb.New(at)
	}
	if at, err := lastSuccessfulScan(ctx, src); err == nil {
		f.MetadataRefreshedAt = timestamppb.New(at)
	}
	if auto, err := darwinAutomaticUpdates(ctx, src); err != nil {
		problems.Add("automatic updates unknown: "+err.Error(), texts.New("reason.patch_auto_unknown"), check.ErrText("", err))
	} else {
		f.AutomaticUpdates = &auto
	}

	switch {
	case problems.Len() == 0:
		f.Collection = check.OK()
	case f.PendingSecurityUpdates == nil && f.LastUpdateInstalledAt == nil && f.AutomaticUpdates == nil:
		f.Collection = check.FailedText(problems.Text, "%s", problems.String())
	default:
		f.Collection = check.PartialText(problems.Text, "%s", problems.String())
	}
	return f
}

func fillPending(f *wardv1.PatchFacts, list suList, current int) {
	var security int32
	for _, u := range list.updates {
		p := &wardv1.PendingUpdate{Name: u.Title, Version: u.Version, RestartRequired: u.Restart || u.ShutDown, Security: suSecurity(u, current)}
		if p.Name == "" {
			p.Name = u.Label
		}
		if p.Security {
			security++
		}
		f.Pending = append(f.Pending, p)
	}
	n := int32(len(list.updates))
	f.PendingUpdates = &n
	f.PendingSecurityUpdates = &security
}

// restartPending reports whether a security update in list (suSecurity:
// not an offered major upgrade, which the Mac may decline) needs a
// restart or shut down to install.
func restartPending(list suList, current int) bool {
	for _, u := range list.updates {
		if (u.Restart || u.ShutDown) && suSecurity(u, current) {
			return true
		}
	}
	return false
}

// suUpdate is one entry of softwareupdate --list.
type suUpdate struct {
	Label, Title, Version          string
	Recommended, Restart, ShutDown bool
}

// suList is a parsed listing; none is true for "No new software available."
type suList struct {
	none    bool
	updates []suUpdate
}

func softwareUpdateList(ctx context.Context, src check.Source, args []string) (suList, error) {
	res, err := src.Command(ctx, "softwareupdate", args...)
	if err != nil {
		return suList{}, fmt.Errorf("softwareupdate %s: %w", strings.Join(args, " "), err)
	}
	if res.Truncated {
		return suList{}, fmt.Errorf("softwareupdate %s: output truncated", strings.Join(args, " "))
	}
	// The exit status is not used: "No new software available." has come
	// with 0 and with 1 across versions. The text decides, and anything
	// not recognised is an error.
	l, err := parseSoftwareUpdateList(res.Stdout, res.Stderr)
	if err != nil {
		return suList{}, fmt.Errorf("softwareupdate %s (exit %d): %w", strings.Join(args, " "), res.ExitCode, err)
	}
	return l, nil
}

const (
	suNoneLine   = "No new software available."
	suHeaderLine = "Software Update found the following new or updated software:"
)

// suOldDetailRe is a pre-Catalina detail line:
// "macOS 10.14.1 Update (10.14.1), 199140K [recommended] [restart]".
var suOldDetailRe = regexp.MustCompile(`^(.+?),?\s*\(([^()]*)\),\s*([0-9]+K(?:iB)?),?\s*(.*)$`)

// parseSoftwareUpdateList parses softwareupdate --list in the current
// format ("* Label: X" then "Title: ..., Version: ..., Recommended: YES,
// Action: restart,") and the pre-Catalina one ("* X" then "Title (version),
// 123K [recommended] [restart]"). A listing needs the "found the following"
// header and a detail line for every entry; "No new software available."
// must stand alone. Anything else is an error: no listing is never read as
// nothing pending.
func parseSoftwareUpdateList(stdout, stderr []byte) (suList, error) {
	var l suList
	var header bool
	var cur *suUpdate
	var haveDetail bool
	flush := func() error {
		if cur == nil {
			return nil
		}
		if !haveDetail {
			return fmt.Errorf("entry %q has no details (truncated output?)", cur.Label)
		}
		l.updates = append(l.updates, *cur)
		cur, haveDetail = nil, false
		return nil
	}
	text := string(stdout) + "\n" + string(stderr)
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case line == suNoneLine:
			l.none = true
		case line == suHeaderLine:
			header = true
		case header && (strings.HasPrefix(line, "* ") || strings.HasPrefix(line, "- ")):
			if err := flush(); err != nil {
				return suList{}, err
			}
			label := strings.TrimSpace(line[2:])
			label = strings.TrimPrefix(label, "Label: ")
			if label == "" {
				return suList{}, errors.New("entry without a label")
			}
			cur = &suUpdate{Label: label, Recommended: line[0] == '*'}
		case cur != nil && !haveDetail:
			if err := parseSUDetail(cur, line); err != nil {
				return suList{}, err
			}
			haveDetail = true
		}
	}
	if err := sc.Err(); err != nil {
		return suList{}, fmt.Errorf("parse softwareupdate: %w", err)
	}
	if err := flush(); err != nil {
		return suList{}, err
	}
	switch {
	case l.none && (header || len(l.updates) > 0):
		return suList{}, errors.New("both \"no new software\" and a listing")
	case l.none:
		return l, nil
	case !header:
		return suList{}, fmt.Errorf("no listing and no %q; it said %q", suNoneLine, suLastLine(stderr, stdout))
	case len(l.updates) == 0:
		return suList{}, errors.New("listing header without entries")
	}
	return l, nil
}

// parseSUDetail reads an entry's detail line into u.
func parseSUDetail(u *suUpdate, line string) error {
	if rest, ok := strings.CutPrefix(line, "Title: "); ok {
		// "Title: Safari, Version: 15.0, Size: 119059K, Recommended: YES, Action: restart,"
		fields := map[string]string{}
		var last string
		for _, part := range strings.Split("Title: "+rest, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			k, v, ok := strings.Cut(part, ": ")
			if ok && isSUKey(k) {
				fields[k] = strings.TrimSpace(v)
				last = k
			} else if last != "" {
				// A comma inside a value.
				fields[last] += ", " + part
			}
		}
		if fields["Title"] == "" {
			return fmt.Errorf("entry %q: detail line without a title", u.Label)
		}
		u.Title, u.Version = fields["Title"], fields["Version"]
		u.Recommended = strings.EqualFold(fields["Recommended"], "YES")
		switch strings.ToLower(fields["Action"]) {
		case "restart":
			u.Restart = true
		case "shut down":
			u.ShutDown = true
		}
		return nil
	}
	m := suOldDetailRe.FindStringSubmatch(line)
	if m == nil {
		return fmt.Errorf("entry %q: unrecognised detail line %q", u.Label, check.Shorten(line, 160))
	}
	u.Title, u.Version = strings.TrimSpace(m[1]), strings.TrimSpace(m[2])
	flags := m[4]
	u.Recommended = strings.Contains(flags, "[recommended]")
	u.Restart = strings.Contains(flags, "[restart]")
	u.ShutDown = strings.Contains(flags, "[shut down]")
	return nil
}

func isSUKey(k string) bool {
	switch k {
	case "Title", "Version", "Size", "Recommended", "Action", "Deferred":
		return true
	}
	return false
}

// suSecurity says whether a pending update counts as a security update;
// collectDarwin's comment gives the definition. current is the running
// release from macRelease, 0 when unknown.
func suSecurity(u suUpdate, current int) bool {
	name := u.Title
	if name == "" {
		name = u.Label
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "macos") || strings.HasPrefix(lower, "mac os x") || strings.HasPrefix(lower, "os x") {
		rel := macRelease(u.Version)
		if rel == 0 {
			rel = macRelease(releaseInTitle(name))
		}
		if current > 0 && rel > current {
			return false // a major upgrade
		}
		return true
	}
	switch {
	case strings.Contains(lower, "security"), strings.HasPrefix(lower, "safari"):
		return true
	case u.Recommended && (u.Restart || u.ShutDown):
		return true
	}
	return false
}

var versionInTitleRe = regexp.MustCompile(`\b(1[0-9]|[2-9][0-9])(\.[0-9]+)*\b`)

func releaseInTitle(title string) string {
	return versionInTitleRe.FindString(title)
}

// macRelease reduces a macOS version to its major release, comparable
// across the 10.x and 11+ schemes: 10.14.6 → 1014, 14.6.1 → 1400, "26.7.1
// (a)" → 2600. It returns 0 for anything else.
func macRelease(v string) int {
	v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	parts := strings.Split(v, ".")
	major, err := strconv.Atoi(parts[0])
	if err != nil || major < 10 || major > 99 {
		return 0
	}
	if major == 10 {
		if len(parts) < 2 {
			return 0
		}
		minor, err := strconv.Atoi(parts[1])
		if err != nil || minor < 0 || minor > 99 {
			return 0
		}
		return 1000 + minor
	}
	return major * 100
}

// lastSoftwareUpdate returns when softwareupdated last installed something
// other than config-data.
func lastSoftwareUpdate(ctx context.Context, src check.Source) (time.Time, error) {
	data, err := src.ReadFile(ctx, installHistoryPath, maxInstallHistory)
	if err != nil {
		return time.Time{}, err
	}
	if len(data) >= maxInstallHistory {
		return time.Time{}, tooLarge(installHistoryPath, maxInstallHistory)
	}
	at, err := parseInstallHistory(data)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", installHistoryPath, err)
	}
	return at, nil
}

// parseInstallHistory returns the newest date of an InstallHistory.plist
// entry whose processName is softwareupdated and whose contentType is not
// config-data. No such entry is an error.
func parseInstallHistory(data []byte) (time.Time, error) {
	v, err := plist.Decode(data)
	if err != nil {
		return time.Time{}, err
	}
	entries, ok := plist.Array(v)
	if !ok {
		return time.Time{}, errors.New("top level is not an array")
	}
	var newest time.Time
	for _, e := range entries {
		d, ok := plist.Dict(e)
		if !ok {
			return time.Time{}, errors.New("entry is not a dict")
		}
		if p, _ := plist.String(d, "processName"); p != "softwareupdated" {
			continue
		}
		if ct, _ := plist.String(d, "contentType"); ct == "config-data" {
			continue
		}
		at, ok := plist.Date(d, "date")
		if !ok {
			return time.Time{}, errors.New("softwareupdated entry without a date")
		}
		if at.After(newest) {
			newest = at
		}
	}
	if newest.IsZero() {
		return time.Time{}, errors.New("no software update installed by softwareupdated")
	}
	return newest, nil
}

// lastSuccessfulScan reads when softwareupdate last reached Apple's
// catalog, e.g. "2024-08-20 10:12:33 +0000".
func lastSuccessfulScan(ctx context.Context, src check.Source) (time.Time, error) {
	res, err := src.Command(ctx, "defaults", "read", suPrefsDomain, "LastSuccessfulDate")
	if err != nil {
		return time.Time{}, err
	}
	if res.ExitCode != 0 {
		return time.Time{}, fmt.Errorf("defaults read exited %d", res.ExitCode)
	}
	return time.Parse("2006-01-02 15:04:05 -0700", strings.TrimSpace(string(res.Stdout)))
}

func darwinAutomaticUpdates(ctx context.Context, src check.Source) (bool, error) {
	macOS, err := suPreference(ctx, src, "AutomaticallyInstallMacOSUpdates", false)
	if err != nil {
		return false, err
	}
	critical, err := suPreference(ctx, src, "CriticalUpdateInstall", true)
	if err != nil {
		return false, err
	}
	return macOS && critical, nil
}

// suPreference reads a boolean SoftwareUpdate preference, managed first;
// def is the macOS default when neither domain sets it.
func suPreference(ctx context.Context, src check.Source, key string, def bool) (bool, error) {
	for _, domain := range []string{suManagedDomain, suPrefsDomain} {
		v, set, err := readDefaultsBool(ctx, src, domain, key)
		if err != nil {
			return false, fmt.Errorf("%s %s: %w", domain, key, err)
		}
		if set {
			return v, nil
		}
	}
	return def, nil
}

// readDefaultsBool runs defaults read domain key. set is false when the
// key (or domain) does not exist, which defaults reports with exit status
// 1 and "does not exist".
func readDefaultsBool(ctx context.Context, src check.Source, domain, key string) (v, set bool, err error) {
	res, err := src.Command(ctx, "defaults", "read", domain, key)
	if err != nil {
		return false, false, err
	}
	if res.ExitCode != 0 {
		if bytes.Contains(res.Stderr, []byte("does not exist")) {
			return false, false, nil
		}
		return false, false, fmt.Errorf("defaults read exited %d: %s", res.ExitCode, check.FirstLine(res.Stderr, res.Stdout))
	}
	switch strings.TrimSpace(string(res.Stdout)) {
	case "1", "true", "YES":
		return true, true, nil
	case "0", "false", "NO":
		return false, true, nil
	}
	return false, false, fmt.Errorf("not a boolean: %q", check.Shorten(strings.TrimSpace(string(res.Stdout)), 160))
}

// suLastLine returns the last non-empty line of the first output that has
// one: where softwareupdate says what went wrong.
func suLastLine(outs ...[]byte) string {
	for _, o := range outs {
		lines := strings.Split(strings.TrimSpace(string(o)), "\n")
		if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
			return check.Shorten(last, 160)
		}
	}
	return "nothing"
}
