package cli

import (
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/bidi"
	"github.com/wardhq/ward/agent/i18n"
)

// defaultWidth is the width of text output when neither COLUMNS nor the
// terminal says.
const defaultWidth = 80

// termWidth is how wide the text written to w may be: COLUMNS when set,
// else the width of the terminal w is, else 80.
func termWidth(w io.Writer) int {
	if n, err := strconv.Atoi(strings.TrimSpace(os.Getenv("COLUMNS"))); err == nil && n > 0 {
		return n
	}
	if f, ok := w.(*os.File); ok {
		if n := terminalWidth(f); n > 0 {
			return n
		}
	}
	return defaultWidth
}

// rtlOutput lays the command's text out for a right-to-left terminal when
// lang is written right to left: from the call on, a.stdout isolates the
// left-to-right runs of each line and wraps it to the terminal's width
// (agent/bidi), and execute flushes it. A command calls it once it knows
// the language, for its text output only (never for --json).
func (a *app) rtlOutput(lang string) {
	if !i18n.RTL(lang) {
		return
	}
	if _, done := a.stdout.(*bidi.Writer); done {
		return
	}
	a.stdout = bidi.NewWriter(a.stdout, termWidth(a.stdout))
}

// flushOutput writes what a right-to-left writer still holds.
func (a *app) flushOutput() {
	if bw, ok := a.stdout.(*bidi.Writer); ok {
		bw.Flush()
	}
}
