package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
)

// listRow is one device of devices list: its row and its failing rules
// and deadlines (docs/device-list.md).
type listRow struct {
	deviceRow
	store.DeviceListing
}

// listPage is how many devices devices list reads at a time when it
// lists them all.
const listPage = 500

// listPolicies reads every group's policy (its stored one, or the
// embedded default), for the deadlines of its rules and the groups held
// to each policy name.
func listPolicies(ctx context.Context, st store.Dashboard) ([]store.DeadlineRule, map[string][]string, error) {
	groups, err := st.Groups(ctx)
	if err != nil {
		return nil, nil, err
	}
	stored, err := st.Policies(ctx)
	if err != nil {
		return nil, nil, err
	}
	byGroup := map[string]store.GroupPolicy{}
	for _, p := range stored {
		byGroup[p.Group] = p
		if !slices.Contains(groups, p.Group) {
			groups = append(groups, p.Group)
		}
	}
	var embedded *policies.Policy
	var rules []store.DeadlineRule
	names := map[string][]string{}
	for _, g := range groups {
		var p *policies.Policy
		if sp, ok := byGroup[g]; ok {
			if p, err = policies.Parse("group "+g, sp.Document); err != nil {
				return nil, nil, fmt.Errorf("stored policy of group %q: %w", g, err)
			}
		} else {
			if embedded == nil {
				if embedded, err = policies.Embedded(server.DefaultPolicy); err != nil {
					return nil, nil, err
				}
			}
			p = embedded
		}
		names[p.Name] = append(names[p.Name], g)
		for _, r := range p.Rules {
			if r.Grace > 0 {
				rules = append(rules, store.DeadlineRule{Group: g, RuleID: r.ID, Grace: r.Grace})
			}
		}
	}
	return rules, names, nil
}

// failingColumn names the failing rules, "and N more" past the first few.
func failingColumn(l store.DeviceListing) string {
	if len(l.Failing) == 0 {
		return "-"
	}
	var ids []string
	for _, f := range l.Failing {
		ids = append(ids, f.RuleID)
	}
	s := strings.Join(ids, ",")
	if l.FailingMore > 0 {
		s += fmt.Sprintf(" and %d more", l.FailingMore)
	}
	return s
}

// nextDeadlineColumn is the next deadline: "in 3d", "OVERDUE 2d", or "-".
func nextDeadlineColumn(l store.DeviceListing, now time.Time) string {
	switch {
	case l.NextDeadline == nil:
		return "-"
	case l.Overdue:
		return "OVERDUE " + days(now.Sub(*l.NextDeadline))
	}
	return "in " + days(l.NextDeadline.Sub(now))
}

