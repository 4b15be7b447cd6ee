package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/source"
)

// notifyCommand is the per-user helper started at login.
func (a *app) notifyCommand() *cobra.Command {
	var (
		once      bool
		lang, dir string
		snooze    time.Duration
		recordTo  string
	)
	cmd := &cobra.Command{
		Use:   "notify [--once] [--snooze DURATION]",
		Short: "Show desktop notifications about what needs fixing (started at login)",
		Long: `notify reads the Ward service's local status and shows a desktop
notification when something needs fixing, with reminders that come more often
as the deadline nears, never during quiet hours and never more than
max_per_day a day. Settings are in ward/config.json in your config directory:
{"lang": "fr", "quiet_hours": "21:00-08:00", "max_per_day": 4}.

--snooze 4h holds notifications back for that long and exits.

Only root and the people logged in at this computer (not over SSH) can read
the status; on Linux without systemd-logind, only root.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadUserConfig(userConfigPath())
			if err != nil {
				a.log.Warn("config file unreadable; using defaults", "err", err)
			}
			qs, qe, err := quietHours(cfg.QuietHours)
			if err != nil {
				return usageError{err}
			}
			memFile := filepath.Join(userConfigDir(), "notify-state.json")
			if snooze > 0 {
				mem, _ := notify.LoadMemory(memFile)
				mem.SnoozeUntil = a.clock().Add(snooze)
				if err := notify.SaveMemory(memFile, mem); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, i18n.T(i18n.Choose(lang, cfg.Lang, i18n.Lang()), "notify.snoozed", "time", notify.FormatTime(mem.SnoozeUntil, time.Local)))
				return nil
			}
			var n notify.Notifier
			if recordTo != "" {
				n = &notify.FileNotifier{Path: recordTo}
			} else {
				live := source.NewLive()
				live.Env = notify.SessionEnv()
				n = notify.Native(live)
			}
			h := &notify.Helper{Dir: dir, MemoryFile: memFile, Notifier: n, Log: a.log, Now: a.clock,
				Settings: notify.Settings{MaxPerDay: cfg.MaxPerDay, QuietStart: qs, QuietEnd: qe,
					Lang: chooseLang(a.stderr, lang, cfg.Lang)}}
			a.rtlOutput(h.Settings.Lang)
			if !once {
				return h.Run(cmd.Context())
			}
			plan, err := h.Once(cmd.Context())
			if errors.Is(err, notify.ErrNotDesktopUser) {
				fmt.Fprintln(a.stdout, notAllowed(h.Settings.Lang, "ward-agent status"))
				return exitError{ExitUnknown}
			}
			if err != nil {
				return err
			}
			renderNotifyOutcome(a.stdout, plan, h.Settings, h.Settings.Lang, a.clock(), recordTo == "" && noDesktopSession())
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&once, "once", false, "show what is due now and exit")
	f.StringVar(&lang, "lang", "", "language: "+strings.Join(i18n.Languages, ", "))
	f.StringVar(&dir, "status-dir", notify.DefaultDir(), "where the service publishes its status")
	f.DurationVar(&snooze, "snooze", 0, "hold notifications back for this long, then exit")
	f.StringVar(&recordTo, "record-to", "", "append notices as JSON lines to this file instead of showing them")
	f.MarkHidden("record-to")
	return cmd
}
