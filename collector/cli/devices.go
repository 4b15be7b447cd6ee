package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store"
)

type deviceRow struct {
	store.Device
	Status store.DeviceStatus `json:"status"`
	// Cert is the certificate's state: "expired", "expiring" (within 14
	// days) or "ok"; "" for a revoked device.
	Cert string `json:"cert"`
}

func newDeviceRow(d store.Device, now time.Time, staleAfter time.Duration) deviceRow {
	r := deviceRow{Device: d, Status: d.Status(now, staleAfter), Cert: d.CertState(now)}
	if r.Cert == "" && !d.Revoked() {
		r.Cert = "ok"
	}
	return r
}

// certColumn is the CERT column: "ok", or how soon it expires.
func certColumn(r deviceRow, now time.Time) string {
	switch r.Cert {
	case "expired":
		return "EXPIRED " + r.CertNotAfter.UTC().Format("2006-01-02")
	case "expiring":
		return fmt.Sprintf("expires in %s", days(r.CertNotAfter.Sub(now)))
	case "":
		return "-"
	}
	return r.Cert
}

// days is a duration as whole days, or hours under one day.
func days(d time.Duration) string {
	if d < 24*time.Hour {
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func osName(d store.Device) string {
	if d.OSName == "" {
		return d.Platform
	}
	return d.OSName + " " + d.OSVersion
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Format(time.RFC3339)
}

func (a *app) deviceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Show, revoke or retire one device; list likely duplicates"}
	var (
		asJSON   bool
		interval time.Duration
	)
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a device: its latest verdicts (failing first), why, failing since, deadlines, waivers, recent transitions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			d, err := st.Device(ctx, args[0])
			if errors.Is(err, store.ErrNotFound) {
				return inputError{fmt.Errorf("no device %s (ward-collector devices list names them)", args[0])}
			}
			if err != nil {
				return err
			}
			rules, err := st.RuleStates(ctx, d.ID)
			if err != nil {
				return err
			}
			trans, err := st.Transitions(ctx, d.ID)
			if err != nil {
				return err
			}
			now := a.now()
			row := newDeviceRow(d, now, 3*interval)
			status := row.Status
			shown, err := showRules(ctx, st, d, rules, now)
			if err != nil {
				return err
			}
			if asJSON {
				if trans == nil {
					trans = []store.Transition{}
				}
				return a.printJSON(struct {
					Device            deviceRow          `json:"device"`
					StaleAfterSeconds int64              `json:"stale_after_seconds"`
					Rules             []ruleRow          `json:"rules"`
					Transitions       []store.Transition `json:"transitions"`
				}{row, int64(3 * interval / time.Second), shown, trans})
			}
			fmt.Fprintf(a.stdout, "%s  %s  group %s  %s\n", d.ID, d.Hostname, d.Group, osName(d))
			fmt.Fprintf(a.stdout, "status %s, enrolled %s, last seen %s, certificate %s until %s\n",
				status, d.EnrolledAt.Format(time.RFC3339), when(d.LastSeen), d.CertSerial, d.CertNotAfter.Format(time.RFC3339))
			if status == store.StatusStale {
				fmt.Fprintf(a.stdout, "STALE: no report for %s (more than %s): the verdicts below are its last known, and deadlines keep running\n", span(now.Sub(lastSeen(d))), dashboard.HumanDuration(3*interval))
			}
			switch row.Cert {
			case "expired":
				fmt.Fprintf(a.stdout, "certificate EXPIRED: the agent can no longer report; re-enrol it with a re-bind token (ward-collector token create --rebind %s)\n", d.ID)
			case "expiring":
				fmt.Fprintf(a.stdout, "certificate expires in %s and was not renewed: the agent renews at 2/3 of its lifetime, so it has been offline or its renewal fails\n", days(d.CertNotAfter.Sub(now)))
			}
			if others := duplicatesOf(ctx, st, d); len(others) > 0 {
				fmt.Fprintf(a.stdout, "likely duplicate: same machine id and group as %s (retire one: ward-collector device retire ID)\n", strings.Join(others, ", "))
			}
			fmt.Fprintln(a.stdout)
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "RULE\tSEVERITY\tCOLLECTOR\tAGENT\tFAILING SINCE\tDEADLINE\tOBSERVED")
			for _, r := range shown {
				agent := string(r.Agent)
				if agent != "" && r.Agent != r.Collector {
					agent += " (disagrees)"
				}
				status := orDash(string(r.Status))
				deadline := "-"
				if r.Collector == store.Fail {
					deadline = deadlineColumn(r.Deadline, r.Overdue, now)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.RuleID, orDash(r.Severity), status, orDash(agent), sinceColumn(r.FailingSince, now), deadline, r.Observed)
			}
			w.Flush()
			// Why: an UNKNOWN's reason, a waiver's terms.
			for _, r := range shown {
				if r.Reason != "" {
					fmt.Fprintf(a.stdout, "  %s %s: %s\n", r.RuleID, r.Collector, r.Reason)
				}
				if wv := r.Waiver; wv != nil {
					fmt.Fprintf(a.stdout, "  %s waived (%s, verdict %s) by %s until %s: %s\n", r.RuleID, wv.ID, r.Collector, wv.CreatedBy, wv.ExpiresAt.UTC().Format(time.RFC3339), wv.Reason)
				}
			}
			if n := len(trans); n > 0 {
				fmt.Fprintln(a.stdout, "\nrecent transitions:")
				for _, t := range trans[max(0, n-10):] {
					received := ""
					if late := store.ReceivedLate(t); late != nil {
						received = ", received " + late.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(a.stdout, "  %s  %s  %s -> %s (report %d%s)\n", t.At.Format(time.RFC3339), t.RuleID, orDash(string(t.From)), t.To, t.Sequence, received)
				}
			}
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	staleFlag(show, &interval)
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a device: its certificate is refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := a.revokeDevice(cmd.Context(), st, args[0], false); err != nil {
				return err
			}
			a.recordRevoke(cmd.Context(), st, args[0], actor(), false)
			fmt.Fprintf(a.stdout, "revoked device %s\n", args[0])
			return nil
		},
	}
	retire := &cobra.Command{
		Use:   "retire ID",
		Short: "Retire a device (e.g. one of likely duplicates): its certificate is revoked, it leaves the fleet's counts, its history is kept",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := a.revokeDevice(ctx, st, args[0], true); err != nil {
				return err
			}
			a.recordRevoke(ctx, st, args[0], actor(), true)
			fmt.Fprintf(a.stdout, "retired device %s\n", args[0])
			return nil
		},
	}
	var dupJSON bool
	duplicates := &cobra.Command{
		Use:   "duplicates",
		Short: "List likely duplicates: non-revoked devices of a group that share a machine id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			sets, err := st.Duplicates(cmd.Context())
			if err != nil {
				return err
			}
			if dupJSON {
				if sets == nil {
					sets = []store.DuplicateSet{}
				}
				return a.printJSON(sets)
			}
			if len(sets) == 0 {
				fmt.Fprintln(a.stdout, "no likely duplicates")
				return nil
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GROUP\tMACHINE ID\tDEVICE\tHOSTNAME\tENROLLED\tLAST SEEN")
			for _, set := range sets {
				for _, d := range set.Devices {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", set.Group, shortID(set.MachineID), d.ID, d.Hostname, d.EnrolledAt.Format(time.RFC3339), when(d.LastSeen))
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "\nretire the one that is not in use: ward-collector device retire ID")
			return nil
		},
	}
	duplicates.Flags().BoolVar(&dupJSON, "json", false, "print as JSON")
	cmd.AddCommand(show, revoke, retire, duplicates)
	return cmd
}