func (a *app) devicesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "devices", Short: "List devices"}
	var (
		q                          store.DeviceQuery
		status, policy, certWithin string
		asJSON, expiring           bool
		interval                   time.Duration
	)
	sorts := strings.Join(store.Sorts, ", ")
	list := &cobra.Command{
		Use:   "list",
		Short: "List devices: status, failing rules, failing since, next deadline, agent version; filtered, sorted and paged as the dashboard does",
		Long: `List devices as the dashboard's device list does, with the same filters and sorts.
Without --limit every matching device is listed; with it, one page, and the cursor of
the next (--after) and previous (--before) pages is printed on standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			valid := []string{"", string(store.StatusCompliant), string(store.StatusFailing), string(store.StatusUnknown), string(store.StatusStale), string(store.StatusRevoked)}
			if !slices.Contains(valid, status) {
				return inputError{fmt.Errorf("--status %q: want compliant, failing, unknown, stale or revoked", status)}
			}
			q.Status = store.DeviceStatus(status)
			if !slices.Contains([]string{"", store.SeenFresh, store.SeenStale, store.SeenNever, store.SeenRevoked}, q.Seen) {
				return inputError{fmt.Errorf("--seen %q: want fresh, stale, never (reported) or revoked", q.Seen)}
			}
			if q.Sort != "" && !slices.Contains(store.Sorts, strings.TrimPrefix(q.Sort, "-")) {
				return inputError{fmt.Errorf("--sort %q: want one of %s, with - before it for descending", q.Sort, sorts)}
			}
			if q.Limit < 0 {
				return inputError{fmt.Errorf("--limit %d: want 0 (all) or more", q.Limit)}
			}
			if q.After != "" && q.Before != "" {
				return inputError{errors.New("--after and --before: give one cursor")}
			}
			if (q.After != "" || q.Before != "") && q.Limit == 0 {
				return inputError{errors.New("--after and --before page: give --limit too")}
			}
			if certWithin != "" {
				d, ok := parseDays(certWithin)
				if !ok || d <= 0 {
					return inputError{fmt.Errorf("--cert-within %q: want a number of days (14d) or a duration (36h)", certWithin)}
				}
				q.CertWithin = d
			}
			if expiring && q.CertWithin == 0 {
				q.CertWithin = store.CertWarning
			}
			st, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			ds, ok := st.(store.Dashboard)
			if !ok {
				return errors.New("this store cannot list devices")
			}
			deadlines, names, err := listPolicies(ctx, ds)
			if err != nil {
				return err
			}
			q.Deadlines = deadlines
			if policy != "" {
				g, ok := names[policy]
				if !ok {
					known := make([]string, 0, len(names))
					for n := range names {
						known = append(known, n)
					}
					slices.Sort(known)
					return inputError{fmt.Errorf("--policy %q: no group is held to it (policies in use: %s)", policy, strings.Join(known, ", "))}
				}
				q.Groups = g
			}
			now := a.now()
			q.Now, q.StaleAfter = now, 3*interval
			all := q.Limit == 0
			if all {
				q.Limit = listPage
			}
			rows := []listRow{}
			var last store.DevicePage
			for {
				p, err := ds.ListDevices(ctx, q)
				if errors.Is(err, store.ErrBadCursor) {
					return inputError{fmt.Errorf("--after/--before: not a cursor of --sort %q (cursors come from a page of the same sort)", q.Sort)}
				}
				if err != nil {
					return err
				}
				for _, d := range p.Devices {
					rows = append(rows, listRow{deviceRow: newDeviceRow(d, now, q.StaleAfter), DeviceListing: p.Listing[d.ID]})
				}
				last = p
				if !all || p.Next == "" {
					break
				}
				q.After = p.Next
			}
			if !all {
				if last.Prev != "" {
					fmt.Fprintf(a.stderr, "previous page: --before %s\n", last.Prev)
				}
				if last.Next != "" {
					fmt.Fprintf(a.stderr, "next page: --after %s\n", last.Next)
				}
			}
			if asJSON {
				return a.printJSON(rows)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tHOSTNAME\tGROUP\tOS\tAGENT\tSTATUS\tFAILING\tSINCE\tDEADLINE\tLAST SEEN\tCERT")
			for _, r := range rows {
				since := "-"
				if r.FailingSince != nil {
					since = days(now.Sub(*r.FailingSince))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Hostname, r.Group, osName(r.Device), r.AgentVersion, r.Status,
					failingColumn(r.DeviceListing), since, nextDeadlineColumn(r.DeviceListing, now), when(r.LastSeen), certColumn(r.deviceRow, now))
			}
			return w.Flush()
		},
	}
	f := list.Flags()
	f.StringVar(&status, "status", "", "only devices with this status: compliant, failing, unknown, stale, revoked")
	f.StringVar(&q.Seen, "seen", "", "only devices seen so: fresh, stale, never (reported yet), revoked")
	f.StringVar(&policy, "policy", "", "only devices of the groups held to this policy (by name)")
	f.StringVar(&q.Group, "group", "", "only devices of this group")
	f.StringVar(&q.RuleID, "rule", "", "only devices failing this rule")
	f.BoolVar(&q.Overdue, "overdue", false, "only devices failing a rule past its deadline (failing since + grace)")
	f.StringVar(&q.AgentVersion, "agent-version", "", "only devices whose agent has this version")
	f.StringVar(&q.OS, "os", "", "only devices with this operating system name (e.g. \"Debian GNU/Linux\")")
	f.StringVar(&q.Search, "search", "", "only devices whose hostname contains this")
	f.StringVar(&certWithin, "cert-within", "", "only devices whose certificate expired or expires within this many days (14d) or this long (36h)")
	f.BoolVar(&expiring, "expiring", false, "only devices whose certificate expired or expires within 14 days (they have not renewed: offline for weeks, or renewal fails)")
	f.StringVar(&q.Sort, "sort", "", "sort by one of "+sorts+"; - before it for descending (default hostname)")
	f.IntVar(&q.Limit, "limit", 0, "list one page of this many devices (default: all)")
	f.StringVar(&q.After, "after", "", "with --limit: the page after this cursor (printed as \"next page\")")
	f.StringVar(&q.Before, "before", "", "with --limit: the page before this cursor (printed as \"previous page\")")
	f.BoolVar(&asJSON, "json", false, "print as JSON: an array of devices, each with its failing rules, failing since and next deadline")
	staleFlag(list, &interval)
	cmd.AddCommand(list)
	return cmd
}
