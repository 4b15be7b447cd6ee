package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
)

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke enrolment tokens"}
	var (
		group  string
		uses   int
		ttl    time.Duration
		asJSON bool
		rebind string
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an enrolment token, or with --rebind a re-bind token for one device (printed once; only its hash is kept)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case rebind == "" && group == "":
				return errors.New("--group is required (or --rebind DEVICE_ID)")
			case rebind != "" && (group != "" || cmd.Flags().Changed("uses")):
				return errors.New("--rebind takes neither --group nor --uses: a re-bind token is for its device's group, once")
			}
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var (
				plain string
				t     store.Token
			)
			d, ok := st.(store.Dashboard)
			if !ok {
				return fmt.Errorf("store %T keeps no audit log", st)
			}
			// The token and its audit entry are one write.
			audited := token.Audited(d, func(t store.Token) store.AuditEntry {
				detail := fmt.Sprintf("group %s, %d uses, expires %s", t.Group, t.Uses, t.ExpiresAt.Format(time.RFC3339))
				if t.RebindDevice != "" {
					detail = "re-bind device " + t.RebindDevice + ", expires " + t.ExpiresAt.Format(time.RFC3339)
				}
				return store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "token.create", Target: t.ID, Detail: detail}
			})
			if rebind != "" {
				if !cmd.Flags().Changed("ttl") {
					ttl = token.DefaultRebindTTL
				}
				plain, t, err = token.CreateRebind(cmd.Context(), audited, rebind, ttl, a.now())
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("create re-bind token: no device %s", rebind)
				}
			} else {
				plain, t, err = token.Create(cmd.Context(), audited, group, uses, ttl, a.now())
			}
			if err != nil {
				return fmt.Errorf("create token: %w", err)
			}
			if asJSON {
				return a.printJSON(struct {
					Token string `json:"token"`
					ID    string `json:"id"`
					Group string `json:"group"`
					Uses  int    `json:"uses"`
					Exp   string `json:"expires_at"`
					Dev   string `json:"rebind_device,omitempty"`
				}{plain, t.ID, t.Group, t.Uses, t.ExpiresAt.Format(time.RFC3339), t.RebindDevice})
			}
			fmt.Fprintf(a.stdout, "%s\n", plain)
			if t.RebindDevice != "" {
				fmt.Fprintf(a.stderr, "token %s re-binds device %s once (enrol the machine with it), expires %s. It is shown only now.\n", t.ID, t.RebindDevice, t.ExpiresAt.Format(time.RFC3339))
				return nil
			}
			fmt.Fprintf(a.stderr, "token %s: group %s, %d use(s), expires %s. It is shown only now.\n", t.ID, t.Group, t.Uses, t.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	create.Flags().StringVar(&group, "group", "", "group the enrolled devices join (selects their policy)")
	create.Flags().IntVar(&uses, "uses", 1, "how many devices may enrol with it")
	create.Flags().DurationVar(&ttl, "ttl", 72*time.Hour, "how long it is valid")
	create.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	create.Flags().StringVar(&rebind, "rebind", "", "make a single-use re-bind token for this device id (default ttl 1h, at most 24h)")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List enrolment tokens (never the tokens themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ts, err := st.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			now := a.now()
			if listJSON {
				out := []tokenJSON{}
				for _, t := range ts {
					out = append(out, newTokenJSON(t, now))
				}
				return a.printJSON(out)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tGROUP\tUSES LEFT\tEXPIRES\tSTATE\tRE-BINDS")
			for _, t := range ts {
				fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", t.ID, t.Group, t.UsesLeft, t.Uses, t.ExpiresAt.Format(time.RFC3339), t.State(now), orDash(t.RebindDevice))
			}
			return w.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print as JSON")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an enrolment token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			d, ok := st.(store.Dashboard)
			if !ok {
				return fmt.Errorf("store %T keeps no audit log", st)
			}
			if err := d.RevokeTokenAudited(cmd.Context(), args[0], store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "token.revoke", Target: args[0]}); errors.Is(err, store.ErrNotFound) {
				return inputError{fmt.Errorf("no token %s", args[0])}
			} else if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked token %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, a.tokenShowCommand(), revoke)
	return cmd
}