// duplicatesOf is the ids of d's likely duplicates (none if it cannot tell).
func duplicatesOf(ctx context.Context, st store.Store, d store.Device) []string {
	if d.Revoked() || d.MachineID == "" {
		return nil
	}
	sets, err := st.Duplicates(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, set := range sets {
		if set.Group == d.Group && set.MachineID == d.MachineID {
			for _, o := range set.Devices {
				if o.ID != d.ID {
					out = append(out, o.ID)
				}
			}
		}
	}
	return out
}

// shortID abbreviates a long hashed machine id for a table.
func shortID(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) printSummary(s Summary, asJSON bool, staleAfter time.Duration) error {
	if asJSON {
		return a.printJSON(s)
	}
	fmt.Fprintf(a.stdout, "devices    %d\ncompliant  %d\nfailing    %d\nunknown    %d\nstale      %d (no report for %s)\nrevoked    %d\n",
		s.Devices, s.Compliant, s.Failing, s.Unknown, s.Stale, dashboard.HumanDuration(staleAfter), s.Revoked)
	return nil
}

// Summary is the --json document of fleet summary.
type Summary struct {
	Devices   int `json:"devices"`
	Compliant int `json:"compliant"`
	Failing   int `json:"failing"`
	Unknown   int `json:"unknown"`
	Stale     int `json:"stale"`
	Revoked   int `json:"revoked"`
	// StaleAfter is the threshold used, in seconds.
	StaleAfter int64 `json:"stale_after_seconds"`
}

func (a *app) fleetCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "Fleet-wide views"}
	var (
		asJSON   bool
		interval time.Duration
	)
	summary := &cobra.Command{
		Use:   "summary",
		Short: "Count devices by status; stale (silent) devices are counted apart from failing ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			s := Summary{StaleAfter: int64((3 * interval).Seconds())}
			now := a.now()
			if d, ok := st.(store.Dashboard); ok {
				// From the store's maintained counts, not a pass over
				// every device.
				c, err := d.FleetCounts(cmd.Context(), now, 3*interval)
				if err != nil {
					return err
				}
				s.Devices, s.Compliant, s.Failing, s.Unknown, s.Stale, s.Revoked = c.Devices, c.Compliant, c.Failing, c.Unknown, c.Stale, c.Revoked
				return a.printSummary(s, asJSON, 3*interval)
			}
			ds, err := st.Devices(cmd.Context())
			if err != nil {
				return err
			}
			for _, d := range ds {
				switch d.Status(now, 3*interval) {
				case store.StatusCompliant:
					s.Compliant++
				case store.StatusFailing:
					s.Failing++
				case store.StatusUnknown:
					s.Unknown++
				case store.StatusStale:
					s.Stale++
				case store.StatusRevoked:
					s.Revoked++
				}
			}
			s.Devices = len(ds) - s.Revoked
			return a.printSummary(s, asJSON, 3*interval)
		},
	}
	summary.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	staleFlag(summary, &interval)
	cmd.AddCommand(summary)
	cmd.AddCommand(a.fleetViewCommands()...)
	return cmd
}
