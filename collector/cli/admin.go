package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store"
)

// readPassword reads a password from the command's standard input (its
// first line), or generates one when stdin is a terminal or empty.
func readPassword(cmd *cobra.Command) (password string, generated bool, err error) {
	if f, ok := cmd.InOrStdin().(*os.File); !ok || !isTerminal(f) {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, fmt.Errorf("read password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		return dashboard.GeneratePassword(), true, nil
	}
	return password, false, nil
}

// userError turns the store's refusals of a user change into input
// errors (exit 3) that say what to do.
func userError(name string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return inputError{fmt.Errorf("no user %s (ward-collector user list shows them)", name)}
	case errors.Is(err, store.ErrLastAdmin):
		return inputError{fmt.Errorf("refused: %s is the only admin, and the dashboard must keep one; make another user admin first (ward-collector user set-role OTHER --role admin)", name)}
	}
	return err
}

// addUserCommands adds the commands that manage existing users to user.
func (a *app) addUserCommands(cmd *cobra.Command) {
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List dashboard users with their role and live sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			us, err := st.UserList(cmd.Context(), a.now())
			if err != nil {
				return err
			}
			if listJSON {
				if us == nil {
					us = []store.UserInfo{}
				}
				return a.printJSON(us)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tSESSIONS\tLAST SIGN-IN\tCREATED")
			for _, u := range us {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", u.Name, u.Role, u.Sessions, when(u.LastSession), u.CreatedAt.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print as JSON")

	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a dashboard user and end their sessions (never the only admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			name := args[0]
			u, err := st.User(cmd.Context(), name)
			if err != nil {
				return userError(name, err)
			}
			e := store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "user.remove", Target: name, Detail: "was " + u.Role}
			if err := st.RemoveUser(cmd.Context(), name, e); err != nil {
				return userError(name, err)
			}
			fmt.Fprintf(a.stdout, "removed %s user %s; their sessions are ended\n", u.Role, name)
			return nil
		},
	}

	reset := &cobra.Command{
		Use:   "reset-password NAME",
		Short: "Set a user's new password (from stdin, or generated and printed) and end their sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			password, generated, err := readPassword(cmd)
			if err != nil {
				return err
			}
			hash, err := dashboard.HashPassword(password)
			if err != nil {
				return inputError{err}
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			e := store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "user.reset-password", Target: name, Detail: "new password; sessions ended"}
			if err := st.SetUserPassword(cmd.Context(), name, hash, e); err != nil {
				return userError(name, err)
			}
			fmt.Fprintf(a.stdout, "new password for %s; their sessions are ended\n", name)
			if generated {
				fmt.Fprintf(a.stdout, "password: %s\n", password)
			}
			return nil
		},
	}

	var role string
	setRole := &cobra.Command{
		Use:   "set-role NAME --role admin|viewer",
		Short: "Change a user's role; their sessions go on with the new one (the only admin is never demoted)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role != store.RoleAdmin && role != store.RoleViewer {
				return inputError{fmt.Errorf("--role %q: want admin or viewer", role)}
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			name := args[0]
			u, err := st.User(cmd.Context(), name)
			if err != nil {
				return userError(name, err)
			}
			e := store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "user.set-role", Target: name, Detail: u.Role + " → " + role}
			changed, err := st.SetUserRole(cmd.Context(), name, role, e)
			if err != nil {
				return userError(name, err)
			}
			if !changed {
				fmt.Fprintf(a.stdout, "%s is already %s; nothing changed\n", name, role)
				return nil
			}
			fmt.Fprintf(a.stdout, "%s is now %s (was %s)\n", name, role, u.Role)
			return nil
		},
	}
	setRole.Flags().StringVar(&role, "role", "", "admin or viewer")

	end := &cobra.Command{
		Use:   "end-sessions NAME",
		Short: "Sign a user out everywhere: end every session of theirs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			name := args[0]
			e := store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "user.end-sessions", Target: name, Detail: "every session ended"}
			n, err := st.EndSessions(cmd.Context(), name, e)
			if err != nil {
				return userError(name, err)
			}
			fmt.Fprintf(a.stdout, "ended %d live session(s) of %s\n", n, name)
			return nil
		},
	}
	cmd.AddCommand(list, remove, reset, setRole, end)
}

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log: who changed what, when, from the dashboard or the CLI"}
	var (
		asJSON bool
		limit  int
		f      store.AuditFilter
		since  string
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit entries, newest first",
		Long: `List audit entries, newest first.

--actor matches exactly: a dashboard user ("amina"), the CLI run by an
operating system user ("cli:root") or an enrolment token ("token tok_…").
--action matches exactly, or every action under a prefix ending in a dot
("user." is user.add, user.remove, …). --since takes a date (its start,
UTC), an RFC 3339 time or a duration back from now (24h).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 100000 {
				return inputError{fmt.Errorf("--limit %d: want 1 to 100000", limit)}
			}
			f.Limit = limit
			if since != "" {
				t, err := parseSince(since, a.now())
				if err != nil {
					return inputError{err}
				}
				f.Since = t
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			es, err := st.AuditQuery(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				if es == nil {
					es = []store.AuditEntry{}
				}
				return a.printJSON(es)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tAT\tACTOR\tACTION\tTARGET\tDETAIL")
			for _, e := range es {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339), e.Actor, e.Action, orDash(e.Target), e.Detail)
			}
			return w.Flush()
		},
	}
	fl := list.Flags()
	fl.BoolVar(&asJSON, "json", false, "print as JSON")
	fl.IntVar(&limit, "limit", 100, "at most this many entries")
	fl.StringVar(&f.Actor, "actor", "", "only entries by this actor")
	fl.StringVar(&f.Action, "action", "", `only this action, or a prefix ending in "." ("user.")`)
	fl.StringVar(&f.Target, "target", "", "only entries about this target (a device, user, token or waiver id)")
	fl.StringVar(&since, "since", "", "only entries at or after: 2006-01-02, RFC 3339, or a duration back from now (24h)")
	fl.Int64Var(&f.Before, "before", 0, "only entries with an id below this (the next page)")
	cmd.AddCommand(list)
	return cmd
}

// parseSince reads --since: a date (its start, UTC), an RFC 3339 time,
// or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give 2006-01-02, an RFC 3339 time or a duration such as 24h", s)
}

// tokenShowCommand is token show: one token's rollout.
func (a *app) tokenShowCommand() *cobra.Command {
	var (
		asJSON   bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a token's rollout: the devices enrolled with it, which never reported, their agent versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			ro, err := st.TokenRollout(cmd.Context(), args[0])
			if errors.Is(err, store.ErrNotFound) {
				return inputError{fmt.Errorf("no token %s (ward-collector token list shows them)", args[0])}
			}
			if err != nil {
				return err
			}
			now := a.now()
			if asJSON {
				type dev struct {
					ID           string             `json:"id"`
					Hostname     string             `json:"hostname"`
					Group        string             `json:"group"`
					By           string             `json:"by"`
					At           time.Time          `json:"at"`
					LastSeen     *time.Time         `json:"last_seen"`
					AgentVersion string             `json:"agent_version"`
					Status       store.DeviceStatus `json:"status"`
				}
				out := struct {
					Token         tokenJSON      `json:"token"`
					Devices       []dev          `json:"devices"`
					Enrolled      int            `json:"enrolled"`
					NeverReported int            `json:"never_reported"`
					AgentVersions map[string]int `json:"agent_versions"`
				}{Token: newTokenJSON(ro.Token, now), Devices: []dev{}, Enrolled: len(ro.Devices), NeverReported: ro.NeverReported(), AgentVersions: ro.AgentVersions()}
				for _, d := range ro.Devices {
					out.Devices = append(out.Devices, dev{d.ID, d.Hostname, d.Group, d.By, d.At, d.LastSeen, d.AgentVersion, d.Status(now, 3*interval)})
				}
				return a.printJSON(out)
			}
			t := ro.Token
			fmt.Fprintf(a.stdout, "token %s: group %s, %d of %d uses left, expires %s, %s\n", t.ID, t.Group, t.UsesLeft, t.Uses, t.ExpiresAt.Format(time.RFC3339), t.State(now))
			fmt.Fprintf(a.stdout, "%d device(s) enrolled with it, %d never reported\n", len(ro.Devices), ro.NeverReported())
			versions := ro.AgentVersions()
			var vs []string
			for v, n := range versions {
				vs = append(vs, fmt.Sprintf("%s: %d", orDash(v), n))
			}
			slices.Sort(vs)
			if len(vs) > 0 {
				fmt.Fprintf(a.stdout, "agent versions: %s\n", strings.Join(vs, ", "))
			}
			if len(ro.Devices) == 0 {
				return nil
			}
			fmt.Fprintln(a.stdout)
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DEVICE\tHOSTNAME\tENROLLED\tBY\tLAST SEEN\tAGENT\tSTATUS")
			for _, d := range ro.Devices {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Hostname, d.At.Format(time.RFC3339), strings.TrimPrefix(d.By, "device."), when(d.LastSeen), orDash(d.AgentVersion), d.Status(now, 3*interval))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	staleFlag(cmd, &interval)
	return cmd
}

// tokenJSON is a token as token list --json prints it.
type tokenJSON struct {
	ID        string     `json:"id"`
	Group     string     `json:"group"`
	Uses      int        `json:"uses"`
	UsesLeft  int        `json:"uses_left"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	State     string     `json:"state"`
	Rebind    string     `json:"rebind_device,omitempty"`
}

