package build

import (
	"cmp"
	"regexp"
	"strconv"
	"strings"
)

var (
	macOSMajor   = regexp.MustCompile(`^[1-9][0-9]*$`)
	macOSRelease = regexp.MustCompile(`^[1-9][0-9]*(\.[0-9]+){1,2}( \([a-z]\))?$`)
)

// compareVersions orders "13.4.1" < "13.4.1 (a)" < "13.5" (numeric parts,
// then a Rapid Security Response letter); parts that do not parse
// compare as text.
func compareVersions(a, b string) int {
	an, as, _ := strings.Cut(a, " ")
	bn, bs, _ := strings.Cut(b, " ")
	ap, bp := strings.Split(an, "."), strings.Split(bn, ".")
	for i := range max(len(ap), len(bp)) {
		var x, y string
		if i < len(ap) {
			x = ap[i]
		}
		if i < len(bp) {
			y = bp[i]
		}
		xi, xerr := strconv.ParseUint(cmp.Or(x, "0"), 10, 64)
		yi, yerr := strconv.ParseUint(cmp.Or(y, "0"), 10, 64)
		if xerr != nil || yerr != nil {
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
			continue
		}
		if c := cmp.Compare(xi, yi); c != 0 {
			return c
		}
	}
	return strings.Compare(as, bs)
}
