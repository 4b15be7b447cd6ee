package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wardhq/ward/collector/events"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
)

// eventOptions are serve's flags for webhooks and the SIEM stream
// (docs/integrations.md).
type eventOptions struct {
	webhookURL    string
	webhookSecret string
	webhookEvents []string
	maxAttempts   int
	file          string
	syslog        string
	retain        time.Duration
}

func eventFlags(f *pflag.FlagSet, o *eventOptions) {
	f.StringVar(&o.webhookURL, "webhook-url", "", "POST every event, signed with HMAC-SHA256, to this http(s) URL (needs --webhook-secret-file; docs/integrations.md)")
	f.Var(tokenFileFlag{&o.webhookSecret}, "webhook-secret-file", "file holding the webhook's shared secret (16 to 4096 characters without spaces)")
	f.StringSliceVar(&o.webhookEvents, "webhook-events", nil, "event types the webhook gets, comma-separated (default all: "+strings.Join(events.Types, ", ")+")")
	f.IntVar(&o.maxAttempts, "webhook-max-attempts", 8, "attempts per event before it is given up (backoff 1s doubling to 5m, with jitter)")
	f.StringVar(&o.file, "event-file", "", "append every event as a JSON line to this file (fsynced per batch), for a SIEM")
	f.StringVar(&o.syslog, "event-syslog", "", "send every event as a JSON line to syslog: local, udp://host:port or tcp://host:port")
	f.DurationVar(&o.retain, "events-retain", 30*24*time.Hour, "how long events and the webhook delivery log are kept in the store")
}

// enabled reports whether any sink is configured.
func (o *eventOptions) enabled() bool {
	return o.webhookURL != "" || o.file != "" || o.syslog != ""
}

// check validates the flags and, with a sink, has the server record its
// events.
func (o *eventOptions) check(cfg *server.Config) error {
	if o.webhookURL != "" {
		u, err := url.Parse(o.webhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return inputError{fmt.Errorf("--webhook-url %q: want an http:// or https:// URL", events.RedactURL(o.webhookURL))}
		}
		if o.webhookSecret == "" {
			return inputError{errors.New("--webhook-url needs --webhook-secret-file: every request is signed with it")}
		}
	} else if o.webhookSecret != "" || len(o.webhookEvents) > 0 {
		return inputError{errors.New("--webhook-secret-file and --webhook-events need --webhook-url")}
	}
	for _, t := range o.webhookEvents {
		if !slices.Contains(events.Types, t) {
			return inputError{fmt.Errorf("--webhook-events: unknown event type %q (have %s)", t, strings.Join(events.Types, ", "))}
		}
	}
	if o.maxAttempts < 1 {
		return inputError{errors.New("--webhook-max-attempts: want 1 or more")}
	}
	if o.retain <= 0 {
		return inputError{errors.New("--events-retain: want a positive duration")}
	}
	if o.enabled() {
		cfg.Events = events.Recorder{Log: cfg.Logger}
	}
	return nil
}

// start opens the sinks, sets the dispatcher's cursors and runs it on
// srv's store; stop ends it and closes them. Call it before srv.Start,
// so that no event recorded once serving is taken for history. Without a
// sink it does nothing.
func (o *eventOptions) start(srv *server.Server, log *slog.Logger) (stop func(), err error) {
	if !o.enabled() {
		return func() {}, nil
	}
	st, ok := srv.Store().(store.Dashboard)
	el, ok2 := srv.Store().(store.EventLog)
	if !ok || !ok2 {
		return nil, fmt.Errorf("events: the store (%T) keeps no events outbox", srv.Store())
	}
	var sinks []events.Sink
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range closers {
				c()
			}
		}
	}()
	if o.webhookURL != "" {
		w := &events.Webhook{URL: o.webhookURL, Secret: []byte(o.webhookSecret), MaxAttempts: o.maxAttempts, Log: el, Logger: log}
		if len(o.webhookEvents) > 0 {
			w.Types = map[string]bool{}
			for _, t := range o.webhookEvents {
				w.Types[t] = true
			}
		}
		sinks = append(sinks, w)
	}
	if o.file != "" {
		f, err := events.OpenFile(o.file, log)
		if err != nil {
			return nil, inputError{err}
		}
		sinks, closers = append(sinks, f), append(closers, f.Close)
	}
	if o.syslog != "" {
		s, err := events.DialSyslog(o.syslog, log)
		if err != nil {
			return nil, inputError{err}
		}
		sinks, closers = append(sinks, s), append(closers, s.Close)
	}
	d, err := events.New(events.Config{Store: st, Sinks: sinks, DefaultPolicy: server.DefaultPolicy, Retain: o.retain, Logger: log})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Init(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("events: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
		for _, c := range closers {
			c()
		}
	}, nil
}