func newTokenJSON(t store.Token, now time.Time) tokenJSON {
	return tokenJSON{t.ID, t.Group, t.Uses, t.UsesLeft, t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.State(now), t.RebindDevice}
}

// waiverJSON is a waiver as waiver list prints it: with the hostname of
// its device (empty for a group's waiver, or a device that is gone).
type waiverJSON struct {
	store.Waiver
	Hostname string `json:"hostname,omitempty"`
}

// revokeDevice revokes (with retire, retires) a device and writes its
// audit entry in the same transaction. An unknown device is an input
// error.
func (a *app) revokeDevice(ctx context.Context, st store.Store, id string, retire bool) error {
	d, err := st.Device(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return inputError{fmt.Errorf("no device %s (ward-collector devices list shows them)", id)}
	}
	if err != nil {
		return err
	}
	ad, ok := st.(store.Admin)
	if !ok {
		return fmt.Errorf("store %T keeps no audit log", st)
	}
	action := "device.revoke"
	if retire {
		action = "device.retire"
	}
	e := store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: action, Target: id, Detail: "hostname " + d.Hostname + ", group " + d.Group}
	if err := ad.RevokeDeviceAudited(ctx, id, retire, e); errors.Is(err, store.ErrNotFound) {
		return inputError{fmt.Errorf("no device %s", id)}
	} else if err != nil {
		return err
	}
	return nil
}
