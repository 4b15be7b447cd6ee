package patch

import (
	"bytes"
	"context"
	"encoding/xml"
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

// Reads collectZypper makes.
var (
	zypperUpdatesArgs  = []string{"--non-interactive", "--no-refresh", "--xmlout", "list-updates"}
	zypperSecurityArgs = []string{"--non-interactive", "--no-refresh", "--xmlout", "list-patches", "--category", "security"}
	zypperRebootArgs   = []string{"needs-rebooting"}
)

const (
	zyppRawCache        = "/var/cache/zypp/raw"
	zyppHistory         = "/var/log/zypp/history"
	maxZyppHistory      = 16 << 20
	zypperExitSkipped   = 106 // ZYPPER_EXIT_INF_REPOS_SKIPPED
	zypperExitRebootInf = 102 // ZYPPER_EXIT_INF_REBOOT_NEEDED
)

// zypperAutomatic are the timers and cron jobs that install updates
// unattended on openSUSE and SLES.
var (
	zypperAutoTimers = []string{"transactional-update.timer", "os-update.timer"}
	zypperAutoCron   = []string{"/etc/cron.daily/opensuse.org-online_update", "/etc/cron.weekly/opensuse.org-online_update", "/etc/cron.monthly/opensuse.org-online_update"}
)

// collectZypper reads the patch level of an openSUSE or SLES system.
//
//   - pending_updates: the packages of `zypper --xmlout list-updates`
//     from the cached repositories (--no-refresh).
//   - pending_security_updates: the needed security patches of `zypper
//     --xmlout list-patches --category security`, counting the patches
//     zypper holds back in <blocked-update-list> while an update of the
//     package manager itself is pending. It counts patches, not packages;
//     they are listed in pending with security set.
//   - Any <message type="error"> (a repository not loaded) makes a count
//     a lower bound: a zero is then left unset.
//   - metadata_refreshed_at: the newest repodata/repomd.xml under
//     /var/cache/zypp/raw.
//   - last_update_installed_at: the last install line of
//     /var/log/zypp/history (readable by root only); local time read as UTC.
//   - reboot_required: `zypper needs-rebooting` (exit 102: required, 0:
//     not), else /run/reboot-needed, else kernelReboot.
//   - automatic_updates: transactional-update.timer or os-update.timer
//     enabled, or YaST's online-update cron job.
func collectZypper(ctx context.Context, src check.Source) *wardv1.PatchFacts {
	f := &wardv1.PatchFacts{Manager: "zypper"}
	var problems check.Problems

	updates, uerr := runZypper(ctx, src, zypperUpdatesArgs)
	if uerr != nil {
		return finish(f, uerr, check.Problems{})
	}
	patches, perr := runZypper(ctx, src, zypperSecurityArgs)

	var npkg int
	for _, u := range updates.updates {
		if u.Kind != "package" {
			continue
		}
		npkg++
		appendPending(f, &wardv1.PendingUpdate{Name: u.Name, Version: u.Edition})
	}
	if len(updates.errors) == 0 || npkg > 0 {
		f.PendingUpdates = int32p(npkg)
	}
	if len(updates.errors) > 0 {
		problems.Add(fmt.Sprintf("%s: %s (pending updates may be incomplete)", commandLine("zypper", zypperUpdatesArgs), updates.errors[0]),
			texts.New("reason.patch_list_incomplete"), texts.New(check.IDDetail, "detail", updates.errors[0]))
	}

	if perr != nil {
		problems.Add("security patches unknown: "+perr.Error(), texts.New("reason.patch_security_unknown"), check.ErrText("", perr))
	} else {
		var nsec int
		for _, u := range patches.updates {
			if u.Kind != "patch" || u.Category != "security" || (u.Status != "" && u.Status != "needed") {
				continue
			}
			nsec++
			appendPending(f, &wardv1.PendingUpdate{Name: u.Name, Version: u.Edition, Security: true, RestartRequired: u.Restart == "true"})
		}
		switch {
		case len(patches.errors) > 0:
			problems.Add(fmt.Sprintf("%s: %s (security patches may be incomplete)", commandLine("zypper", zypperSecurityArgs), patches.errors[0]),
				texts.New("reason.patch_list_incomplete"), texts.New(check.IDDetail, "detail", patches.errors[0]))
			if nsec > 0 {
				f.PendingSecurityUpdates = int32p(nsec)
			}
		case patches.noRepos:
			problems.Add("no repository offers patches, so security updates cannot be told apart", texts.New("reason.patch_no_security_labels"))
		default:
			f.PendingSecurityUpdates = int32p(nsec)
		}
	}

	if at, err := newestMtime(ctx, src, zyppRawCache, func(n string) []string { return []string{n + "/repodata/repomd.xml"} }); err != nil {
		problems.Add("metadata refresh time unknown: "+err.Error(), texts.New("reason.patch_refresh_unknown"), check.ErrText("", err))
	} else {
		f.MetadataRefreshedAt = timestamppb.New(at)
	}

	if data, err := readCapped(ctx, src, zyppHistory, maxZyppHistory); err != nil {
		problems.Add("last update time unknown: "+err.Error(), texts.New("reason.patch_last_install_unknown"), check.ErrText("", err))
	} else if at, err := parseZyppHistory(data); err != nil {
		problems.Add(fmt.Sprintf("last update time unknown: %s: %v", zyppHistory, err), texts.New("reason.patch_last_install_unknown"), check.ErrText(zyppHistory, err))
	} else {
		f.LastUpdateInstalledAt = timestamppb.New(at)
	}

	rb := zypperReboot(ctx, src)
	f.RebootRequired = rb.required
	if rb.required == nil {
		problems.Add(rb.reason, rebootText(rb)...)
	}

	if auto, err := zypperAutomaticUpdates(ctx, src); err != nil {
		problems.Add("automatic updates unknown: "+err.Error(), texts.New("reason.patch_auto_unknown"), check.ErrText("", err))
	} else {
		f.AutomaticUpdates = &auto
	}
	return finish(f, nil, problems)
}

func runZypper(ctx context.Context, src check.Source, args []string) (zypperResult, error) {
	res, err := src.Command(ctx, "zypper", args...)
	switch {
	case err != nil:
		return zypperResult{}, runFailed("zypper", args, err)
	case res.ExitCode != 0 && res.ExitCode != zypperExitSkipped:
		return zypperResult{}, exitFailed("zypper", args, res)
	case res.Truncated:
		return zypperResult{}, cutOff("zypper", args)
	}
	r, err := parseZypperXML(res.Stdout)
	if err != nil {
		return zypperResult{}, parseFailed("zypper", args, err)
	}
	if res.ExitCode == zypperExitSkipped && len(r.errors) == 0 {
		r.errors = append(r.errors, "some repositories were skipped (exit 106)")
	}
	return r, nil
}

// zypperUpdate is one <update> of zypper's XML output.
type zypperUpdate struct {
	Kind     string `xml:"kind,attr"`
	Name     string `xml:"name,attr"`
	Edition  string `xml:"edition,attr"`
	Arch     string `xml:"arch,attr"`
	Status   string `xml:"status,attr"`
	Category string `xml:"category,attr"`
	Severity string `xml:"severity,attr"`
	Restart  string `xml:"restart,attr"`
}

type zypperStream struct {
	XMLName  xml.Name `xml:"stream"`
	Messages []struct {
		Type string `xml:"type,attr"`
		Text string `xml:",chardata"`
	} `xml:"message"`
	Status *struct {
		List *struct {
			Updates    []zypperUpdate `xml:"update"`
			AppletInfo *struct {
				Status string `xml:"status,attr"`
			} `xml:"appletinfo"`
		} `xml:"update-list"`
		Blocked *struct {
			Updates []zypperUpdate `xml:"update"`
		} `xml:"blocked-update-list"`
	} `xml:"update-status"`
}

// zypperResult is a parsed list-updates or list-patches.
type zypperResult struct {
	updates []zypperUpdate
	// errors are the <message type="error"> texts: repositories whose
	// data was not loaded.
	errors []string
	// noRepos is zypper's <appletinfo status="no-update-repositories"/>.
	noRepos bool
}

// parseZypperXML parses the --xmlout output of list-updates and
// list-patches. It requires <update-status> with an <update-list>: without
// them the output is not a listing, and is an error.
func parseZypperXML(data []byte) (zypperResult, error) {
	var s zypperStream
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return zypperResult{}, fmt.Errorf("not zypper XML: %w", err)
	}
	var r zypperResult
	for _, m := range s.Messages {
		if m.Type == "error" {
			r.errors = append(r.errors, check.Shorten(strings.Join(strings.Fields(m.Text), " "), 200))
		}
	}
	if s.Status == nil || s.Status.List == nil {
		if len(r.errors) > 0 {
			return zypperResult{}, fmt.Errorf("no update list: %s", r.errors[0])
		}
		return zypperResult{}, errors.New("no <update-status><update-list> in the output")
	}
	r.updates = s.Status.List.Updates
	if s.Status.Blocked != nil {
		r.updates = append(r.updates, s.Status.Blocked.Updates...)
	}
	if ai := s.Status.List.AppletInfo; ai != nil && ai.Status == "no-update-repositories" {
		r.noRepos = true
	}
	for _, u := range r.updates {
		if u.Name == "" || u.Kind == "" {
			return zypperResult{}, errors.New("an update without a name or kind")
		}
	}
	return r, nil
}

