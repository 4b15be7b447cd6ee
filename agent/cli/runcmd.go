package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/service"
)

func (a *app) runCommand() *cobra.Command {
	var (
		once      bool
		state     string
		statusDir string
		interval  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run [--once]",
		Short: "Collect, evaluate and report to the collector, in the foreground",
		Long: `run checks this device every interval (with ±10% jitter), evaluates the
facts against the policy the collector assigned (the embedded baseline until
it has sent one), queues each report in a durable outbox in the state
directory and delivers the queue to the collector, retrying with backoff
while it is unreachable. It runs until interrupted.

With --once it does one round and exits 0 when the report was delivered or
safely queued.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < time.Second {
				return usagef("--interval: at least 1s")
			}
			if state == "" {
				state = enroll.DefaultStateDir()
			}
			pub, stopStatus := startStatus(cmd.Context(), statusDir, state, a.log)
			defer stopStatus()
			svc, err := service.New(service.Config{
				StateDir: state, Source: a.newSource(), AgentVersion: a.version,
				Lang: langFromEnv(), Interval: interval, Log: a.log, Status: pub,
			})
			if errors.Is(err, enroll.ErrNotEnrolled) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			defer svc.Close()
			if !once {
				return svc.Run(cmd.Context())
			}
			out, err := svc.Once(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "report %d queued; %d delivered, %d waiting\n", out.Sequence, out.Delivered, out.Waiting)
			if out.DeliveryErr != nil {
				fmt.Fprintf(a.stderr, "ward-agent: collector not reached, reports stay queued: %v\n", out.DeliveryErr)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&once, "once", false, "do one round and exit")
	f.StringVar(&statusDir, "status-dir", notify.DefaultDir(), "where to publish the status for ward-agent status and notify")
	f.StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	f.DurationVar(&interval, "interval", service.DefaultInterval, "time between collections")
	return cmd
}
