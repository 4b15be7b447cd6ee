package build

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/wardhq/ward/feed"
)

// eolProducts are the endoflife.date products a feed is built from: the
// platform and, on Linux, the os-release ID of the product's devices.
var eolProducts = map[string]struct {
	platform feed.Platform
	osID     string
}{
	"macos":        {feed.MacOS, ""},
	"windows":      {feed.Windows, ""},
	"debian":       {feed.Debian, "debian"},
	"ubuntu":       {feed.Ubuntu, "ubuntu"},
	"fedora":       {feed.Fedora, "fedora"},
	"rhel":         {feed.RHEL, "rhel"},
	"rocky-linux":  {feed.RHEL, "rocky"},
	"almalinux":    {feed.RHEL, "almalinux"},
	"oracle-linux": {feed.RHEL, "ol"},
	"centos":       {feed.RHEL, "centos"},
	"opensuse":     {feed.OpenSUSE, "opensuse-leap"},
}

// EOLProducts lists the endoflife.date product names FromEndOfLife reads.
func EOLProducts() []string {
	var names []string
	for n := range eolProducts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// eolCycle is one release cycle in either of endoflife.date's two forms:
// its API's JSON (cycle, support, extendedSupport) or its product file's
// front matter (releaseCycle, eoas, eoes), from which the API is made.
type eolCycle struct {
	Cycle             string          `json:"cycle"`
	ReleaseCycle      string          `json:"releaseCycle"`
	ReleaseDate       json.RawMessage `json:"releaseDate"`
	EOL               json.RawMessage `json:"eol"`
	Support           json.RawMessage `json:"support"`
	EOAS              json.RawMessage `json:"eoas"`
	ExtendedSupport   json.RawMessage `json:"extendedSupport"`
	EOES              json.RawMessage `json:"eoes"`
	Latest            json.RawMessage `json:"latest"`
	LatestReleaseDate json.RawMessage `json:"latestReleaseDate"`
	LTS               json.RawMessage `json:"lts"`
}

func (c eolCycle) name() string {
	if c.Cycle != "" {
		return c.Cycle
	}
	return c.ReleaseCycle
}

// extended is the end of extended support (Ubuntu's ESM).
func (c eolCycle) extended() json.RawMessage {
	if len(c.ExtendedSupport) > 0 {
		return c.ExtendedSupport
	}
	return c.EOES
}

// eolDate reads an endoflife.date date field: a date (the day), true or
// false (no date: ok is false), or absent (no date).
func eolDate(raw json.RawMessage) (d feed.Date, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return feed.Date{}, false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return feed.Date{}, false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return feed.Date{}, false, fmt.Errorf("%s is neither a date nor true/false", raw)
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return feed.DateOf(t), true, nil
	}
	d, err = feed.ParseDate(s)
	if err != nil {
		return feed.Date{}, false, err
	}
	return d, true, nil
}

// eolString reads a string field that YAML may have made a number.
func eolString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// readCycles reads endoflife.date's API JSON (a list of cycles) or a
// product file from its repository (Markdown with YAML front matter whose
// "releases" are the cycles).
func readCycles(data []byte) ([]eolCycle, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	var cycles []eolCycle
	switch {
	case bytes.HasPrefix(trimmed, []byte("[")):
		if err := json.Unmarshal(trimmed, &cycles); err != nil {
			return nil, fmt.Errorf("not endoflife.date API JSON: %w", err)
		}
	case bytes.HasPrefix(trimmed, []byte("---")):
		rest := trimmed[3:]
		end := bytes.Index(rest, []byte("\n---"))
		if end < 0 {
			return nil, errors.New("a product file's front matter does not end (no closing ---)")
		}
		var front struct {
			Releases []map[string]any `yaml:"releases"`
		}
		if err := yaml.Unmarshal(rest[:end], &front); err != nil {
			return nil, fmt.Errorf("product file front matter: %w", err)
		}
		b, err := json.Marshal(front.Releases)
		if err != nil {
			return nil, fmt.Errorf("product file front matter: %w", err)
		}
		if err := json.Unmarshal(b, &cycles); err != nil {
			return nil, fmt.Errorf("product file front matter: %w", err)
		}
	default:
		return nil, errors.New("neither endoflife.date API JSON (a list) nor a product file (front matter)")
	}
	if len(cycles) == 0 {
		return nil, errors.New("no release cycles")
	}
	for i, c := range cycles {
		if c.name() == "" {
			return nil, fmt.Errorf("cycle %d has no name", i)
		}
	}
	return cycles, nil
}