// parseZyppHistory returns the time of the last install line of
// /var/log/zypp/history ("2024-01-02 10:11:12|install|name|version|...").
// Only the time is kept.
func parseZyppHistory(data []byte) (time.Time, error) {
	var last time.Time
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.SplitN(line, "|", 3)
		if len(fields) < 3 || fields[1] != "install" {
			continue
		}
		at, err := time.Parse("2006-01-02 15:04:05", strings.TrimSpace(fields[0]))
		if err != nil {
			return time.Time{}, fmt.Errorf("bad date %q", check.Shorten(fields[0], 200))
		}
		last = at
	}
	if last.IsZero() {
		return time.Time{}, errors.New("no install line")
	}
	return last, nil
}

func zypperReboot(ctx context.Context, src check.Source) rebootState {
	res, err := src.Command(ctx, "zypper", zypperRebootArgs...)
	if err == nil {
		switch res.ExitCode {
		case zypperExitRebootInf:
			return rebootState{required: boolp(true)}
		case 0:
			return rebootState{required: boolp(false)}
		}
	}
	// Older zypper has no needs-rebooting; libzypp writes this file after
	// installing an update that needs a reboot.
	if _, err := src.Stat(ctx, suseRebootFile); err == nil {
		return rebootState{required: boolp(true)}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rebootState{reason: fmt.Sprintf("reboot required unknown: %v", err)}
	}
	return kernelReboot(ctx, src)
}

func zypperAutomaticUpdates(ctx context.Context, src check.Source) (bool, error) {
	names, err := src.ReadDir(ctx, timersWantsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	for _, n := range names {
		for _, t := range zypperAutoTimers {
			if n == t {
				return true, nil
			}
		}
	}
	for _, p := range zypperAutoCron {
		_, err := src.Stat(ctx, p)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}
