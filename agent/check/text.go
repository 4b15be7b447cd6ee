package check

import (
	"context"
	"fmt"
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

// Output runs an allow-listed tool and returns its standard output when it
// exited 0 with its output complete. Otherwise the error says what went
// wrong: the Source's error, or a *ToolError quoting the tool's first line
// of stderr.
func Output(ctx context.Context, src Source, tool string, args ...string) ([]byte, error) {
	res, err := src.Command(ctx, tool, args...)
	if err != nil {
		return nil, fmt.Errorf("could not run %s: %w", tool, err)
	}
	if res.ExitCode != 0 {
		return nil, &ToolError{Tool: tool, ExitCode: res.ExitCode, Detail: FirstLine(res.Stderr)}
	}
	if res.Truncated {
		return nil, &ToolError{Tool: tool, Truncated: true}
	}
	return res.Stdout, nil
}
