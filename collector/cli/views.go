package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
)

// The fleet views of the dashboard's overview, for the terminal and for
// scripts (--json): who fails what since when (fleet failing), who is
// past a deadline (fleet overdue), the trend, and what a draft policy
// would change (policy what-if). Rows are export rows
// (dashboard.ExportRow), so a script reads failing, overdue and export
// alike, and deadlines are counted as the dashboard counts them.

// FailingReport is the --json document of fleet failing and fleet overdue.
type FailingReport struct {
	AsOf              time.Time             `json:"as_of"`
	StaleAfterSeconds int64                 `json:"stale_after_seconds"`
	Rows              []dashboard.ExportRow `json:"rows"`
	// Undecided counts the failing rules whose deadline cannot be told
	// (fleet overdue: they may be overdue too).
	Undecided int `json:"undecided,omitempty"`
}

// fleetViewCommands are fleet failing, fleet overdue and fleet trend.
func (a *app) fleetViewCommands() []*cobra.Command {
	failing := a.failingCommand("failing", "Who fails what since when: every failing rule of every device (stale ones too, marked), overdue first",
		func(r dashboard.ExportRow) bool { return r.Verdict == store.Fail })
	overdue := a.failingCommand("overdue", "The failing rules past their deadline (failing since + the rule's grace), not waived, oldest deadline first",
		func(r dashboard.ExportRow) bool { return r.Overdue != nil && *r.Overdue })
	// A paused deadline (a connected grace whose device's latest round
	// found no connection, docs/connectivity.md) is not overdue: listed
	// apart.
	paused := a.failingCommand("paused", "The failing rules whose connected-grace deadline is paused: the device's latest round found no connection (not overdue; listed apart), not waived",
		func(r dashboard.ExportRow) bool { return r.Verdict == store.Fail && r.DeadlinePaused })
	var (
		days   int
		asJSON bool
	)
	trend := &cobra.Command{
		Use:   "trend",
		Short: "The fleet at the end of each UTC day: compliant, failing, unknown (from history; staleness is not part of it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days < 1 || days > 366 {
				return inputError{fmt.Errorf("--days %d: want 1 to 366", days)}
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			points, err := st.Trend(cmd.Context(), a.now().UTC(), days)
			if err != nil {
				return err
			}
			if asJSON {
				if points == nil {
					points = []store.TrendPoint{}
				}
				return a.printJSON(points)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DAY\tCOMPLIANT\tFAILING\tUNKNOWN")
			for _, p := range points {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", p.Day.UTC().Format("2006-01-02"), p.Compliant, p.Failing, p.Unknown)
			}
			return w.Flush()
		},
	}
	trend.Flags().IntVar(&days, "days", 30, "how many days, ending today")
	trend.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return []*cobra.Command{failing, overdue, paused, trend}
}

