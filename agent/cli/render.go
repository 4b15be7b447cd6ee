package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward/agent/bidi"
	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// renderTable prints results in lang as a table a person can read, width
// columns wide, then how to fix each rule that failed (a rule that could
// not be checked gets no fix steps as if it had failed: it says why and
// what to do). Nothing is cut: a long observed or expected text wraps
// inside its column, and
// when the columns would be too narrow for that, each result is printed
// as a block instead. For a right-to-left language each cell is isolated
// on its own (agent/bidi), so that the columns keep their order.
func renderTable(w io.Writer, pol *policies.Policy, facts *wardv1.Facts, results []policies.Result, now time.Time, lang string, width int) {
	osf := facts.GetOs()
	rtl := i18n.RTL(lang)
	say := func(indent, s string) { writeWrapped(w, indent+s, width, rtl) }
	say("", i18n.T(lang, "check.header", "policy", pol.Name, "version", strconv.Itoa(pol.Version),
		"os", strings.TrimSpace(nonEmpty(osf.GetName(), osf.GetPlatform())+" "+osf.GetVersion()),
		"checked", now.UTC().Format(time.RFC3339)))
	fmt.Fprintln(w)

	rows := [][]string{{i18n.T(lang, "check.col.status"), i18n.T(lang, "check.col.rule"),
		i18n.T(lang, "check.col.observed"), i18n.T(lang, "check.col.expected")}}
	var pass, fail, unknown int
	for _, r := range results {
		switch r.Status {
		case policies.StatusPass:
			pass++
		case policies.StatusFail:
			fail++
		default:
			unknown++
		}
		rows = append(rows, []string{statusWord(lang, r.Status), r.RuleID, cell(observedIn(r, lang)), cell(r.Expected)})
	}
	writeTable(w, rows, width, lang)

	first := true
	for _, r := range results {
		if r.Status == policies.StatusPass {
			continue
		}
		if first {
			fmt.Fprintln(w)
			say("", i18n.T(lang, "check.fix"))
			first = false
		}
		fmt.Fprintln(w)
		say("  ", i18n.T(lang, "check.item", "rule", r.RuleID, "status", statusWord(lang, r.Status),
			"severity", i18n.T(lang, "check.severity."+r.Severity), "title", itemTitle(pol, r, lang)))
		if reason := reasonIn(r, lang); r.Status == policies.StatusUnknown && reason != "" {
			say("    ", i18n.T(lang, "check.unknown_reason", "reason", reason))
		}
		if r.Status == policies.StatusUnknown {
			// No deadline and no fix steps: nothing is known to be wrong.
			say("    ", unknownAdvice(r, lang))
			continue
		}
		if r.GraceConnected && r.Deadline != nil {
			for _, line := range notify.ConnectedLines(lang, r.Deadline.Sub(now), *r.Deadline, r.DeadlinePaused, r.PausedSince, time.UTC) {
				say("    ", line)
			}
		} else if r.Deadline != nil {
			id := "check.deadline"
			if r.Overdue {
				id = "check.overdue"
			}
			say("    ", i18n.T(lang, id, "deadline", r.Deadline.UTC().Format("2006-01-02 15:04 MST")))
		}
		if r.Remediation != "" {
			for _, line := range strings.Split(strings.TrimSpace(r.Remediation), "\n") {
				say("    ", line)
			}
		}
	}
	fmt.Fprintln(w)
	say("", i18n.T(lang, "check.summary", "pass", strconv.Itoa(pass), "fail", strconv.Itoa(fail), "unknown", strconv.Itoa(unknown)))
}

// itemTitle is how a rule that did not pass is titled: a failure by its
// problem in plain words ("Your disk is not encrypted"; in lang, else in
// English), since the rule's title states the goal and reads like good
// news; anything else, or a rule without a problem text, by its title.
func itemTitle(pol *policies.Policy, r policies.Result, lang string) string {
	if r.Status != policies.StatusFail {
		return r.Title
	}
	for i := range pol.Rules {
		if pol.Rules[i].ID != r.RuleID {
			continue
		}
		p := pol.Rules[i].Problem
		if s := p[i18n.Normalize(lang)]; s != "" {
			return s
		}
		if s := p[i18n.Default]; s != "" {
			return s
		}
	}
	return r.Title
}

// observedIn is what Ward saw for r, in lang: its catalogue messages
// rendered, or its English text when it has none (a policy's own literal).
func observedIn(r policies.Result, lang string) string {
	return notify.Words(lang, r.ObservedText, r.Observed)
}

// reasonIn is why r could not be decided, in lang.
func reasonIn(r policies.Result, lang string) string {
	return notify.Words(lang, r.ReasonText, r.Reason)
}