// recordRevoke records a device's revocation for webhooks and the SIEM
// stream. The revocation has happened; failing to record it is said, not
// an error of the command.
func (a *app) recordRevoke(ctx context.Context, st store.Store, id, actor string, retired bool) {
	if err := events.RecordRevoke(ctx, st, id, actor, retired, a.now().UTC()); err != nil {
		fmt.Fprintf(a.stderr, "warning: the revocation is done but no event was recorded for webhooks: %v\n", err)
	}
}

func (a *app) webhookCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Show the webhook delivery log, send events again"}
	var (
		limit  int
		asJSON bool
	)
	deliveries := &cobra.Command{
		Use:   "deliveries",
		Short: "List webhook delivery attempts, newest first: event, attempt, HTTP status, outcome (delivered, retry, failed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return inputError{errors.New("--limit: want 0 (all) or more")}
			}
			st, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			el, ok := st.(store.EventLog)
			if !ok {
				return fmt.Errorf("the store (%T) keeps no delivery log", st)
			}
			ds, err := el.Deliveries(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				if ds == nil {
					ds = []store.Delivery{}
				}
				return a.printJSON(ds)
			}
			if len(ds) == 0 {
				fmt.Fprintln(a.stdout, "no deliveries (serve --webhook-url sends events; docs/integrations.md)")
				return nil
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "AT\tEVENT\tTYPE\tATTEMPT\tSTATUS\tOUTCOME\tTOOK\tURL\tERROR")
			for _, d := range ds {
				status := "-"
				if d.Status != 0 {
					status = fmt.Sprint(d.Status)
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.At.UTC().Format(time.RFC3339), d.EventID, d.EventType, d.Attempt, status, d.Outcome,
					d.Duration.Round(time.Millisecond), d.URL, d.Error)
			}
			return w.Flush()
		},
	}
	deliveries.Flags().IntVar(&limit, "limit", 50, "show at most this many attempts (0: all)")
	deliveries.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	var (
		from int64
		sink string
	)
	replay := &cobra.Command{
		Use:   "replay --from ID",
		Short: "Send the events from ID on again (after a receiver was down or refused them): moves the sink's cursor back; a running collector follows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if from < 1 {
				return inputError{errors.New("--from: want the id of the first event to send again (see webhook deliveries)")}
			}
			if !slices.Contains([]string{"webhook", "file", "syslog"}, sink) {
				return inputError{fmt.Errorf("--sink %q: want webhook, file or syslog", sink)}
			}
			st, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			el, ok := st.(store.EventLog)
			if !ok {
				return fmt.Errorf("the store (%T) keeps no events", st)
			}
			name := "sink:" + sink
			cur, ok, err := el.Cursor(ctx, name)
			if err != nil {
				return err
			}
			if !ok {
				return inputError{fmt.Errorf("no %s sink has run on this store (serve --webhook-url, --event-file or --event-syslog starts one)", sink)}
			}
			if from-1 >= cur {
				return inputError{fmt.Errorf("the %s sink has not sent event %d yet (it is after event %d)", sink, from, cur)}
			}
			if got, err := el.EventsAfter(ctx, from-1, 1); err != nil {
				return err
			} else if len(got) == 0 || got[0].ID != from {
				return inputError{fmt.Errorf("no event %d (pruned after --events-retain, or never recorded)", from)}
			}
			if moved, err := el.MoveCursor(ctx, name, cur, from-1); err != nil {
				return err
			} else if !moved {
				return errors.New("the sink's cursor moved meanwhile (a running collector sent more); run replay again")
			}
			d, ok := st.(store.Dashboard)
			if !ok {
				return fmt.Errorf("the store (%T) keeps no audit log", st)
			}
			if err := d.AddAudit(ctx, store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "events.replay", Target: sink,
				Detail: fmt.Sprintf("cursor from %d back to %d: events %d to %d sent again", cur, from-1, from, cur)}); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "the %s sink sends events %d to %d again (and what came after)\n", sink, from, cur)
			return nil
		},
	}
	replay.Flags().Int64Var(&from, "from", 0, "the first event id to send again")
	replay.Flags().StringVar(&sink, "sink", "webhook", "the sink: webhook, file or syslog")
	cmd.AddCommand(deliveries, replay)
	return cmd
}
