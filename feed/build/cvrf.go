package build

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward/feed"
)

// WindowsRelease is one Windows feature release's cumulative update in a
// CVRF document: the highest FixedBuild its remediations name.
type WindowsRelease struct {
	// Version is the line version, "11 24H2".
	Version string
	// Build and UBR are of the FixedBuild "10.0.26100.2605".
	Build, UBR uint32
	// Released is the document's initial release day.
	Released feed.Date
	// Exploited says one of the vulnerabilities it fixes is marked
	// "Exploited:Yes" in the document's Exploit Status.
	Exploited bool
	// CVEs counts the vulnerabilities it fixes.
	CVEs uint32
}

// cvrfDoc is the part of an MSRC CVRF document (JSON form) a feed reads.
type cvrfDoc struct {
	DocumentTracking struct {
		Identification struct {
			ID struct {
				Value string `json:"Value"`
			} `json:"ID"`
		} `json:"Identification"`
		InitialReleaseDate string `json:"InitialReleaseDate"`
	} `json:"DocumentTracking"`
	ProductTree struct {
		FullProductName []cvrfProduct `json:"FullProductName"`
		Branch          []cvrfBranch  `json:"Branch"`
	} `json:"ProductTree"`
	Vulnerability []struct {
		CVE     string `json:"CVE"`
		Threats []struct {
			Type        int `json:"Type"`
			Description struct {
				Value string `json:"Value"`
			} `json:"Description"`
			ProductID []string `json:"ProductID"`
		} `json:"Threats"`
		Remediations []struct {
			Type       int      `json:"Type"`
			FixedBuild string   `json:"FixedBuild"`
			ProductID  []string `json:"ProductID"`
		} `json:"Remediations"`
	} `json:"Vulnerability"`
}

type cvrfProduct struct {
	ProductID string `json:"ProductID"`
	Value     string `json:"Value"`
}

type cvrfBranch struct {
	Items  []cvrfBranch `json:"Items"`
	Branch []cvrfBranch `json:"Branch"`
	cvrfProduct
}

// cvrfClient is a Windows 10/11 client product name: "Windows 11 Version
// 24H2 for x64-based Systems", "Windows 10 Version 1809 for 32-bit
// Systems". Server products and other names do not match.
var cvrfClient = regexp.MustCompile(`^Windows (10|11) Version ([0-9]{2}H[12]|[0-9]{4}) for (x64|ARM64|32-bit)-based Systems$`)

// fixedBuild is "10.0.26100.2605".
var fixedBuild = regexp.MustCompile(`^10\.0\.([0-9]+)\.([0-9]+)$`)

// CVRFThreatExploitStatus is the Threat type of MSRC's "Exploit Status"
// ("Publicly Disclosed:No;Exploited:Yes;Latest Software Release:...").
const CVRFThreatExploitStatus = 1

// CVRFRemediationVendorFix is the Remediation type of a vendor fix.
const CVRFRemediationVendorFix = 2

