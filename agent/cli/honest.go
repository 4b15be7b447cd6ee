package cli

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
)

// needsAdmin reports whether a result could not be decided because the
// operating system refused Ward for lack of rights. Only UNKNOWNs qualify:
// a FAIL was decided.
//
// The collectors say so in the reason's catalogue messages
// (check.NeedsAdmin: reason.needs_admin, decided from the error's type,
// fs.ErrPermission, never from its words). Only when reasonText holds no
// collector's reason (a status file or report from an agent older than
// the messages, or a reason the engine passed on as English detail) does
// it fall back to the English reason: a permission error's text (which
// every Source wraps for EPERM/EACCES and Windows' access denied) or
// "administrator rights".
func needsAdmin(status policies.Status, reason string, reasonText ...texts.Text) bool {
	if status != policies.StatusUnknown {
		return false
	}
	if check.NeedsAdmin(reasonText) {
		return true
	}
	if typedReason(reasonText) {
		return false
	}
	r := strings.ToLower(reason)
	return strings.Contains(r, fs.ErrPermission.Error()) || strings.Contains(r, "administrator rights")
}

// typedReason reports whether ts holds a reason a collector typed (an id
// of policies/texts' reason.* messages), as opposed to none or the
// engine's wrapper of an English reason (reason.detail).
func typedReason(ts []texts.Text) bool {
	for _, t := range ts {
		if strings.HasPrefix(t.ID, "reason.") && t.ID != "reason.detail" && t.ID != check.IDDetail && texts.Known(t.ID) {
			return true
		}
	}
	return false
}

// isElevated reports whether this process has administrator rights: root
// on Unix, an elevated token on Windows.
func (a *app) isElevated() bool {
	if a.elevated != nil {
		return a.elevated()
	}
	return processElevated()
}

// adminCheckCommand is how to run `check` with administrator rights here.
func adminCheckCommand(goos string) string {
	if goos == "windows" {
		return "ward-agent check"
	}
	return "sudo ward-agent check"
}

// renderAdminNote ends `check`'s output: which checks could not be done
// for lack of rights, and what to do about it; nothing when there are none.
// replay says the facts came from a support bundle (then it was the
// recording that lacked the rights).
func renderAdminNote(w io.Writer, results []policies.Result, lang string, elevated, replay bool) {
	var ids []string
	for _, r := range results {
		if needsAdmin(r.Status, r.Reason, r.ReasonText...) {
			ids = append(ids, r.RuleID)
		}
	}
	if len(ids) == 0 {
		return
	}
	rules := strings.Join(ids, ", ")
	var text string
	switch {
	case replay:
		text = i18n.T(lang, "check.admin_replay", "rules", rules)
	case elevated:
		text = i18n.T(lang, "check.admin_denied", "rules", rules)
	default:
		text = i18n.T(lang, "check.admin_hint", "rules", rules, "command", adminCheckCommand(runtime.GOOS))
	}
	// One line: the output stage wraps it to the terminal.
	fmt.Fprintf(w, "\n%s\n", text)
}

// unknownAdvice is what `check` says instead of fix steps for an UNKNOWN:
// there is nothing to fix yet, and, when rights were missing, where that
// is explained.
func unknownAdvice(r policies.Result, lang string) string {
	if needsAdmin(r.Status, r.Reason, r.ReasonText...) {
		return i18n.T(lang, "check.item_admin")
	}
	return i18n.T(lang, "check.item_unknown")
}

// renderNotifyOutcome says what `notify --once` really did: how many
// notifications the desktop showed, which it could not show and why, and
// why nothing was shown when nothing was.
func renderNotifyOutcome(w io.Writer, plan notify.Plan, set notify.Settings, lang string, now time.Time, noSession bool) {
	max := set.MaxPerDay
	if max <= 0 {
		max = notify.DefaultMaxPerDay
	}
	if len(plan.Shown) > 0 || len(plan.Failed) > 0 {
		fmt.Fprintln(w, i18n.T(lang, "notify.once_shown", "count", strconv.Itoa(len(plan.Shown))))
	}
	if len(plan.Failed) > 0 {
		fmt.Fprintln(w, i18n.T(lang, "notify.once_failed", "count", strconv.Itoa(len(plan.Failed)),
			"reason", plan.Failed[0].Err.Error()))
		if noSession {
			fmt.Fprintln(w, i18n.T(lang, "notify.no_session"))
		}
	}
	switch plan.Held {
	case notify.HoldSnooze:
		fmt.Fprintln(w, i18n.T(lang, "notify.held_snooze", "time", clock(plan.HeldUntil, now)))
	case notify.HoldQuiet:
		fmt.Fprintln(w, i18n.T(lang, "notify.held_quiet", "time", clock(plan.HeldUntil, now)))
	case notify.HoldCap:
		fmt.Fprintln(w, i18n.T(lang, "notify.held_cap", "max", strconv.Itoa(max), "time", clock(plan.HeldUntil, now)))
	default:
		if len(plan.Show) == 0 {
			if plan.Next.IsZero() {
				fmt.Fprintln(w, i18n.T(lang, "notify.nothing"))
			} else {
				fmt.Fprintln(w, i18n.T(lang, "notify.not_due", "time", notify.FormatTime(plan.Next, now.Location())))
			}
			return
		}
	}
	if !plan.Next.IsZero() && (plan.Held == "" || !plan.Next.Equal(plan.HeldUntil)) {
		fmt.Fprintln(w, i18n.T(lang, "notify.next", "time", notify.FormatTime(plan.Next, now.Location())))
	}
}

// clock writes t for people: the time of day alone when it is today,
// else the date too.
func clock(t, now time.Time) string {
	t = t.In(now.Location())
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return notify.FormatTime(t, now.Location())
}

// noDesktopSession reports whether this process runs outside a desktop
// session, where notifications cannot appear.
func noDesktopSession() bool { return notify.NoDesktopSession(runtime.GOOS, os.Getenv) }
