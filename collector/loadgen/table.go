package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable writes summaries as one table for people: a row per run
// against the collector and the ceiling, then the enrolments.
func WriteTable(w io.Writer, summaries []*Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmode\tsealed\trate\tdevices\treports/s\tp50 ms\tp99 ms\tmax ms\terrors\tB/report\tsent B/report\tof ceiling\tstored = acked\t")
	for _, s := range summaries {
		for _, r := range []*RunResult{s.Ward, s.Ceiling} {
			if r == nil {
				continue
			}
			ratio, verified := "", ""
			if r == s.Ward {
				if s.Ceiling != nil {
					ratio = fmt.Sprintf("%.1f %%", 100*s.Ratio)
				}
				verified = "not checked"
				if v := s.Verify; v != nil {
					verified = fmt.Sprintf("%d = %d", v.Stored-v.InDoubt, v.Acknowledged)
					if !v.OK {
						verified += fmt.Sprintf(" FAIL (%d missing, %d duplicated, %d unexpected, %d gaps, %d forks)", v.Missing, v.Duplicated, v.Unexpected, v.Gaps, v.Forks)
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%s\t%.0f\t%.0f\t%s\t%s\t\n",
				r.Target, r.Mode, yesNo(r.Sealed), rateText(r.Rate), r.Devices, r.PerSec, r.P50ms, r.P99ms, r.MaxMs,
				errorsText(r.Errors), r.BytesPerReport, r.SentPerReport, ratio, verified)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "enrolled for\tdevices\tenrolled\tkeys s\tenrol s\tenrolled/s\tceiling/s\tof ceiling\tthrottled\terrors\tpolicy\t")
	for _, s := range summaries {
		e := s.Enrolment
		run := "enrolment only"
		if s.Ward != nil {
			run = string(s.Ward.Mode) + " " + rateText(s.Ward.Rate)
		}
		ceiling, ratio := "", ""
		if c := s.EnrolCeiling; c != nil {
			ceiling, ratio = fmt.Sprintf("%.0f", c.PerSec), fmt.Sprintf("%.1f %%", 100*s.EnrolRatio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.0f\t%s\t%s\t%d\t%s\t%s\t\n", run, e.Devices, e.Enrolled, e.KeySeconds, e.Seconds, e.PerSec,
			ceiling, ratio, e.Throttled, errorsText(e.Errors), s.Policy)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// errorsText is "0", or the counts by code ("Unavailable 3, Internal 1").
func errorsText(errs map[string]int64) string {
	if len(errs) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, errs[k]))
	}
	return strings.Join(parts, ", ")
}
