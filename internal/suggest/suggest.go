// Package suggest adds "did you mean …?" to the usage errors of Ward's
// command lines (ward-collector, ward-agent), so a typo is answered with
// the name that was meant, not only a refusal.
package suggest

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag adds "did you mean --x?" to an unknown flag's error (a cobra
// FlagErrorFunc's) when the command has a flag within two edits of it, or
// starting with it; any other error is returned as it is.
func Flag(c *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	best, bestDist := "", 3
	visit := func(f *pflag.Flag) {
		if d := editDistance(name, f.Name); d < bestDist || (best == "" && strings.HasPrefix(f.Name, name)) {
			best, bestDist = f.Name, min(d, bestDist)
		}
	}
	c.Flags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	if best == "" {
		return err
	}
	return fmt.Errorf("%w; did you mean --%s?", err, best)
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Command is "; did you mean x?" for an unknown subcommand name of c
// (within two edits, or a prefix), or "".
func Command(c *cobra.Command, name string) string {
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	s := c.SuggestionsFor(name)
	if len(s) == 0 {
		return ""
	}
	return fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
}
