package check

import (
	"strings"
	"unicode/utf8"
)

// FirstLine returns the first non-empty line of the first output that has
// one, shortened for a reason string, or "no output". Collectors quote it
// when a tool fails, so the reason carries the tool's own words.
func FirstLine(outs ...[]byte) string {
	for _, o := range outs {
		for line := range strings.SplitSeq(string(o), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				return Shorten(line, 200)
			}
		}
	}
	return "no output"
}

// Shorten cuts s to at most n bytes at a character boundary and marks the
// cut with "...".
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