func (a *app) failingCommand(name, short string, keep func(dashboard.ExportRow) bool) *cobra.Command {
	var (
		asJSON        bool
		group, rule   string
		interval      time.Duration
		includeWaived bool
	)
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			now := a.now().UTC()
			e, err := dashboard.BuildExport(cmd.Context(), st, dashboard.ExportOptions{Now: now, StaleAfter: 3 * interval})
			if err != nil {
				return err
			}
			rep := FailingReport{AsOf: now, StaleAfterSeconds: int64(3 * interval / time.Second), Rows: []dashboard.ExportRow{}}
			for _, r := range e.Rows {
				if r.DeviceStatus == dashboard.ExportRevoked || (group != "" && r.Group != group) || (rule != "" && r.RuleID != rule) {
					continue
				}
				if r.Waiver != nil && !includeWaived {
					continue
				}
				if keep(r) {
					rep.Rows = append(rep.Rows, r)
				} else if r.Verdict == store.Fail && r.Overdue == nil {
					rep.Undecided++
				}
			}
			sortFailing(rep.Rows)
			if asJSON {
				return a.printJSON(rep)
			}
			if len(rep.Rows) == 0 {
				fmt.Fprintf(a.stdout, "no %s rules\n", name)
			} else {
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "HOSTNAME\tGROUP\tRULE\tSEVERITY\tSTATUS\tFAILING SINCE\tDEADLINE\tDEVICE")
				for _, r := range rep.Rows {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Hostname, r.Group, r.RuleID, orDash(r.Severity), r.Status,
						sinceColumn(r.Since, now), rowDeadlineColumn(r, now), deviceColumn(r, now))
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			if rep.Undecided > 0 {
				fmt.Fprintf(a.stdout, "%d failing rules have no deadline to judge by (their group's policy no longer has the rule): see ward-collector fleet failing\n", rep.Undecided)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (rows as in export --format json)")
	cmd.Flags().StringVar(&group, "group", "", "only this group")
	cmd.Flags().StringVar(&rule, "rule", "", "only this rule id")
	cmd.Flags().BoolVar(&includeWaived, "waived", false, "include waived failures (status WAIVED)")
	staleFlag(cmd, &interval)
	return cmd
}

// sortFailing puts overdue rows first, then those whose deadline is
// unknown, then by deadline, failing since and hostname.
func sortFailing(rows []dashboard.ExportRow) {
	rank := func(r dashboard.ExportRow) int {
		switch {
		case r.Overdue != nil && *r.Overdue:
			return 0
		case r.Overdue == nil:
			return 1
		}
		return 2
	}
	at := func(t *time.Time) int64 {
		if t == nil {
			return 1<<63 - 1
		}
		return t.UnixNano()
	}
	slices.SortStableFunc(rows, func(x, y dashboard.ExportRow) int {
		return cmp.Or(cmp.Compare(rank(x), rank(y)), cmp.Compare(at(x.Deadline), at(y.Deadline)), cmp.Compare(at(x.Since), at(y.Since)),
			cmp.Compare(x.Hostname, y.Hostname), cmp.Compare(x.RuleID, y.RuleID))
	})
}

// sinceColumn is "2026-03-02 (8d ago)".
func sinceColumn(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format("2006-01-02 15:04"), span(now.Sub(*t)))
}

// deadlineColumn is "2026-03-05 (OVERDUE 5d)", "2026-03-05 (in 2d)", "none"
// (a rule without grace) or "unknown".
func deadlineColumn(t *time.Time, overdue *bool, now time.Time) string {
	switch {
	case t == nil && overdue == nil:
		return "unknown"
	case t == nil:
		return "none"
	case *overdue:
		return fmt.Sprintf("%s (OVERDUE %s)", t.UTC().Format("2006-01-02 15:04"), span(now.Sub(*t)))
	case !now.Before(*t):
		return fmt.Sprintf("%s (waived)", t.UTC().Format("2006-01-02 15:04"))
	}
	return fmt.Sprintf("%s (in %s)", t.UTC().Format("2006-01-02 15:04"), span(t.Sub(now)))
}

// rowDeadlineColumn is deadlineColumn, or for a paused connected-grace
// deadline "paused (no connection at 2026-03-10 11:00; 22h left once
// connected)": the report that said paused, and the connected time left,
// which does not run until the device connects again.
func rowDeadlineColumn(r dashboard.ExportRow, now time.Time) string {
	if !r.DeadlinePaused || r.Deadline == nil || r.LastReport == nil {
		return deadlineColumn(r.Deadline, r.Overdue, now)
	}
	left := max(r.Deadline.Sub(*r.LastReport), 0)
	return fmt.Sprintf("paused (no connection at %s; %s left once connected)", r.LastReport.UTC().Format("2006-01-02 15:04"), span(left))
}

// deviceColumn is the device id, with "stale: last report 2d ago" for a
// silent one: its verdicts are its last known.
func deviceColumn(r dashboard.ExportRow, now time.Time) string {
	switch {
	case r.DeviceStatus == dashboard.ExportStale && r.LastReport == nil:
		return fmt.Sprintf("%s (stale: never reported)", r.DeviceID)
	case r.DeviceStatus == dashboard.ExportStale:
		return fmt.Sprintf("%s (stale: last report %s ago)", r.DeviceID, span(now.Sub(*r.LastReport)))
	}
	return r.DeviceID
}

