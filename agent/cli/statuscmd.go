package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/service"
	"github.com/wardhq/ward/policies"
)

// userStatusCommand is `ward-agent status`: what the person at the keyboard
// must fix, read from the service's local status endpoint. It needs no
// admin rights. --service shows the service and enrolment instead.
func (a *app) userStatusCommand() *cobra.Command {
	var (
		asJSON, svc bool
		lang, dir   string
	)
	service := a.statusCommand()
	cmd := &cobra.Command{
		Use:   "status [--json] [--lang LANG]",
		Short: "Show what needs fixing on this laptop, in plain words",
		Long: `status shows, in your language, each thing that needs fixing on this laptop:
what is wrong, why it matters, the steps for this system and the deadline. It
reads the Ward service's local status (or the last status it saved when the
service is not running) and needs no admin rights and no network.

Only root and the people logged in at this computer (not over SSH) can read
it; on Linux without systemd-logind, only root.

Exit codes: 0 all good, 1 something to fix, 2 something could not be checked
(or the status could not be read).
A failure your organisation accepted (a waiver) counts as good until the
waiver ends.
With --service it shows the service's state and the enrolment instead.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if svc {
				return service.RunE(cmd, nil)
			}
			cfg, err := loadUserConfig(userConfigPath())
			if err != nil {
				a.log.Warn("config file unreadable; using defaults", "err", err)
			}
			lang = chooseLang(a.stderr, lang, cfg.Lang)
			if !asJSON {
				a.rtlOutput(lang)
			}
			st, origin, err := notify.Read(cmd.Context(), dir)
			if errors.Is(err, notify.ErrNoStatus) {
				if asJSON {
					return err
				}
				fmt.Fprintln(a.stdout, i18n.T(lang, "status.none"))
				return exitError{ExitUnknown}
			}
			if errors.Is(err, notify.ErrNotDesktopUser) && !asJSON {
				fmt.Fprintln(a.stdout, notAllowed(lang, "ward-agent status"))
				return exitError{ExitUnknown}
			}
			if err != nil {
				return err
			}
			if origin == notify.FromFile {
				state, _ := cmd.Flags().GetString("state")
				if err := ownStatus(st, state); err != nil {
					if asJSON {
						return err
					}
					fmt.Fprintln(a.stdout, err)
					return exitError{ExitUnknown}
				}
			}
			now := a.clock()
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					notify.Status
					From notify.Origin `json:"from"`
				}{st, origin}); err != nil {
					return err
				}
			} else {
				renderStatus(a.stdout, st, origin, lang, now)
			}
			return statusExit(st, now)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the status as JSON (every language's texts)")
	f.StringVar(&lang, "lang", "", "language: "+strings.Join(i18n.Languages, ", ")+" (default from the config file, then the system)")
	f.StringVar(&dir, "status-dir", notify.DefaultDir(), "where the service publishes its status")
	f.BoolVar(&svc, "service", false, "show the service's state and the enrolment instead")
	service.Flags().VisitAll(func(fl *pflag.Flag) { f.AddFlag(fl) })
	return cmd
}

// notAllowed says, in lang, that only root and the person logged in at
// this computer may read the status, and how to read it anyway.
func notAllowed(lang, command string) string {
	id := "access.not_desktop_user"
	if !notify.DesktopUsersRecorded() {
		id = "access.root_only"
	}
	return i18n.T(lang, id, "command", command)
}

func statusExit(st notify.Status, now time.Time) error {
	code := ExitPass
	for _, r := range st.Results {
		switch r.Status {
		case policies.StatusFail:
			if r.WaivedAt(now) {
				continue // accepted by the organisation until the waiver ends
			}
			return exitError{ExitFail}
		case policies.StatusUnknown:
			code = ExitUnknown
		}
	}
	if code != ExitPass {
		return exitError{code}
	}
	return nil
}

// renderStatus prints the status for a person, problems first.
func renderStatus(w io.Writer, st notify.Status, origin notify.Origin, lang string, now time.Time) {
	loc := now.Location()
	checked := notify.FormatTime(st.CheckedAt, loc)
	if origin == notify.FromFile {
		fmt.Fprintln(w, i18n.T(lang, "status.from_file", "checked", checked))
	}
	fmt.Fprintln(w, i18n.T(lang, "status.header", "policy", st.Policy, "version", strconv.Itoa(st.PolicyVersion), "checked", checked))
	fmt.Fprintln(w)
	var fails, waived, unknowns []notify.Result
	for _, r := range st.Results {
		switch {
		case r.WaivedAt(now):
			waived = append(waived, r)
		case r.Status == policies.StatusFail:
			fails = append(fails, r)
		case r.Status == policies.StatusUnknown:
			unknowns = append(unknowns, r)
		}
	}
	if len(fails) > 0 {
		fmt.Fprintln(w, i18n.T(lang, "status.problems", "count", strconv.Itoa(len(fails))))
	}
	for i, r := range fails {
		// Titled with the problem in plain words, then why it matters,
		// what to do and by when; what Ward saw and what the rule wants
		// come last, for whoever helps.
		t := r.In(lang)
		fmt.Fprintf(w, "\n%d. %s\n", i+1, t.Heading())
		if t.Why != "" {
			fmt.Fprintf(w, "   %s\n", i18n.T(lang, "status.why", "why", t.Why))
		}
		fmt.Fprintf(w, "   %s\n", i18n.T(lang, "status.steps"))
		steps := wrap(t.Steps, 72)
		if i18n.RTL(lang) && len(steps) > 0 {
			// One line: the right-to-left writer (rtlOutput) wraps it to
			// the terminal and isolates its left-to-right runs; wrapped
			// here as well it would break twice, raggedly.
			steps = []string{strings.Join(steps, " ")}
		}
		for _, line := range steps {
			fmt.Fprintf(w, "     %s\n", line)
		}
		if lines := r.ConnectedLines(lang, loc); lines != nil {
			for _, line := range lines {
				fmt.Fprintf(w, "   %s\n", line)
			}
		} else if r.Deadline != nil {
			d := notify.FormatTime(*r.Deadline, loc)
			if r.Overdue(now) {
				fmt.Fprintf(w, "   %s\n", i18n.T(lang, "status.overdue", "deadline", d))
			} else {
				fmt.Fprintf(w, "   %s\n", i18n.T(lang, "status.deadline", "deadline", d))
			}
		}
		fmt.Fprintf(w, "   %s\n", i18n.T(lang, "status.seen", "observed", r.ObservedIn(lang)))
		fmt.Fprintf(w, "   %s\n", i18n.T(lang, "status.needed", "expected", t.Expected))
	}
	for _, r := range unknowns {
		// Could not be checked: never fix steps or a deadline, as if it
		// had failed.
		fmt.Fprintf(w, "\n? %s\n", i18n.T(lang, "status.unknown_title", "title", r.In(lang).Title))
		if reason := r.ReasonIn(lang); reason != "" {
			fmt.Fprintf(w, "  %s\n", i18n.T(lang, "status.unknown_reason", "reason", reason))
		}
		if needsAdmin(r.Status, r.Reason, r.ReasonText...) {
			fmt.Fprintf(w, "  %s\n", i18n.T(lang, "status.unknown_admin"))
		} else {
			fmt.Fprintf(w, "  %s\n", i18n.T(lang, "status.unknown_help"))
		}
	}
	for _, r := range waived {
		fmt.Fprintf(w, "\n~ %s\n", i18n.T(lang, "status.waived", "date", notify.FormatTime(r.Waiver.ExpiresAt, loc), "title", r.In(lang).Title))
		if r.Waiver.Reason != "" {
			fmt.Fprintf(w, "  %s\n", i18n.T(lang, "status.waived_reason", "reason", r.Waiver.Reason))
		}
		fmt.Fprintf(w, "  %s\n", i18n.T(lang, "status.waived_help"))
	}
	switch {
	case len(fails) == 0 && len(unknowns) == 0 && len(waived) > 0:
		fmt.Fprintf(w, "\n%s\n", i18n.T(lang, "status.waived_only"))
	case len(fails) == 0 && len(unknowns) == 0:
		fmt.Fprintln(w, i18n.T(lang, "status.all_good"))
	case len(fails) == 0:
		fmt.Fprintf(w, "\n%s\n", i18n.T(lang, "status.not_all_checked"))
	}
}

// wrap breaks text into lines of at most width runes at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(word)) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// userConfig is the per-user config file (JSON) in the user's config
// directory: ward/config.json.
type userConfig struct {
	Lang       string `json:"lang"`
	MaxPerDay  int    `json:"max_per_day"`
	QuietHours string `json:"quiet_hours"` // "21:00-08:00"; "" for none
}

func userConfigDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "ward")
}

func userConfigPath() string { return filepath.Join(userConfigDir(), "config.json") }

func loadUserConfig(path string) (userConfig, error) {
	cfg := userConfig{QuietHours: "21:00-08:00"}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return cfg, nil
		}
		return cfg, err
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// quietHours parses "HH:MM-HH:MM".
func quietHours(s string) (start, end time.Duration, err error) {
	if strings.TrimSpace(s) == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("quiet hours %q: write them as 21:00-08:00", s)
	}
	ta, err1 := time.Parse("15:04", strings.TrimSpace(a))
	tb, err2 := time.Parse("15:04", strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("quiet hours %q: write them as 21:00-08:00", s)
	}
	day := func(t time.Time) time.Duration {
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	}
	return day(ta), day(tb), nil
}

// ownStatus checks that a saved status belongs to the enrolment in the
// state directory (default: this OS's), so that a file left by a previous,
// purged installation is not shown as this one's. The service's live
// answer needs no check: it is this installation. When the enrolment
// cannot be read without admin rights, the file is shown: the service
// rewrites it as soon as it starts.
func ownStatus(st notify.Status, state string) error {
	if state == "" {
		state = enroll.DefaultStateDir()
	}
	e, err := notify.ReadEnrolment(state)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: ignoring it (device %s, epoch %d): this laptop is not enrolled; it is left from a previous installation",
			notify.ErrOtherEnrolment, orNone(st.DeviceID), st.Epoch)
	case err != nil:
		return nil
	case !st.BelongsTo(e):
		return fmt.Errorf("%w: ignoring it (device %s, epoch %d): this laptop is enrolled as device %s, epoch %d; it is left from a previous installation. Start the Ward service to see this laptop's status",
			notify.ErrOtherEnrolment, orNone(st.DeviceID), st.Epoch, e.DeviceID, e.Epoch)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none named)"
	}
	return s
}

// startStatus publishes the service's status in dir and serves it on the
// local endpoint until ctx ends; stop waits for the endpoint to close. Each
// status names the enrolment in state. When dir cannot be prepared it logs
// why and publishes nothing: the agent's reports matter more than the
// local prompts.
func startStatus(ctx context.Context, dir, state string, log *slog.Logger) (pub service.StatusPublisher, stop func()) {
	srv, err := notify.NewServer(dir, log)
	if err != nil {
		log.Warn("cannot publish the local status", "err", err, "status_dir", dir)
		return nil, func() {}
	}
	srv.StateDir = state
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ctx); err != nil {
			log.Warn("local status endpoint unavailable; users read the saved status file", "err", err)
		}
	})
	return srv, func() { cancel(); wg.Wait() }
}
