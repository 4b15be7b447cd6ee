package cli

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	"github.com/wardhq/ward/policies"
)

// inputError is a refusal of what the user gave (exit code 3).
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Set and list group policies; what-if a draft"}
	var group string
	set := &cobra.Command{
		Use:   "set --group G FILE",
		Short: "Validate a policy file and make it the group's policy",
		Long: `Validate a policy file and make it the group's policy.

A policy is its name, version and content: changing a document under a
version the group already uses is refused (raise the version), and so is
going back a version. Setting exactly the current policy again is no change.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if group == "" {
				return inputError{errors.New("--group is required")}
			}
			doc, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			p, err := policies.Parse(args[0], doc)
			if err != nil {
				return inputError{fmt.Errorf("invalid policy: %w", err)}
			}
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			next := store.GroupPolicy{Group: group, Name: p.Name, Version: p.Version, Document: doc, UpdatedAt: a.now().UTC()}
			var cur *store.GroupPolicy
			switch gp, err := st.Policy(cmd.Context(), group); {
			case err == nil:
				cur = &gp
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			unchanged, err := store.CheckPolicyChange(cur, next)
			if err != nil {
				return inputError{err}
			}
			if unchanged {
				fmt.Fprintf(a.stdout, "group %s already uses policy %s version %d with this content; nothing changed\n", group, p.Name, p.Version)
				return nil
			}
			d, ok := st.(store.Dashboard)
			if !ok {
				return fmt.Errorf("store %T keeps no audit log", st)
			}
			detail := fmt.Sprintf("%s version %d (set with the CLI)", p.Name, p.Version)
			if cur != nil {
				detail = fmt.Sprintf("%s version %d (was %s version %d; set with the CLI)", p.Name, p.Version, cur.Name, cur.Version)
			}
			if err := d.SetPolicyAudited(cmd.Context(), next, store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "policy.apply", Target: group, Detail: detail}); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "group %s now uses policy %s version %d\n", group, p.Name, p.Version)
			return nil
		},
	}
	set.Flags().StringVar(&group, "group", "", "the group whose policy this becomes")
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List group policies (groups without one use the embedded baseline)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ps, err := st.Policies(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if ps == nil {
					ps = []store.GroupPolicy{}
				}
				return a.printJSON(ps)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GROUP\tPOLICY\tVERSION\tCONTENT SHA256\tUPDATED")
			for _, p := range ps {
				sum := sha256.Sum256(p.Document)
				fmt.Fprintf(w, "%s\t%s\t%d\t%x…\t%s\n", p.Group, p.Name, p.Version, sum[:6], p.UpdatedAt.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.AddCommand(set, list, a.whatIfCommand())
	return cmd
}

func (a *app) waiverCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "waiver", Short: "Grant, list and revoke waivers (accepted exceptions to a rule)"}
	var device, group, rule, reason, until string
	var forDur time.Duration
	var asJSONGrant bool
	grant := &cobra.Command{
		Use:   "grant (--device ID | --group G) --rule R --reason TEXT (--until DATE | --for DURATION)",
		Short: "Accept a failing rule on a device or group until a date; the agents stop prompting about it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := a.now().UTC()
			wv := store.Waiver{ID: token.NewID("wvr_"), DeviceID: device, Group: group, RuleID: rule, Reason: reason, CreatedBy: actor(), CreatedAt: now}
			switch {
			case (device == "") == (group == ""):
				return inputError{errors.New("give either --device or --group, not both")}
			case rule == "":
				return inputError{errors.New("--rule is required")}
			case reason == "":
				return inputError{errors.New("--reason is required: the audit log and the agent show it")}
			case len(reason) > 500:
				return inputError{errors.New("--reason: at most 500 bytes (the agent shows it to the device's user)")}
			case (until == "") == (forDur == 0):
				return inputError{errors.New("give either --until DATE or --for DURATION")}
			}
			if until != "" {
				t, err := parseUntil(until)
				if err != nil {
					return inputError{err}
				}
				wv.ExpiresAt = t
			} else {
				wv.ExpiresAt = now.Add(forDur)
			}
			if !wv.ExpiresAt.After(now) {
				return inputError{errors.New("the expiry must be in the future")}
			}
			if wv.ExpiresAt.Sub(now) > 366*24*time.Hour {
				return inputError{errors.New("a waiver lasts at most a year")}
			}
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			d, ok := st.(store.Dashboard)
			if !ok {
				return errors.New("this store keeps no waivers")
			}
			if device != "" {
				if _, err := st.Device(cmd.Context(), device); errors.Is(err, store.ErrNotFound) {
					return inputError{fmt.Errorf("no device %s", device)}
				} else if err != nil {
					return err
				}
			}
			target := "device " + device
			if group != "" {
				target = "group " + group
			}
			if err := d.CreateWaiverAudited(cmd.Context(), wv, store.AuditEntry{At: now, Actor: actor(), Action: "waiver.create", Target: wv.ID,
				Detail: fmt.Sprintf("%s on %s until %s: %s", rule, target, wv.ExpiresAt.Format(time.RFC3339), reason)}); err != nil {
				return err
			}
			if asJSONGrant {
				return a.printJSON(wv)
			}
			fmt.Fprintf(a.stdout, "waiver %s: %s on %s accepted until %s\n", wv.ID, rule, target, wv.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	grant.Flags().StringVar(&device, "device", "", "the device id")
	grant.Flags().StringVar(&group, "group", "", "every device of this group")
	grant.Flags().StringVar(&rule, "rule", "", "the rule id to accept")
	grant.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log, shown to the device's user)")
	grant.Flags().StringVar(&until, "until", "", "expiry: 2006-01-02 (end of that day, UTC) or RFC 3339")
	grant.Flags().DurationVar(&forDur, "for", 0, "expiry as a duration from now (e.g. 720h)")
	grant.Flags().BoolVar(&asJSONGrant, "json", false, "print the waiver as JSON")

	var asJSON, all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List active waivers (--all: also expired and revoked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			d, ok := st.(store.Dashboard)
			if !ok {
				return errors.New("this store keeps no waivers")
			}
			ws, err := d.Waivers(cmd.Context())
			if err != nil {
				return err
			}
			now := a.now()
			out := []waiverJSON{}
			var ids []string
			for _, w := range ws {
				if all || w.ActiveAt(now) {
					out = append(out, waiverJSON{Waiver: w})
					if w.DeviceID != "" {
						ids = append(ids, w.DeviceID)
					}
				}
			}
			hosts, err := d.Hostnames(cmd.Context(), ids)
			if err != nil {
				return err
			}
			for i := range out {
				out[i].Hostname = hosts[out[i].DeviceID]
			}
			if asJSON {
				return a.printJSON(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDEVICE\tHOSTNAME\tGROUP\tRULE\tEXPIRES\tACTIVE\tBY\tREASON")
			for _, w := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\t%s\n", w.ID, orDash(w.DeviceID), orDash(w.Hostname), orDash(w.Group), w.RuleID, w.ExpiresAt.Format(time.RFC3339), w.ActiveAt(now), w.CreatedBy, w.Reason)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	list.Flags().BoolVar(&all, "all", false, "include expired and revoked waivers")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "End a waiver now; the agents prompt about the rule again at their next round",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			d, ok := st.(store.Dashboard)
			if !ok {
				return errors.New("this store keeps no waivers")
			}
			now := a.now().UTC()
			if err := d.RevokeWaiverAudited(cmd.Context(), args[0], store.AuditEntry{At: now, Actor: actor(), Action: "waiver.revoke", Target: args[0]}); errors.Is(err, store.ErrNotFound) {
				return inputError{fmt.Errorf("no waiver %s", args[0])}
			} else if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "waiver %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(grant, list, revoke)
	return cmd
}

// parseUntil reads a waiver's expiry: a date (the end of that day, UTC)
// or an RFC 3339 time.
func parseUntil(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Add(24*time.Hour - time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--until %q: give 2006-01-02 or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