// FromCVRF reads one of MSRC's monthly CVRF documents (its JSON form) and
// returns, for each Windows 10/11 client feature release it names, the
// month's cumulative update: the highest FixedBuild of its vendor fixes,
// released on the document's InitialReleaseDate, exploited when one of
// the vulnerabilities fixed for it says "Exploited:Yes", with the number
// of those vulnerabilities. Releases are sorted by version. A document
// with no Windows client product fixed, or an unreadable date, is an
// error; ID is the document's ("2024-Nov").
func FromCVRF(data []byte) (id string, releases []WindowsRelease, err error) {
	var doc cvrfDoc
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return "", nil, fmt.Errorf("MSRC CVRF document: %w", err)
	}
	id = strings.TrimSpace(doc.DocumentTracking.Identification.ID.Value)
	if id == "" {
		return "", nil, errors.New("MSRC CVRF document: no DocumentTracking.Identification.ID (is this a CVRF document in JSON form?)")
	}
	t, err := cvrfTime(doc.DocumentTracking.InitialReleaseDate)
	if err != nil {
		return "", nil, fmt.Errorf("MSRC CVRF document %s: InitialReleaseDate %q is not a time", id, doc.DocumentTracking.InitialReleaseDate)
	}
	released := feed.DateOf(t)
	// Product IDs of Windows client feature releases, as line versions.
	versions := map[string]string{}
	var walk func([]cvrfBranch)
	add := func(p cvrfProduct) {
		if m := cvrfClient.FindStringSubmatch(strings.TrimSpace(p.Value)); m != nil && p.ProductID != "" {
			versions[p.ProductID] = m[1] + " " + m[2]
		}
	}
	walk = func(bs []cvrfBranch) {
		for _, b := range bs {
			add(b.cvrfProduct)
			walk(b.Items)
			walk(b.Branch)
		}
	}
	for _, p := range doc.ProductTree.FullProductName {
		add(p)
	}
	walk(doc.ProductTree.Branch)
	if len(versions) == 0 {
		return "", nil, fmt.Errorf("MSRC CVRF document %s: its ProductTree names no Windows 10/11 client release", id)
	}
	type key struct {
		version string
		build   uint32
	}
	byLine := map[key]*WindowsRelease{}
	cves := map[key]map[string]bool{}
	for _, v := range doc.Vulnerability {
		exploitedFor := map[string]bool{} // product ID → exploited; "" = every product
		for _, th := range v.Threats {
			if th.Type != CVRFThreatExploitStatus || !exploitStatusYes(th.Description.Value) {
				continue
			}
			if len(th.ProductID) == 0 {
				exploitedFor[""] = true
			}
			for _, p := range th.ProductID {
				exploitedFor[p] = true
			}
		}
		for _, r := range v.Remediations {
			if r.Type != CVRFRemediationVendorFix || r.FixedBuild == "" {
				continue
			}
			m := fixedBuild.FindStringSubmatch(strings.TrimSpace(r.FixedBuild))
			for _, pid := range r.ProductID {
				version, ok := versions[pid]
				if !ok {
					continue
				}
				if m == nil {
					return "", nil, fmt.Errorf("MSRC CVRF document %s: %s: FixedBuild %q for %s is not 10.0.BUILD.UBR", id, v.CVE, r.FixedBuild, version)
				}
				build, _ := strconv.ParseUint(m[1], 10, 32)
				ubr, _ := strconv.ParseUint(m[2], 10, 32)
				if build == 0 || ubr == 0 {
					return "", nil, fmt.Errorf("MSRC CVRF document %s: %s: FixedBuild %q has a zero build or UBR", id, v.CVE, r.FixedBuild)
				}
				k := key{version, uint32(build)}
				w := byLine[k]
				if w == nil {
					w = &WindowsRelease{Version: version, Build: uint32(build), Released: released}
					byLine[k] = w
					cves[k] = map[string]bool{}
				}
				w.UBR = max(w.UBR, uint32(ubr))
				if exploitedFor[pid] || exploitedFor[""] {
					w.Exploited = true
				}
				if v.CVE != "" {
					cves[k][v.CVE] = true
				}
			}
		}
	}
	if len(byLine) == 0 {
		return "", nil, fmt.Errorf("MSRC CVRF document %s: no vendor fix with a FixedBuild for a Windows 10/11 client release", id)
	}
	for k, w := range byLine {
		w.CVEs = uint32(len(cves[k]))
		releases = append(releases, *w)
	}
	slices.SortFunc(releases, func(a, b WindowsRelease) int {
		return cmp2(a.Build, b.Build, strings.Compare(a.Version, b.Version))
	})
	return id, releases, nil
}

// cvrfTime reads a CVRF date: RFC 3339 ("2026-08-11T07:00:00Z"), or
// without a zone ("2026-08-11T07:00:00", as CVRF documents also write
// it), taken as UTC.
func cvrfTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04:05", s)
}

func cmp2(a, b uint32, then int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return then
}

// exploitStatusYes reads "Publicly Disclosed:No;Exploited:Yes;..." field
// by field (the whole string's "Yes" may be another field's).
func exploitStatusYes(s string) bool {
	for field := range strings.SplitSeq(s, ";") {
		k, v, ok := strings.Cut(field, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Exploited") && strings.EqualFold(strings.TrimSpace(v), "Yes") {
			return true
		}
	}
	return false
}