// FromEndOfLife reads one endoflife.date product (product is its name:
// "ubuntu", "windows", "rocky-linux", EOLProducts) and returns its lines
// with their ends of life and no releases. The eol is the cycle's eol;
// for Ubuntu esm_eol is its extendedSupport (eoes). A cycle whose eol is
// not announced (false) gets a zero EOL: the line has no announced end
// of life (docs/feed.md). Windows cycles are per edition: "11-24h2-w" is
// home-pro, "-e" enterprise, "-e-lts" ltsc, "-iot-lts" iot-ltsc, and a
// cycle without a suffix ("10-22h2") covers home-pro and enterprise; the
// build is the third part of latest ("10.0.26100"). Cycles that are not
// lines of a feed (Windows 8.1, macOS 10.15, Windows 10 IoT Core) are
// left out; a file with none left is an error.
func FromEndOfLife(product string, data []byte) ([]feed.Line, error) {
	p, ok := eolProducts[product]
	if !ok {
		return nil, fmt.Errorf("endoflife.date product %q: not one of %s", product, strings.Join(EOLProducts(), ", "))
	}
	cycles, err := readCycles(data)
	if err != nil {
		return nil, fmt.Errorf("endoflife.date %s: %w", product, err)
	}
	var lines []feed.Line
	for _, c := range cycles {
		var ls []feed.Line
		var err error
		if p.platform == feed.Windows {
			ls, err = windowsLines(c)
		} else {
			ls, err = otherLine(p.platform, p.osID, c)
		}
		if err != nil {
			return nil, fmt.Errorf("endoflife.date %s: cycle %q: %w", product, c.name(), err)
		}
		lines = append(lines, ls...)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("endoflife.date %s: no cycle is a line of a release feed (is this the %s product?)", product, product)
	}
	return lines, nil
}

var lineVersion = map[feed.Platform]*regexp.Regexp{
	feed.MacOS:    regexp.MustCompile(`^[1-9][0-9]*$`),
	feed.Debian:   regexp.MustCompile(`^[1-9][0-9]*$`),
	feed.Ubuntu:   regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}$`),
	feed.Fedora:   regexp.MustCompile(`^[1-9][0-9]*$`),
	feed.RHEL:     regexp.MustCompile(`^[1-9][0-9]*$`),
	feed.OpenSUSE: regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+$`),
}

// rhelRelease is a RHEL-family point release, "9.8".
var rhelRelease = regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+$`)

func otherLine(p feed.Platform, osID string, c eolCycle) ([]feed.Line, error) {
	v := c.name()
	if !lineVersion[p].MatchString(v) {
		return nil, nil
	}
	eol, _, err := eolDate(c.EOL)
	if err != nil {
		return nil, fmt.Errorf("eol: %w", err)
	}
	prefix := string(p)
	if osID != "" {
		prefix = osID
	}
	l := feed.Line{Platform: p, ID: prefix + "-" + v, OSID: osID, Version: v, EOL: eol, Releases: []feed.Release{}}
	if p == feed.Ubuntu {
		esm, ok, err := eolDate(c.extended())
		if err != nil {
			return nil, fmt.Errorf("extended support: %w", err)
		}
		if ok {
			l.ESMEOL = esm
		}
	}
	// A RHEL-family line's newest point release is its patch level's
	// mark (docs/feed.md); the file names only the newest.
	if p == feed.RHEL {
		latest := eolString(c.Latest)
		day, ok, err := eolDate(c.LatestReleaseDate)
		if err != nil {
			return nil, fmt.Errorf("latestReleaseDate: %w", err)
		}
		if ok && rhelRelease.MatchString(latest) && strings.HasPrefix(latest, v+".") {
			l.Releases = append(l.Releases, feed.Release{Version: latest, Released: day})
			l.Latest = latest
		}
	}
	return []feed.Line{l}, nil
}

// windowsCycle is "11-24h2-e-lts": product, feature release, edition.
var windowsCycle = regexp.MustCompile(`^(10|11)-([0-9]{2}h[12]|[0-9]{4})(-(w|e|e-lts|iot-lts|iot))?$`)

var windowsEditions = map[string][]string{
	"":        {feed.EditionHomePro, feed.EditionEnterprise},
	"w":       {feed.EditionHomePro},
	"e":       {feed.EditionEnterprise},
	"e-lts":   {feed.EditionLTSC},
	"iot-lts": {feed.EditionIoTLTSC},
}

func windowsLines(c eolCycle) ([]feed.Line, error) {
	m := windowsCycle.FindStringSubmatch(c.name())
	if m == nil {
		return nil, nil
	}
	eds, ok := windowsEditions[m[4]]
	if !ok {
		return nil, nil // "-iot": Windows 10 IoT Core, not a desktop edition
	}
	eol, _, err := eolDate(c.EOL)
	if err != nil {
		return nil, fmt.Errorf("eol: %w", err)
	}
	latest := eolString(c.Latest)
	parts := strings.Split(latest, ".")
	var build uint32
	if len(parts) >= 3 {
		_, err = fmt.Sscanf(parts[2], "%d", &build)
	}
	if len(parts) < 3 || err != nil || build == 0 || parts[0] != "10" {
		return nil, fmt.Errorf("latest %q is not a Windows build 10.0.N", latest)
	}
	version := m[1] + " " + strings.ToUpper(m[2])
	var lines []feed.Line
	for _, ed := range eds {
		lines = append(lines, feed.Line{
			Platform: feed.Windows,
			ID:       "windows-" + m[1] + "-" + m[2] + "-" + ed,
			Version:  version,
			Build:    build,
			Edition:  ed,
			EOL:      eol,
			Releases: []feed.Release{},
		})
	}
	return lines, nil
}