// whatIfCommand is policy what-if: the dashboard's what-if on the stored
// facts, from the terminal.
func (a *app) whatIfCommand() *cobra.Command {
	var (
		group   string
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "what-if --group G FILE",
		Short: "Evaluate a draft policy on the group's latest stored facts: who would newly fail which rules (changes nothing)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if group == "" {
				return inputError{errors.New("--group is required")}
			}
			if timeout <= 0 {
				return inputError{fmt.Errorf("--timeout %s: want a positive duration", timeout)}
			}
			doc, err := os.ReadFile(args[0])
			if err != nil {
				return inputError{err}
			}
			p, err := policies.Parse(args[0], doc)
			if err != nil {
				return inputError{fmt.Errorf("invalid policy: %w", err)}
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := cmd.Context()
			wi, err := dashboard.WhatIf(ctx, st, group, p, a.now().UTC(), timeout)
			if err != nil {
				return err
			}
			if err := st.AddAudit(ctx, store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "policy.what-if", Target: group,
				Detail: fmt.Sprintf("%s v%d: %d of %d devices would newly fail (CLI)", p.Name, p.Version, len(wi.Newly), wi.Evaluated)}); err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(wi)
			}
			fmt.Fprintf(a.stdout, "%s version %d on group %s: %d of %d evaluated devices would newly fail; %d failing now would pass every rule\n",
				p.Name, p.Version, group, len(wi.Newly), wi.Evaluated, wi.Fixed)
			if wi.Partial {
				fmt.Fprintf(a.stdout, "PARTIAL: stopped at the %s deadline after %d of %d devices; the counts cover those only (raise --timeout)\n", timeout, wi.Evaluated, wi.Total)
			}
			if len(wi.Newly) > 0 {
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "\nDEVICE\tHOSTNAME\tRULES NEWLY FAILING")
				for _, r := range wi.Newly {
					fmt.Fprintf(w, "%s\t%s\t%s\n", r.DeviceID, r.Hostname, strings.Join(r.Rules, ", "))
				}
				return w.Flush()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "the group whose devices to evaluate")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "stop evaluating after this long; the result then says it is partial")
	return cmd
}

// ruleRow is a rule of device show: its state, the status shown (WAIVED
// for a waived verdict other than PASS; Collector stays the verdict), the
// waiver, and the deadline by the group's current policy (as the
// dashboard's device page counts it).
type ruleRow struct {
	store.RuleState
	Status   store.Verdict `json:"status"`
	Waiver   *store.Waiver `json:"waiver"`
	Deadline *time.Time    `json:"deadline"`
	// Overdue: a FAIL, not waived, past its deadline; nil when it cannot
	// be told (the group's policy has no such rule any more).
	Overdue *bool `json:"overdue"`
}

// showRules orders a device's rules as the device page does: failing
// first, then unknown, then passing, and adds waivers and deadlines.
func showRules(ctx context.Context, st store.Store, d store.Device, rules []store.RuleState, now time.Time) ([]ruleRow, error) {
	out := []ruleRow{}
	var ws []store.Waiver
	var graces *dashboard.Graces
	if dst, ok := st.(store.Dashboard); ok {
		var err error
		if ws, err = dst.Waivers(ctx); err != nil {
			return nil, err
		}
		if graces, err = dashboard.LoadGraces(ctx, dst); err != nil {
			return nil, err
		}
	}
	for _, r := range rules {
		row := ruleRow{RuleState: r, Status: r.Collector, Waiver: store.FindWaiver(ws, now, d.ID, d.Group, r.RuleID)}
		if row.Status == "" {
			row.Status = store.Unknown // no verdict is never a pass
		}
		if row.Waiver != nil && row.Status != store.Pass {
			row.Status = store.Waived
		}
		if graces != nil {
			row.Deadline, row.Overdue = graces.Deadline(d.Group, r.RuleID, r.Collector, r.FailingSince, row.Waiver != nil, now)
		}
		out = append(out, row)
	}
	rank := func(r ruleRow) int {
		switch r.Collector {
		case store.Fail:
			return 0
		case store.Pass:
			return 2
		}
		return 1 // UNKNOWN or no verdict
	}
	slices.SortStableFunc(out, func(x, y ruleRow) int {
		return cmp.Or(cmp.Compare(rank(x), rank(y)), cmp.Compare(x.RuleID, y.RuleID))
	})
	return out, nil
}

// lastSeen is when the device last reported, or enrolled without a report.
func lastSeen(d store.Device) time.Time {
	if d.LastSeen != nil {
		return *d.LastSeen
	}
	return d.EnrolledAt
}

// span is a duration for a person: "45m", "5h", "3d", "2d23h".
func span(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	days, hours := int(d.Hours())/24, int(d.Hours())%24
	if hours == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, hours)
}
