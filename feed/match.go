package feed

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Device is what a device reports of its operating system, as a feed
// matches it to a line: the OS facts of package proto (wardv1.OSFacts).
type Device struct {
	// Platform is the Go GOOS value: "windows", "darwin" or "linux".
	Platform string
	// OSID is the os-release ID on Linux ("debian", "rocky",
	// "opensuse-leap").
	OSID string
	// Version: macOS "15.1.1", Windows "10.0.26100", Linux VERSION_ID
	// ("12", "22.04", "9.5", "15.6").
	Version string
	// Build: Windows "26100.2605" (build.UBR), macOS "24B91".
	Build string
	// Edition is Windows' EditionID ("Professional", "EnterpriseS").
	Edition string
}

// ErrNoLine: the feed has no line for the device, and the device is not
// newer than every line it has for its platform (it is not "ahead").
var ErrNoLine = errors.New("the release feed has no line for this system")

// Match is the line a device runs, or that it is ahead of the feed.
type Match struct {
	// Line is the device's line; nil when Ahead.
	Line *Line
	// Ahead says the device runs a line newer than every line the feed
	// has for its platform (and, on Windows, edition): a release the feed
	// was built before.
	Ahead bool
}

// WindowsEdition maps a Windows EditionID (the registry's value under
// HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion) to the feed edition
// whose lifecycle it follows; ok is false for an ID the feed has no
// lifecycle for (Server editions, unknown IDs).
func WindowsEdition(editionID string) (edition string, ok bool) {
	id := strings.ToLower(strings.TrimSpace(editionID))
	switch id {
	case "core", "coren", "coresinglelanguage", "corecountryspecific",
		"professional", "professionaln", "professionaleducation", "professionaleducationn",
		"professionalworkstation", "professionalworkstationn", "professionalsinglelanguage",
		"professionalcountryspecific", "cloudedition", "cloudeditionn", "se", "sen":
		return EditionHomePro, true
	case "enterprise", "enterprisen", "education", "educationn", "enterpriseg", "enterprisegn",
		"iotenterprise", "iotenterprisek":
		return EditionEnterprise, true
	case "enterprises", "enterprisesn":
		return EditionLTSC, true
	case "iotenterprises", "iotenterprisesk":
		return EditionIoTLTSC, true
	}
	return "", false
}

// linuxPlatform maps an os-release ID to its feed platform.
var linuxPlatform = map[string]Platform{
	"debian": Debian, "ubuntu": Ubuntu, "fedora": Fedora,
	"rhel": RHEL, "rocky": RHEL, "almalinux": RHEL, "ol": RHEL, "centos": RHEL,
	"opensuse-leap": OpenSUSE,
}

// LineOf finds the line d runs. A device whose version is newer than
// every line of its platform (and edition) is Ahead; one the feed does not
// know otherwise — an older or unlisted version, an unknown edition or
// distribution, a version that does not parse — is an error wrapping
// ErrNoLine (or saying what is missing), never a match.
func (f *Feed) LineOf(d Device) (Match, error) {
	switch d.Platform {
	case "darwin":
		major, _, _ := strings.Cut(strings.TrimSpace(d.Version), ".")
		n, err := strconv.ParseUint(major, 10, 32)
		if err != nil {
			return Match{}, fmt.Errorf("macOS version %q is not a version", d.Version)
		}
		return f.match(MacOS, func(l *Line) (int, bool) {
			m, err := strconv.ParseUint(l.Version, 10, 32)
			if err != nil {
				return 0, false
			}
			return cmpUint(n, m), true
		}, "macOS "+major)
	case "windows":
		build, err := windowsBuild(d)
		if err != nil {
			return Match{}, err
		}
		ed, ok := WindowsEdition(d.Edition)
		if !ok {
			if d.Edition == "" {
				return Match{}, errors.New("the Windows edition is not known")
			}
			return Match{}, fmt.Errorf("%w: the Windows edition %q has no lifecycle in the feed", ErrNoLine, d.Edition)
		}
		return f.match(Windows, func(l *Line) (int, bool) {
			if l.Edition != ed {
				return 0, false
			}
			return cmpUint(uint64(build), uint64(l.Build)), true
		}, fmt.Sprintf("Windows build %d (%s)", build, ed))
	case "linux":
		p, ok := linuxPlatform[d.OSID]
		if !ok {
			if d.OSID == "" {
				return Match{}, errors.New("the Linux distribution is not known")
			}
			return Match{}, fmt.Errorf("%w: the feed has no lines for the distribution %q", ErrNoLine, d.OSID)
		}
		v := strings.TrimSpace(d.Version)
		if p == RHEL {
			// RHEL and its derivatives: a line is a major release; the
			// minor release is a release of it.
			v, _, _ = strings.Cut(v, ".")
		}
		dv, err := versionParts(v)
		if err != nil {
			return Match{}, fmt.Errorf("%s version %q is not a version", d.OSID, d.Version)
		}
		return f.match(p, func(l *Line) (int, bool) {
			if l.OSID != d.OSID {
				return 0, false
			}
			lv, err := versionParts(l.Version)
			if err != nil {
				return 0, false
			}
			return cmpParts(dv, lv), true
		}, d.OSID+" "+v)
	}
	return Match{}, fmt.Errorf("%w: platform %q", ErrNoLine, d.Platform)
}

// match finds the line of p that cmp (the device against a line) says is
// equal; with none, the device is ahead when it is newer than every
// comparable line of p (there must be one).
func (f *Feed) match(p Platform, cmp func(*Line) (int, bool), what string) (Match, error) {
	comparable, newer := 0, 0
	for i := range f.Lines {
		l := &f.Lines[i]
		if l.Platform != p {
			continue
		}
		c, ok := cmp(l)
		if !ok {
			continue
		}
		comparable++
		switch {
		case c == 0:
			return Match{Line: l}, nil
		case c > 0:
			newer++
		}
	}
	if comparable > 0 && newer == comparable {
		return Match{Ahead: true}, nil
	}
	return Match{}, fmt.Errorf("%w: %s", ErrNoLine, what)
}

// windowsBuild is a Windows device's build number, from Build
// ("26100.2605") or else Version ("10.0.26100").
func windowsBuild(d Device) (uint32, error) {
	s, _, _ := strings.Cut(strings.TrimSpace(d.Build), ".")
	if s == "" {
		parts := strings.Split(strings.TrimSpace(d.Version), ".")
		s = parts[len(parts)-1]
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("the Windows build is not known (build %q, version %q)", d.Build, d.Version)
	}
	return uint32(n), nil
}

// versionParts parses a dotted numeric version ("22.04", "15.6").
func versionParts(s string) ([]uint64, error) {
	if s == "" {
		return nil, errors.New("empty version")
	}
	var out []uint64
	for p := range strings.SplitSeq(s, ".") {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// cmpParts compares dotted versions part by part; a missing part is 0.
func cmpParts(a, b []uint64) int {
	for i := range max(len(a), len(b)) {
		var x, y uint64
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := cmpUint(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
