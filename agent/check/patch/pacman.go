package patch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Reads collectPacman makes.
var checkupdatesArgs = []string{"--nocolor"}

const (
	pacmanSyncDir     = "/var/lib/pacman/sync"
	pacmanLog         = "/var/log/pacman.log"
	maxPacmanLog      = 32 << 20
	checkupdatesNone  = 2
	pacmanNoSecReason = "Arch Linux classifies no update as security to pacman, so pending security updates are unknown"
)

// collectPacman reads the patch level of an Arch-family system.
//
//   - pending: `checkupdates --nocolor` (pacman-contrib; exit 0: updates
//     listed, 2: none, else failure). It syncs a temporary copy of the
//     package databases, so it needs the network: pacman's own sync
//     databases are refreshed only when the system is upgraded, and
//     reading them offline would report nothing pending on any machine
//     that was never upgraded since.
//   - pending_security_updates stays unset: pacman has no security
//     classification. The collection is PARTIAL for that reason.
//   - metadata_refreshed_at: the newest /var/lib/pacman/sync/*.db.
//   - last_update_installed_at: the last "upgraded" or "installed" line
//     of /var/log/pacman.log.
//   - reboot_required: see modulesReboot.
//   - automatic_updates stays unset: Arch has no standard mechanism.
func collectPacman(ctx context.Context, src check.Source) *wardv1.PatchFacts {
	f := &wardv1.PatchFacts{Manager: "pacman"}
	var problems check.Problems
	problems.Add(pacmanNoSecReason, texts.New("reason.patch_no_security_labels"))

	res, err := src.Command(ctx, "checkupdates", checkupdatesArgs...)
	switch {
	case err != nil:
		return finish(f, runFailed("checkupdates", checkupdatesArgs, err), check.Problems{})
	case res.ExitCode != 0 && res.ExitCode != checkupdatesNone:
		return finish(f, exitFailed("checkupdates", checkupdatesArgs, res), check.Problems{})
	case res.Truncated:
		return finish(f, cutOff("checkupdates", checkupdatesArgs), check.Problems{})
	}
	ups, err := parseCheckupdates(res.Stdout)
	if err == nil && (len(ups) > 0) != (res.ExitCode == 0) {
		err = fmt.Errorf("exit status %d with %d updates listed", res.ExitCode, len(ups))
	}
	if err != nil {
		return finish(f, parseFailed("checkupdates", checkupdatesArgs, err), check.Problems{})
	}
	for _, u := range ups {
		appendPending(f, &wardv1.PendingUpdate{Name: u[0], Version: u[1]})
	}
	f.PendingUpdates = int32p(len(ups))

	if at, err := newestMtime(ctx, src, pacmanSyncDir, func(n string) []string {
		if strings.HasSuffix(n, ".db") {
			return []string{n}
		}
		return nil
	}); err != nil {
		problems.Add("metadata refresh time unknown: "+err.Error(), texts.New("reason.patch_refresh_unknown"), check.ErrText("", err))
	} else {
		f.MetadataRefreshedAt = timestamppb.New(at)
	}

	if data, err := readCapped(ctx, src, pacmanLog, maxPacmanLog); err != nil {
		problems.Add("last update time unknown: "+err.Error(), texts.New("reason.patch_last_install_unknown"), check.ErrText("", err))
	} else if at, err := parsePacmanLog(data); err != nil {
		problems.Add(fmt.Sprintf("last update time unknown: %s: %v", pacmanLog, err), texts.New("reason.patch_last_install_unknown"), check.ErrText(pacmanLog, err))
	} else {
		f.LastUpdateInstalledAt = timestamppb.New(at)
	}

	rb := modulesReboot(ctx, src)
	f.RebootRequired = rb.required
	if rb.required == nil {
		problems.Add(rb.reason, rebootText(rb)...)
	}
	return finish(f, nil, problems)
}

// parseCheckupdates parses "name old -> new" lines into (name, new)
// pairs; any other line is an error.
func parseCheckupdates(out []byte) ([][2]string, error) {
	var ups [][2]string
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 4 || fields[2] != "->" {
			return nil, fmt.Errorf("unrecognised line %q", check.Shorten(strings.TrimSpace(line), 200))
		}
		ups = append(ups, [2]string{fields[0], fields[3]})
	}
	return ups, nil
}

// parsePacmanLog returns the time of the last "[ALPM] upgraded" or
// "[ALPM] installed" line ("[2024-01-02T10:11:12+0100] [ALPM] upgraded
// linux (6.6.8-1 -> 6.6.9-1)"; before pacman 5.2 "[2019-01-02 10:11]").
func parsePacmanLog(data []byte) (time.Time, error) {
	var last time.Time
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "[") {
			continue
		}
		stamp, rest, ok := strings.Cut(line[1:], "] ")
		if !ok || !(strings.HasPrefix(rest, "[ALPM] upgraded ") || strings.HasPrefix(rest, "[ALPM] installed ")) {
			continue
		}
		var at time.Time
		var err error
		for _, layout := range []string{"2006-01-02T15:04:05-0700", "2006-01-02 15:04"} {
			if at, err = time.Parse(layout, stamp); err == nil {
				break
			}
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("bad date %q", check.Shorten(stamp, 200))
		}
		last = at
	}
	if last.IsZero() {
		return time.Time{}, errors.New("no upgraded or installed line")
	}
	return last.UTC(), nil
}
