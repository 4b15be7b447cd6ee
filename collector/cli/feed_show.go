package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/feedstate"
	"github.com/wardhq/ward/policies/texts"
)

func init() { feedSubcommands = append(feedSubcommands, (*app).feedShowCommand) }

// FeedShow is what "ward-collector feed show --json" prints (docs/feed.md,
// "Seeing the feed"). Its fields are stable: new ones may be added, none
// renamed or removed.
type FeedShow struct {
	// Serial is the current feed's serial.
	Serial uint64 `json:"serial"`
	// BuiltIn says it is the snapshot built into the collector.
	BuiltIn bool `json:"built_in"`
	// StoredSerial is the greatest imported serial (0: none imported).
	StoredSerial uint64 `json:"stored_serial"`
	// ImportedAt is when the current feed was imported (absent when built
	// in).
	ImportedAt *time.Time `json:"imported_at,omitempty"`
	// StoredError says why the stored feed of StoredSerial cannot be read,
	// when it cannot.
	StoredError string    `json:"stored_error,omitempty"`
	GeneratedAt time.Time `json:"generated_at"`
	// AgeDays is whole days since GeneratedAt.
	AgeDays   int       `json:"age_days"`
	ExpiresAt time.Time `json:"expires_at"`
	// DaysLeft is whole days left before ExpiresAt, negative once past.
	DaysLeft int `json:"days_left"`
	// Expired: past ExpiresAt the feed judges nothing (UNKNOWN).
	Expired  bool `json:"expired"`
	Lines    int  `json:"lines"`
	Releases int  `json:"releases"`
	// Sources are the files the feed was built from.
	Sources []FeedShowSource `json:"sources"`
	// EOLWithinDays is --days; EOL lists the devices whose line reaches
	// its end of life within it, or has.
	EOLWithinDays int                 `json:"eol_within_days"`
	EOL           feedstate.EOLReport `json:"eol"`
}

// FeedShowSource is one source of the feed.
type FeedShowSource struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// feedShowCommand is "ward-collector feed show": the current feed, as the
// running collector chooses it (collector/feedstate).
func (a *app) feedShowCommand() *cobra.Command {
	var (
		asJSON bool
		days   int
	)
	cmd := &cobra.Command{
		Use:   "show [--json] [--days N]",
		Short: "Show the current release feed: serial, age, expiry, sources, and the devices on lines reaching end of life",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days < 0 {
				return inputError{fmt.Errorf("--days %d: want 0 or more", days)}
			}
			ctx := cmd.Context()
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			cur, err := feedstate.Current(ctx, st)
			if err != nil {
				return err
			}
			if cur.Feed == nil {
				why := texts.Render("en", cur.Why)
				if cur.StoredErr != nil {
					why = cur.StoredErr.Error()
				} else if why == "" && cur.SnapshotErr != nil {
					why = cur.SnapshotErr.Error()
				}
				return errors.New("no current release feed: every verdict that needs it is UNKNOWN: " + why)
			}
			now := a.now().UTC()
			f := cur.Feed
			show := FeedShow{
				Serial: f.Serial, BuiltIn: cur.BuiltIn, StoredSerial: cur.StoredSerial,
				GeneratedAt: f.GeneratedAt.UTC(), AgeDays: feedstate.AgeDays(f, now),
				ExpiresAt: f.ExpiresAt.UTC(), DaysLeft: feedstate.DaysLeft(f, now), Expired: feedstate.Expired(f, now),
				Lines: len(f.Lines), Sources: []FeedShowSource{}, EOLWithinDays: days,
			}
			if !cur.ImportedAt.IsZero() {
				t := cur.ImportedAt.UTC()
				show.ImportedAt = &t
			}
			if cur.StoredErr != nil {
				show.StoredError = cur.StoredErr.Error()
			}
			for _, l := range f.Lines {
				show.Releases += len(l.Releases)
			}
			for _, s := range f.Sources {
				show.Sources = append(show.Sources, FeedShowSource{s.Name, s.SHA256})
			}
			if show.EOL, err = feedstate.EOLWithin(ctx, st, f, now, days); err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(show)
			}
			a.printFeedShow(show)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (docs/feed.md, \"Seeing the feed\")")
	cmd.Flags().IntVar(&days, "days", feedstate.DefaultEOLDays, "list the devices whose line reaches end of life within this many days")
	return cmd
}

func (a *app) printFeedShow(s FeedShow) {
	w := a.stdout
	origin := "built in (no newer feed imported)"
	if !s.BuiltIn {
		origin = "imported"
		if s.ImportedAt != nil {
			origin += " " + s.ImportedAt.Format(time.RFC3339)
		}
	}
	fmt.Fprintf(w, "release feed serial %d, %s\n", s.Serial, origin)
	if s.StoredError != "" {
		fmt.Fprintf(w, "WARNING: the imported feed %d cannot be read (%s): the built-in feed is used\n", s.StoredSerial, s.StoredError)
	} else if s.BuiltIn && s.StoredSerial > 0 {
		fmt.Fprintf(w, "the imported feed %d is older than the built-in one\n", s.StoredSerial)
	}
	fmt.Fprintf(w, "generated %s (%d days ago)\n", s.GeneratedAt.Format(time.RFC3339), s.AgeDays)
	if s.Expired {
		fmt.Fprintf(w, "EXPIRED %s (%d days ago): the feed judges nothing, every verdict by it is UNKNOWN; import a newer one (ward-collector feed import)\n", s.ExpiresAt.Format(time.RFC3339), -s.DaysLeft)
	} else {
		fmt.Fprintf(w, "expires %s (%d days left)\n", s.ExpiresAt.Format(time.RFC3339), s.DaysLeft)
	}
	fmt.Fprintf(w, "%d lines, %d releases\n\nsources:\n", s.Lines, s.Releases)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, src := range s.Sources {
		fmt.Fprintf(tw, "  %s\t%s\n", src.Name, src.SHA256)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ndevices on lines that reach end of life within %d days or have (%d devices with a report", s.EOLWithinDays, s.EOL.Checked)
	if s.EOL.Unplaced > 0 {
		fmt.Fprintf(w, ", %d on no line of the feed: not known", s.EOL.Unplaced)
	}
	fmt.Fprintln(w, "):")
	if len(s.EOL.Devices) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOSTNAME\tID\tGROUP\tLINE\tEOL\tDAYS LEFT")
	for _, d := range s.EOL.Devices {
		left := fmt.Sprint(d.DaysLeft)
		if d.DaysLeft < 0 {
			left = fmt.Sprintf("PAST (%d days ago)", -d.DaysLeft)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Hostname, d.DeviceID, d.Group, d.LineID, d.EOL, left)
	}
	tw.Flush()
}
