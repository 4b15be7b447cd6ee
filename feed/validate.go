package feed

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// maxProblems bounds how many problems Validate reports at once.
const maxProblems = 20

// Validate checks f against the rules of the format (docs/feed.md,
// "Rules"). Its error lists every problem it found (up to 20), each
// named by its path in the feed: "lines[3].releases[2].released: after
// generated_at". A nil error means f is a valid feed.
func Validate(f *Feed) error {
	v := &validator{}
	v.feed(f)
	return v.err()
}

type validator struct{ problems []error }

func (v *validator) addf(path, format string, args ...any) {
	v.problems = append(v.problems, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) err() error {
	switch n := len(v.problems); {
	case n == 0:
		return nil
	case n > maxProblems:
		more := fmt.Errorf("and %d more problems", n-maxProblems)
		return fmt.Errorf("invalid release feed: %w", errors.Join(append(v.problems[:maxProblems:maxProblems], more)...))
	}
	return fmt.Errorf("invalid release feed: %w", errors.Join(v.problems...))
}

var (
	hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	lineID    = regexp.MustCompile(`^[a-z0-9]+(?:[.-][a-z0-9]+)*$`)
)

func (v *validator) feed(f *Feed) {
	if f == nil {
		v.addf("feed", "missing")
		return
	}
	if f.Format != Format {
		v.addf("format", "%q, want %q", f.Format, Format)
	}
	if f.Serial == 0 {
		v.addf("serial", "missing (serials start at 1)")
	}
	switch {
	case f.GeneratedAt.IsZero():
		v.addf("generated_at", "missing")
	case f.ExpiresAt.IsZero():
		v.addf("expires_at", "missing")
	case !f.ExpiresAt.After(f.GeneratedAt):
		v.addf("expires_at", "%s is not after generated_at %s", f.ExpiresAt.Format(timeFormat), f.GeneratedAt.Format(timeFormat))
	}
	if len(f.Sources) == 0 {
		v.addf("sources", "none (a feed names the files it was built from)")
	}
	names := map[string]int{}
	for i, s := range f.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		if s.Name == "" {
			v.addf(p+".name", "missing")
		} else if j, dup := names[s.Name]; dup {
			v.addf(p+".name", "%q repeats sources[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
		if strings.TrimSpace(s.Description) == "" {
			v.addf(p+".description", "missing")
		}
		if !hexSHA256.MatchString(s.SHA256) {
			v.addf(p+".sha256", "%q is not a lower-case hex SHA-256", s.SHA256)
		}
	}
	if len(f.Lines) == 0 {
		v.addf("lines", "none")
	}
	ids := map[string]int{}
	for i := range f.Lines {
		p := fmt.Sprintf("lines[%d]", i)
		l := &f.Lines[i]
		if j, dup := ids[l.ID]; dup && l.ID != "" {
			v.addf(p+".id", "%q repeats lines[%d]", l.ID, j)
		} else {
			ids[l.ID] = i
		}
		v.line(p, l, f)
	}
}

// timeFormat is how messages write times.
const timeFormat = "2006-01-02T15:04:05Z07:00"

// osIDs are the os-release IDs each Linux platform's lines may name.
var osIDs = map[Platform][]string{
	Debian:   {"debian"},
	Ubuntu:   {"ubuntu"},
	Fedora:   {"fedora"},
	RHEL:     {"rhel", "rocky", "almalinux", "ol", "centos"},
	OpenSUSE: {"opensuse-leap"},
}

var editions = []string{EditionHomePro, EditionEnterprise, EditionLTSC, EditionIoTLTSC}

func (v *validator) line(p string, l *Line, f *Feed) {
	scheme, known := schemes[l.Platform]
	if !known {
		v.addf(p+".platform", "%q is not one of macos, windows, debian, ubuntu, fedora, rhel, opensuse", l.Platform)
	}
	// The ID starts with what names the line's devices.
	prefix := ""
	if known {
		prefix = string(l.Platform)
	}
	if ids, linux := osIDs[l.Platform]; linux {
		prefix = l.OSID
		if !slices.Contains(ids, l.OSID) {
			v.addf(p+".os_id", "%q is not an os-release ID of %s (%s)", l.OSID, l.Platform, strings.Join(ids, ", "))
			prefix = ""
		}
	} else if l.OSID != "" {
		v.addf(p+".os_id", "%q on %s (os_id is for Linux lines)", l.OSID, l.Platform)
	}
	switch {
	case l.ID == "":
		v.addf(p+".id", "missing")
	case !lineID.MatchString(l.ID):
		v.addf(p+".id", "%q is not lower-case letters, digits, dots and hyphens", l.ID)
	case prefix != "" && !strings.HasPrefix(l.ID, prefix+"-"):
		v.addf(p+".id", "%q does not start with %q", l.ID, prefix+"-")
	}
	if l.Platform == Windows {
		if !slices.Contains(editions, l.Edition) {
			v.addf(p+".edition", "%q is not a Windows edition (%s)", l.Edition, strings.Join(editions, ", "))
		}
		if l.Build == 0 {
			v.addf(p+".build", "missing (a Windows line has its build number)")
		}
	} else {
		if l.Edition != "" {
			v.addf(p+".edition", "%q on %s (editions are for Windows lines)", l.Edition, l.Platform)
		}
		if l.Build != 0 {
			v.addf(p+".build", "%d on %s (builds are for Windows lines)", l.Build, l.Platform)
		}
	}
	// A release is checked against its line only when the line's own
	// version (and, on Windows, build) is right.
	lineOK := known && scheme.line.MatchString(l.Version) && (l.Platform != Windows || l.Build != 0)
	if known && !scheme.line.MatchString(l.Version) {
		v.addf(p+".version", "%q is not a %s line version (%s)", l.Version, l.Platform, scheme.lineExample)
	}
	if !l.ESMEOL.IsZero() {
		if l.EOL.IsZero() {
			v.addf(p+".esm_eol", "without eol (ESM follows the end of standard support)")
		} else if l.Platform != Ubuntu {
			v.addf(p+".esm_eol", "on %s (ESM is Ubuntu's)", l.Platform)
		} else if !l.EOL.IsZero() && l.ESMEOL.Before(l.EOL) {
			v.addf(p+".esm_eol", "%s is before eol %s", l.ESMEOL, l.EOL)
		}
	}
	generated := DateOf(f.GeneratedAt)
	for j, r := range l.Releases {
		rp := fmt.Sprintf("%s.releases[%d]", p, j)
		if lineOK {
			v.release(rp, l, r, scheme)
		}
		switch {
		case r.Released.IsZero():
			v.addf(rp+".released", "missing")
		case !f.GeneratedAt.IsZero() && generated.Before(r.Released):
			v.addf(rp+".released", "%s is after generated_at %s", r.Released, f.GeneratedAt.Format(timeFormat))
		}
		if j == 0 {
			continue
		}
		prev := l.Releases[j-1]
		if !r.Released.IsZero() && r.Released.Before(prev.Released) {
			v.addf(rp+".released", "%s is before releases[%d]'s %s (releases are oldest first)", r.Released, j-1, prev.Released)
		}
		if lineOK && compareRelease(l.Platform, r, prev) <= 0 {
			v.addf(rp, "%s is not newer than releases[%d]'s %s", r.ID(), j-1, prev.ID())
		}
	}
	switch n := len(l.Releases); {
	case n == 0 && l.Latest != "":
		v.addf(p+".latest", "%q with no releases", l.Latest)
	case n > 0 && l.Latest != l.Releases[n-1].ID():
		v.addf(p+".latest", "%q, but the newest release is %s", l.Latest, l.Releases[n-1].ID())
	}
}

func (v *validator) release(p string, l *Line, r Release, s scheme) {
	if l.Platform == Windows {
		if r.Version != "" {
			v.addf(p+".version", "%q on windows (a Windows release has build and ubr)", r.Version)
		}
		if r.Build != l.Build {
			v.addf(p+".build", "%d, but the line's build is %d", r.Build, l.Build)
		}
		if r.UBR == 0 {
			v.addf(p+".ubr", "missing")
		}
		return
	}
	if r.Build != 0 || r.UBR != 0 {
		v.addf(p+".build", "build and ubr are for Windows releases")
	}
	switch {
	case !s.release.MatchString(r.Version):
		v.addf(p+".version", "%q is not a %s release version (%s)", r.Version, l.Platform, s.releaseExample)
	case r.Version != l.Version && !strings.HasPrefix(r.Version, l.Version+"."):
		v.addf(p+".version", "%q is not a release of line version %q", r.Version, l.Version)
	}
}

// A scheme is how a platform writes its line and release versions.
type scheme struct {
	line, release               *regexp.Regexp
	lineExample, releaseExample string
}

var schemes = map[Platform]scheme{
	MacOS:    {regexp.MustCompile(`^[1-9][0-9]*$`), regexp.MustCompile(`^[1-9][0-9]*(\.[0-9]+){1,2}( \([a-z]\))?$`), "a major: 15", "15.1.1 or 13.4.1 (a)"},
	Windows:  {regexp.MustCompile(`^(10|11) ([0-9]{2}H[12]|[0-9]{4})$`), nil, "product and release: 11 24H2, 10 1809", ""},
	Debian:   {regexp.MustCompile(`^[1-9][0-9]*$`), regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+$`), "12", "12.8"},
	Ubuntu:   {regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}$`), regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}(\.[0-9]+)?$`), "22.04", "22.04.5"},
	Fedora:   {regexp.MustCompile(`^[1-9][0-9]*$`), regexp.MustCompile(`^[1-9][0-9]*(\.[0-9]+)*$`), "41", "41"},
	RHEL:     {regexp.MustCompile(`^[1-9][0-9]*$`), regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+$`), "9", "9.5"},
	OpenSUSE: {regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+$`), regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+(\.[0-9]+)?$`), "15.6", "15.6"},
}

// compareRelease orders two releases of one line: by UBR on Windows, by
// version elsewhere (numeric parts, then a macOS RSR letter: 13.4.1 <
// 13.4.1 (a) < 13.4.1 (c) < 13.5). A version that does not parse counts
// as newer, so it is reported once, as not parsing.
func compareRelease(p Platform, a, b Release) int {
	if p == Windows {
		return cmp.Compare(a.UBR, b.UBR)
	}
	an, as, aok := splitVersion(a.Version)
	bn, bs, bok := splitVersion(b.Version)
	if !aok || !bok {
		return 1
	}
	for i := 0; i < max(len(an), len(bn)); i++ {
		var x, y int64
		if i < len(an) {
			x = an[i]
		}
		if i < len(bn) {
			y = bn[i]
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return strings.Compare(as, bs)
}

// splitVersion is "13.4.1 (a)" as [13 4 1] and "a".
func splitVersion(s string) (nums []int64, suffix string, ok bool) {
	s, suffix, _ = strings.Cut(s, " ")
	suffix = strings.Trim(suffix, "()")
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return nil, "", false
		}
		nums = append(nums, n)
	}
	return nums, suffix, true
}
