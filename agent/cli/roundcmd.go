package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/service"
	"github.com/wardhq/ward/agent/source"
)

// roundWaitDelay is how long a round's child may take to stop once asked
// before it is killed; less than stopTimeout, so the daemon still stops
// in time.
const roundWaitDelay = 15 * time.Second

// maxRoundResult bounds what the daemon reads from a round's stdout.
const maxRoundResult = 1 << 20

// roundCommand is the daemon's child: one round (collect, evaluate,
// deliver) in a process that exits after it, so that what the round
// touches (collection, the policy engine, TLS and the calls to the
// collector) is never paged into the long-lived daemon. It prints the
// service.RoundResult as JSON on stdout and logs JSON lines on stderr,
// which the daemon logs as its own. Hidden: only the daemon runs it.
func (a *app) roundCommand() *cobra.Command {
	var (
		state, statusDir     string
		refresh, deliverOnly bool
	)
	cmd := &cobra.Command{
		Use:    "round",
		Short:  "Run one round of the daemon (the daemon runs it)",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				state = a.layout.StateDir
			}
			// A service manager stopping the service may signal the whole
			// group: the round stops as the daemon would, never halfway
			// through writing the outbox.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			res, err := a.round(ctx, log, state, statusDir, service.RoundOptions{RefreshPolicy: refresh, Collect: !deliverOnly})
			if err != nil {
				return err
			}
			return json.NewEncoder(a.stdout).Encode(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "state directory")
	f.StringVar(&statusDir, "status-dir", notify.DefaultDir(), "where to publish the status")
	f.BoolVar(&refresh, "refresh-policy", false, "fetch the policy first")
	f.BoolVar(&deliverOnly, "deliver-only", false, "only deliver the outbox")
	return cmd
}

// round runs one round in this process. The status goes to statusDir's
// files only: the daemon publishes it on its endpoint and to the desktop
// users (notify.Server.Load).
func (a *app) round(ctx context.Context, log *slog.Logger, state, statusDir string, o service.RoundOptions) (service.RoundResult, error) {
	var pub service.StatusPublisher
	if srv, err := notify.NewServer(statusDir, log); err != nil {
		log.Warn("cannot publish the local status", "err", err, "status_dir", statusDir)
	} else {
		srv.StateDir, srv.NoCopies = state, true
		pub = srv
	}
	// service.New compiles the policies (see compactLoad).
	gc := debug.SetGCPercent(25)
	svc, err := service.New(service.Config{StateDir: state, Source: a.newSource(), AgentVersion: a.version,
		Lang: langFromEnv(), Log: log, Status: pub})
	runtime.GC()
	debug.SetGCPercent(gc)
	if errors.Is(err, enroll.ErrNotEnrolled) {
		return service.RoundResult{NotEnrolled: true}, nil
	}
	if err != nil {
		return service.RoundResult{}, err
	}
	defer svc.Close()
	return svc.Round(ctx, o), nil
}

// childRound runs each round as `ward-agent round` in a child process of
// this program, with the daemon's state and status directories, through
// source.Self (agent/source stays the one door for running programs).
// When ctx ends the child is interrupted, and killed after
// roundWaitDelay.
func childRound(program, state, statusDir string, log *slog.Logger) func(context.Context, service.RoundOptions) (service.RoundResult, error) {
	return func(ctx context.Context, o service.RoundOptions) (service.RoundResult, error) {
		args := []string{"round", "--state", state, "--status-dir", statusDir}
		if o.RefreshPolicy {
			args = append(args, "--refresh-policy")
		}
		if !o.Collect {
			args = append(args, "--deliver-only")
		}
		var stdout bytes.Buffer
		pid, err := source.Self{Program: program, Args: args, Stdout: &limitedWriter{w: &stdout, n: maxRoundResult},
			Stderr: func(pid int, r io.Reader) { relog(log.With("round_pid", pid), r) }, WaitDelay: roundWaitDelay}.Run(ctx)
		if err != nil {
			return service.RoundResult{}, fmt.Errorf("round: %w", err)
		}
		var res service.RoundResult
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			return service.RoundResult{}, fmt.Errorf("round (pid %d) printed no result: %w: %q", pid, err, stdout.Bytes())
		}
		log.Debug("round done", "round_pid", pid, "sequence", res.Sequence, "delivered", res.Delivered, "waiting", res.Waiting)
		return res, nil
	}
}

// relog logs each JSON line a round's child writes to r with log, at the
// child's level; a line that is not a log record is logged as it is.
func relog(log *slog.Logger, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			log.Warn("round output", "line", sc.Text())
			continue
		}
		var lvl slog.Level
		if s, ok := rec[slog.LevelKey].(string); ok {
			lvl.UnmarshalText([]byte(s))
		}
		msg, _ := rec[slog.MessageKey].(string)
		if !log.Enabled(context.Background(), lvl) {
			continue
		}
		attrs := make([]any, 0, 2*len(rec))
		for _, k := range slices.Sorted(maps.Keys(rec)) {
			if k != slog.TimeKey && k != slog.LevelKey && k != slog.MessageKey {
				attrs = append(attrs, k, rec[k])
			}
		}
		log.Log(context.Background(), lvl, msg, attrs...)
	}
}

// limitedWriter keeps the first n bytes written and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	k := min(len(p), l.n)
	if k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// enrolled says whether state holds an identity, without loading it.
func enrolled(state string) bool {
	_, err := os.Stat(filepath.Join(state, enroll.DeviceFile))
	return err == nil
}