// statusWord is a result's status in lang.
func statusWord(lang string, s policies.Status) string {
	switch s {
	case policies.StatusPass:
		return i18n.T(lang, "check.status.pass")
	case policies.StatusFail:
		return i18n.T(lang, "check.status.fail")
	}
	return i18n.T(lang, "check.status.unknown")
}

// cell is s on one line, or "-" when empty.
func cell(s string) string {
	if s = strings.Join(strings.Fields(s), " "); s != "" {
		return s
	}
	return "-"
}

const (
	columnGap = 2
	// minText is the narrowest the observed and expected columns may
	// become before the table gives way to blocks.
	minText = 16
)

// writeTable writes rows (the first is the header) in lang, in columns: the first
// two as wide as their widest cell, the last two sharing the rest of
// width, their texts wrapped inside. When they would get less than
// minText columns each, every row is written as a block instead: its
// first two cells on a line, then each of the others on lines of their
// own, after the header's name.
func writeTable(w io.Writer, rows [][]string, width int, lang string) {
	rtl := i18n.RTL(lang)
	natural := make([]int, 4)
	for _, row := range rows {
		for i, c := range row {
			natural[i] = max(natural[i], bidi.Width(c))
		}
	}
	avail := width - natural[0] - natural[1] - 3*columnGap
	widths := []int{natural[0], natural[1], natural[2], natural[3]}
	switch {
	case natural[2]+natural[3] <= avail:
	case avail < 2*minText:
		writeBlocks(w, rows, width, lang)
		return
	case natural[2] <= avail/2:
		widths[3] = avail - natural[2]
	case natural[3] <= avail/2:
		widths[2] = avail - natural[3]
	default:
		widths[2] = shortestSplit(rows[1:], avail)
		widths[3] = avail - widths[2]
	}
	for _, row := range rows {
		cells := make([][]string, len(row))
		height := 0
		for i, c := range row {
			cells[i] = bidi.Wrap(c, widths[i])
			height = max(height, len(cells[i]))
		}
		for l := range height {
			var b strings.Builder
			if rtl {
				b.WriteRune(bidi.RLM)
			}
			for i := range row {
				text := ""
				if l < len(cells[i]) {
					text = cells[i][l]
				}
				pad := widths[i] - bidi.Width(text)
				if rtl && text != "" {
					text = isolateCell(text)
				}
				b.WriteString(text)
				if i < len(row)-1 {
					b.WriteString(strings.Repeat(" ", max(pad, 0)+columnGap))
				}
			}
			fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		}
	}
}

// shortestSplit returns the width of the observed column, out of avail
// for it and the expected one, that makes the table shortest; of equal
// heights, the most even split.
func shortestSplit(rows [][]string, avail int) int {
	best, bestHeight := avail/2, -1
	for wo := minText; wo <= avail-minText; wo++ {
		height := 0
		for _, row := range rows {
			height += max(len(bidi.Wrap(row[2], wo)), len(bidi.Wrap(row[3], avail-wo)))
		}
		even := func(w int) int { return abs(2*w - avail) }
		if bestHeight < 0 || height < bestHeight || (height == bestHeight && even(wo) < even(best)) {
			best, bestHeight = wo, height
		}
	}
	return best
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// isolateCell isolates a cell of a right-to-left table: a cell without
// right-to-left letters as a whole, else each of its left-to-right runs,
// so that neighbouring cells never merge into one run.
func isolateCell(s string) string {
	if bidi.HasRTL(s) {
		return bidi.Isolate(s)
	}
	return string(bidi.LRI) + s + string(bidi.PDI)
}

// writeBlocks writes each row of a table too wide for width as a block.
func writeBlocks(w io.Writer, rows [][]string, width int, lang string) {
	rtl := i18n.RTL(lang)
	head := rows[0]
	for n, row := range rows[1:] {
		if n > 0 {
			fmt.Fprintln(w)
		}
		first := row[0] + "  " + row[1]
		if rtl {
			first = string(bidi.RLM) + isolateCell(row[0]) + "  " + isolateCell(row[1])
		}
		fmt.Fprintln(w, first)
		for i := 2; i < len(row); i++ {
			writeWrapped(w, "    "+i18n.T(lang, "check.field", "label", head[i], "text", row[i]), width, rtl)
		}
	}
}

// writeWrapped writes line wrapped to width. A right-to-left line is
// written whole: the right-to-left writer (rtlOutput) wraps it, and knows
// that its later lines belong to a right-to-left line.
func writeWrapped(w io.Writer, line string, width int, rtl bool) {
	if rtl {
		fmt.Fprintln(w, line)
		return
	}
	for _, l := range bidi.Wrap(line, width) {
		fmt.Fprintln(w, l)
	}
}

func nonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
