package policies

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a policy document, at a place in it.
type Problem struct {
	File   string
	Line   int // 1-based; 0 when the problem is about the whole file
	Column int // 1-based; 0 when unknown
	Reason string
}

// String renders the problem as "FILE:LINE: reason".
func (p Problem) String() string {
	if p.Line <= 0 {
		return p.File + ": " + p.Reason
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Reason)
}

// ValidationError lists every problem found in a policy document. Parse
// returns it (use errors.As) so a caller can show each problem with its
// place; its Error text is one "FILE:LINE: reason" per line.
type ValidationError struct {
	Problems []Problem
}

// Error returns one "FILE:LINE: reason" line per problem, in document order.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by place, keeping the order of problems found
// at the same place.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
}
