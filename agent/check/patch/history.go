package patch

import (
	"fmt"
	"strings"
	"time"

	"github.com/wardhq/ward/agent/check"
)

// Trims says how a support bundle keeps, of each package history the
// patch collectors read, only what they use: the date of the newest
// install or upgrade. Package names, versions, command lines and apt's
// Requested-By (a user name) are left out; each kept line has "-" where
// they were. A history the collector cannot use (too large, no such entry,
// a bad date) is recorded as the error the collector gives, not as its
// contents.
func Trims() []check.Trim {
	return []check.Trim{
		{File: aptHistoryPath, Keep: keepLog(aptHistoryPath, parseHistoryLog, reduceHistoryLog)},
		{File: dpkgLogPath, Keep: keepLog(dpkgLogPath, parseDpkgLog, reduceDpkgLog)},
		{File: zyppHistory, Keep: keepLog(zyppHistory, parseZyppHistory, reduceZyppHistory)},
		{File: pacmanLog, Keep: keepLog(pacmanLog, parsePacmanLog, reducePacmanLog)},
		{File: installHistoryPath, Keep: keepLog(installHistoryPath, parseInstallHistory, reduceInstallHistory)},
		{Tool: "rpm", Args: rpmLastArgs, Keep: keepRpmLast},
	}
}

// keepLog is the Keep of a log the collector reads with readCapped (or
// the same checks) and parses with parse.
func keepLog(p string, parse func([]byte) (time.Time, error), reduce func([]byte) []byte) func([]byte, int64) ([]byte, error) {
	return func(data []byte, limit int64) ([]byte, error) {
		if limit >= 0 && int64(len(data)) >= limit {
			return nil, tooLarge(p, limit)
		}
		if _, err := parse(data); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		kept, ok := keepSame(parse, reduce, data)
		if !ok {
			return nil, notReduced(p)
		}
		return kept, nil
	}
}

// keepRpmLast keeps the first line of `rpm -qa --last`, the only one
// parseRpmLast reads, with the package name left out when the line parses.
func keepRpmLast(out []byte, _ int64) ([]byte, error) {
	kept, ok := keepSame(parseRpmLast, reduceRpmLast, out)
	if !ok {
		return nil, notReduced(commandLine("rpm", rpmLastArgs))
	}
	return kept, nil
}

func notReduced(what string) error {
	return fmt.Errorf("%s: %w: it could not be reduced to the part the checks read", what, check.ErrNotRecorded)
}

// keepSame returns reduce(data) when parse gives the same answer (time and
// error) for it as for data.
func keepSame(parse func([]byte) (time.Time, error), reduce func([]byte) []byte, data []byte) ([]byte, bool) {
	want, werr := parse(data)
	kept := reduce(data)
	got, gerr := parse(kept)
	if errText(werr) != errText(gerr) || !got.Equal(want) {
		return nil, false
	}
	return kept, true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// reduceHistoryLog keeps the entry parseHistoryLog dates: its Start-Date
// and End-Date lines and one Upgrade or Install line without the packages.
func reduceHistoryLog(data []byte) []byte {
	var kept, start, end, key string
	flush := func() {
		if key != "" {
			var b strings.Builder
			if start != "" {
				b.WriteString(start + "\n")
			}
			b.WriteString(key + ": -\n")
			if end != "" {
				b.WriteString(end + "\n")
			}
			kept = b.String()
		}
		start, end, key = "", "", ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		k, _, _ := strings.Cut(line, ": ")
		switch {
		case line == "":
			flush()
		case k == "Start-Date":
			flush()
			start = line
		case k == "End-Date":
			end = line
		case k == "Upgrade" || k == "Install":
			if key == "" {
				key = k
			}
		}
	}
	flush()
	return []byte(kept)
}

// reduceDpkgLog keeps the date and action of the last upgrade or install
// line of dpkg.log.
func reduceDpkgLog(data []byte) []byte {
	var kept string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && (f[2] == "upgrade" || f[2] == "install") {
			kept = f[0] + " " + f[1] + " " + f[2] + " - - -\n"
		}
	}
	return []byte(kept)
}

// reduceZyppHistory keeps the date of the last install line.
func reduceZyppHistory(data []byte) []byte {
	var kept string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "|", 3)
		if len(f) == 3 && f[1] == "install" {
			kept = f[0] + "|install|-\n"
		}
	}
	return []byte(kept)
}

// reducePacmanLog keeps the time and action of the last upgraded or
// installed line.
func reducePacmanLog(data []byte) []byte {
	var kept string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "[") {
			continue
		}
		stamp, rest, ok := strings.Cut(line[1:], "] ")
		if !ok {
			continue
		}
		for _, action := range []string{"[ALPM] upgraded ", "[ALPM] installed "} {
			if strings.HasPrefix(rest, action) {
				kept = "[" + stamp + "] " + action + "-\n"
			}
		}
	}
	return []byte(kept)
}

// reduceRpmLast keeps the first line, its package name replaced by "-"
// when it has the fields parseRpmLast needs.
func reduceRpmLast(out []byte) []byte {
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(line)
	if len(f) < 5 {
		return []byte(line + "\n")
	}
	return []byte("- " + strings.Join(f[1:], " ") + "\n")
}

// reduceInstallHistory keeps, of InstallHistory.plist, one entry: the
// newest date of a softwareupdated install that is not config-data, with
// no name, version or package identifier.
func reduceInstallHistory(data []byte) []byte {
	at, err := parseInstallHistory(data)
	if err != nil {
		return nil
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<array>
	<dict>
		<key>date</key>
		<date>` + at.UTC().Format(time.RFC3339) + `</date>
		<key>processName</key>
		<string>softwareupdated</string>
	</dict>
</array>
</plist>
`)
}
