package build

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward/feed"
)

// Kind is what a source file is.
type Kind int

// The kinds of source file Build reads.
const (
	// SOFA is SOFA's macOS data feed (FromSOFA).
	SOFA Kind = iota + 1
	// CVRF is one of MSRC's monthly CVRF documents, JSON form (FromCVRF).
	CVRF
	// EndOfLife is one endoflife.date product (FromEndOfLife; Product
	// names it).
	EndOfLife
)

// Input is one source file.
type Input struct {
	Kind Kind
	// Product is the endoflife.date product of an EndOfLife input.
	Product string
	// Name is the source's name in the feed; empty gives "sofa-macos",
	// "msrc-cvrf-2024-nov" (the document's ID), "endoflife-ubuntu".
	Name string
	// Description says what the file is and when it was fetched (no
	// address); it is required.
	Description string
	Data        []byte
}

// DefaultValid is how long a built feed is valid by default.
const DefaultValid = 180 * 24 * time.Hour

// Options are a built feed's serial and dates.
type Options struct {
	// GeneratedAt is required.
	GeneratedAt time.Time
	// Serial zero gives GeneratedAt as YYYYMMDDHHMM (UTC).
	Serial uint64
	// Valid zero gives DefaultValid.
	Valid time.Duration
}

// DefaultSerial is t (UTC) as the number YYYYMMDDHHMM.
func DefaultSerial(t time.Time) uint64 {
	n, _ := strconv.ParseUint(t.UTC().Format("200601021504"), 10, 64)
	return n
}

// Build makes one feed from the inputs: the lines of every EndOfLife
// input (their ends of life), SOFA's releases on the macOS lines, each
// CVRF document's cumulative updates on the Windows lines of their
// version and build (every edition). A line whose end of life is not
// announced gets the feed's expiry day as its eol: supported for as long
// as the feed speaks. A macOS major SOFA lists with no end of life from
// an endoflife.date macos input is an error, and so is a result
// feed.Validate refuses.
func Build(inputs []Input, opts Options) (*feed.Feed, error) {
	if opts.GeneratedAt.IsZero() {
		return nil, errors.New("build: no generated_at")
	}
	if opts.Valid == 0 {
		opts.Valid = DefaultValid
	}
	if opts.Valid < 0 {
		return nil, fmt.Errorf("build: validity %s is negative", opts.Valid)
	}
	gen := opts.GeneratedAt.UTC().Truncate(time.Second)
	f := &feed.Feed{
		Format:      feed.Format,
		Serial:      cmp.Or(opts.Serial, DefaultSerial(gen)),
		GeneratedAt: gen,
		ExpiresAt:   gen.Add(opts.Valid),
		Sources:     []feed.Source{},
	}
	var (
		macos   []MacOSLine
		windows []WindowsRelease
	)
	for i, in := range inputs {
		if strings.TrimSpace(in.Description) == "" {
			return nil, fmt.Errorf("build: input %d has no description", i+1)
		}
		name := in.Name
		switch in.Kind {
		case SOFA:
			ls, err := FromSOFA(in.Data)
			if err != nil {
				return nil, err
			}
			macos = append(macos, ls...)
			name = cmp.Or(name, "sofa-macos")
		case CVRF:
			id, rs, err := FromCVRF(in.Data)
			if err != nil {
				return nil, err
			}
			windows = append(windows, rs...)
			name = cmp.Or(name, "msrc-cvrf-"+strings.ToLower(id))
		case EndOfLife:
			ls, err := FromEndOfLife(in.Product, in.Data)
			if err != nil {
				return nil, err
			}
			f.Lines = append(f.Lines, ls...)
			name = cmp.Or(name, "endoflife-"+in.Product)
		default:
			return nil, fmt.Errorf("build: input %d: unknown kind %d", i+1, in.Kind)
		}
		sum := sha256.Sum256(in.Data)
		f.Sources = append(f.Sources, feed.Source{Name: name, Description: strings.TrimSpace(in.Description), SHA256: hex.EncodeToString(sum[:])})
	}
	byID := map[string]*feed.Line{}
	for i := range f.Lines {
		l := &f.Lines[i]
		if _, dup := byID[l.ID]; dup {
			return nil, fmt.Errorf("build: line %s comes from two inputs", l.ID)
		}
		byID[l.ID] = l
	}
	for _, m := range macos {
		l := byID["macos-"+m.Major]
		if l == nil {
			return nil, fmt.Errorf("build: SOFA lists macOS %s (%s), but no endoflife.date macos input gives its end of life", m.Major, m.Name)
		}
		l.Releases = append(l.Releases, m.Releases...)
	}
	for _, w := range windows {
		for i := range f.Lines {
			l := &f.Lines[i]
			if l.Platform == feed.Windows && l.Version == w.Version && l.Build == w.Build {
				cves := w.CVEs
				l.Releases = append(l.Releases, feed.Release{Build: w.Build, UBR: w.UBR, Released: w.Released, Exploited: w.Exploited, CVEs: &cves})
			}
		}
	}
	for i := range f.Lines {
		l := &f.Lines[i]
		if l.Platform == feed.Windows {
			l.Releases = mergeWindows(l.Releases)
		} else {
			slices.SortStableFunc(l.Releases, func(a, b feed.Release) int { return compareVersions(a.Version, b.Version) })
		}
		l.Latest = ""
		if n := len(l.Releases); n > 0 {
			l.Latest = l.Releases[n-1].ID()
		}
	}
	if err := feed.Validate(f); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	return f, nil
}

// mergeWindows sorts a Windows line's releases by UBR and makes one of
// those two documents name (an update listed again a month later): the
// earliest day, exploited if either says so, the larger CVE count.
func mergeWindows(rs []feed.Release) []feed.Release {
	slices.SortStableFunc(rs, func(a, b feed.Release) int { return cmp.Compare(a.UBR, b.UBR) })
	var out []feed.Release
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].UBR == r.UBR {
			p := &out[n-1]
			if r.Released.Before(p.Released) {
				p.Released = r.Released
			}
			p.Exploited = p.Exploited || r.Exploited
			if r.CVEs != nil && (p.CVEs == nil || *r.CVEs > *p.CVEs) {
				p.CVEs = r.CVEs
			}
			continue
		}
		out = append(out, r)
	}
	if out == nil {
		out = []feed.Release{}
	}
	return out
}
