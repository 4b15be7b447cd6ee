package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// renderTable prints results as a table a person can read, then how to fix
// each rule that failed. A rule that could not be checked gets no fix
// steps, as if it had failed: it says why and what to do (lang).
func renderTable(w io.Writer, pol *policies.Policy, facts *wardv1.Facts, results []policies.Result, now time.Time, lang string) {
	osf := facts.GetOs()
	fmt.Fprintf(w, "Ward check: policy %s v%d on %s %s (%s)\n\n", pol.Name, pol.Version,
		nonEmpty(osf.GetName(), osf.GetPlatform()), osf.GetVersion(), now.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tRULE\tOBSERVED\tEXPECTED")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Status, r.RuleID, oneLine(r.Observed, 70), oneLine(r.Expected, 50))
	}
	tw.Flush()
	first := true
	for _, r := range results {
		if r.Status == policies.StatusPass {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nHow to fix:")
			first = false
		}
		fmt.Fprintf(w, "\n  %s [%s, %s]: %s\n", r.RuleID, r.Status, r.Severity, r.Title)
		if r.Status == policies.StatusUnknown && r.Reason != "" {
			fmt.Fprintf(w, "    Could not tell: %s\n", r.Reason)
		}
		if r.Status == policies.StatusUnknown {
			// No deadline and no fix steps: nothing is known to be wrong.
			fmt.Fprintf(w, "    %s\n", unknownAdvice(r, lang))
			continue
		}
		if r.Deadline != nil {
			when := "due " + r.Deadline.UTC().Format("2006-01-02 15:04 MST")
			if r.Overdue {
				when = "OVERDUE since " + r.Deadline.UTC().Format("2006-01-02 15:04 MST")
			}
			fmt.Fprintf(w, "    Deadline: %s\n", when)
		}
		if r.Remediation != "" {
			for _, line := range strings.Split(strings.TrimSpace(r.Remediation), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	fmt.Fprintf(w, "\n%d passing, %d failing, %d unknown\n", pass, fail, unknown)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}

func nonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
