package notify

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/policies"
)

// Defaults for Settings.
const (
	DefaultMaxPerDay = 4
	// A notice is re-shown at most this often when nothing else is due.
	overdueEvery = 4 * time.Hour
	noDeadline   = 24 * time.Hour
)

// Settings are the user's choices for notifications.
type Settings struct {
	// MaxPerDay caps notifications per local calendar day (0 means
	// DefaultMaxPerDay).
	MaxPerDay int
	// QuietStart and QuietEnd are times of day (offsets from local
	// midnight); between them nothing is shown. Equal means no quiet hours.
	// Start after End wraps midnight (21:00–08:00).
	QuietStart, QuietEnd time.Duration
	// Lang is the language of the notifications.
	Lang string
}

// Memory is what the helper remembers between runs.
type Memory struct {
	// LastShown is when each rule was last part of a notification.
	LastShown map[string]time.Time `json:"last_shown,omitempty"`
	// Shown lists when notifications were shown (the last two days).
	Shown []time.Time `json:"shown,omitempty"`
	// SnoozeUntil holds every notification back until then.
	SnoozeUntil time.Time `json:"snooze_until,omitzero"`
}

// Kind says why a notice is shown.
type Kind string

// Kinds of notice.
const (
	KindNew      Kind = "new"
	KindReminder Kind = "reminder"
	KindOverdue  Kind = "overdue"
	KindDiscreet Kind = "discreet"
)

// Notice is one desktop notification.
type Notice struct {
	Kind    Kind   `json:"kind"`
	Summary string `json:"summary"`
	Body    string `json:"body"`
	// Rules are the rules the notice reminds of.
	Rules []string `json:"rules"`
	// Discreet notices carry no product name either: the desktop shows
	// them under no application name (see AppName).
	Discreet bool `json:"discreet,omitempty"`
}

// Hold says why notices that were due were not shown.
type Hold string

// Reasons to hold due notices back, in the order they are looked at.
const (
	HoldSnooze Hold = "snooze"
	HoldQuiet  Hold = "quiet_hours"
	HoldCap    Hold = "daily_cap"
)

// Plan is what to do now and when to look again.
type Plan struct {
	Show []Notice
	// Next is when a notice may next be due; zero when nothing fails.
	Next time.Time
	// Held, when some notices were due but are held back, says why, and
	// HeldUntil when that reason ends (the end of the snooze or of the
	// quiet hours, the next day for the cap); Waiting is how many rules
	// wait.
	Held      Hold
	HeldUntil time.Time
	Waiting   int

	// Shown and Failed are filled by Helper.Once: the notices the desktop
	// took, and those it could not show (with why).
	Shown  []Notice
	Failed []Failure
}

// Failure is a notice the desktop could not show.
type Failure struct {
	Notice Notice
	Err    error
}

// due is a failing rule whose prompt has come.
type due struct {
	r    Result
	kind Kind
}

// Schedule decides which notifications to show at now, given the status,
// what was shown before, the user's settings and snooze. now's location is
// the user's local time (quiet hours, days). Only FAIL results prompt: an
// UNKNOWN is shown by ward-agent status, but there is nothing the user
// can do about it at once. A FAIL the organisation waived is quiet until
// the waiver expires.
//
// A rule gets a first notice as soon as it fails (or fails again after
// being fixed), then reminders spaced by the time left before its deadline
// (Spacing), one at the deadline itself, and reminders every 4 hours once
// overdue. Everything waits during a snooze and quiet hours, and no more
// than MaxPerDay notices are shown per local day; the most urgent go
// first. In discreet mode all due rules become one notice that says only
// "Your laptop needs your attention", with no product name and no detail.
// When due notices are held back, the plan says why (Held).
func Schedule(st Status, mem Memory, set Settings, now time.Time) Plan {
	if set.MaxPerDay <= 0 {
		set.MaxPerDay = DefaultMaxPerDay
	}
	var ready []due
	var later []time.Time
	for _, r := range st.Results {
		if r.Status != policies.StatusFail || r.FailingSince == nil {
			continue
		}
		if r.WaivedAt(now) {
			// Accepted by the organisation: quiet until the waiver ends,
			// then prompted like any failing rule.
			later = append(later, r.Waiver.ExpiresAt)
			continue
		}
		at, kind := nextPrompt(r, mem.LastShown)
		if at.After(now) {
			later = append(later, at)
			continue
		}
		if r.Overdue(now) {
			kind = KindOverdue
		}
		ready = append(ready, due{r, kind})
	}
	slices.SortFunc(ready, urgency)

	var plan Plan
	shownToday := countDay(mem.Shown, now)
	if len(ready) > 0 && open(mem, set, now, shownToday) {
		room := set.MaxPerDay - shownToday
		if st.Discreet {
			room = min(room, 1)
			// No product name and no detail: the person sees what is
			// wrong only when they open the status.
			n := Notice{Kind: KindDiscreet, Summary: i18n.T(set.Lang, "notify.discreet_plain"), Discreet: true}
			for _, d := range ready {
				n.Rules = append(n.Rules, d.r.RuleID)
			}
			plan.Show = append(plan.Show, n)
			ready = nil
		}
		for len(ready) > 0 && len(plan.Show) < room {
			plan.Show = append(plan.Show, compose(ready[0], set.Lang, now))
			ready = ready[1:]
		}
		for _, n := range plan.Show {
			for _, id := range n.Rules {
				for _, r := range st.Results {
					if r.RuleID == id {
						at, _ := nextPrompt(r, map[string]time.Time{id: now})
						later = append(later, at)
					}
				}
			}
		}
	}
	for range ready {
		later = append(later, now) // still due, held back
	}
	if len(ready) > 0 {
		shown := slices.Clone(mem.Shown)
		for range plan.Show {
			shown = append(shown, now)
		}
		plan.Waiting = len(ready)
		plan.Held, plan.HeldUntil = holdAt(Memory{Shown: shown, SnoozeUntil: mem.SnoozeUntil}, set, now)
	}
	if len(later) == 0 {
		return plan
	}
	next := slices.MinFunc(later, time.Time.Compare)
	shown := slices.Clone(mem.Shown)
	for range plan.Show {
		shown = append(shown, now)
	}
	plan.Next = nextOpen(Memory{Shown: shown, SnoozeUntil: mem.SnoozeUntil}, set, next)
	return plan
}

// nextPrompt returns when rule r should next be shown, and why.
func nextPrompt(r Result, lastShown map[string]time.Time) (time.Time, Kind) {
	last, seen := lastShown[r.RuleID]
	if !seen || last.Before(*r.FailingSince) {
		return *r.FailingSince, KindNew
	}
	if r.Deadline == nil {
		return last.Add(noDeadline), KindReminder
	}
	if !last.Before(*r.Deadline) {
		return last.Add(overdueEvery), KindOverdue
	}
	at := last.Add(Spacing(r.Deadline.Sub(last)))
	if !at.Before(*r.Deadline) {
		return *r.Deadline, KindOverdue
	}
	return at, KindReminder
}

// Spacing is the time between reminders when left remains before the
// deadline: daily while more than three days remain, every 8 hours in the
// last three days, every 2 hours on the last day.
func Spacing(left time.Duration) time.Duration {
	switch {
	case left > 72*time.Hour:
		return 24 * time.Hour
	case left > 24*time.Hour:
		return 8 * time.Hour
	}
	return 2 * time.Hour
}

// urgency orders due rules: overdue first, then the nearest deadline, then
// the most severe, then by id.
func urgency(a, b due) int {
	if (a.kind == KindOverdue) != (b.kind == KindOverdue) {
		if a.kind == KindOverdue {
			return -1
		}
		return 1
	}
	da, db := deadlineOf(a.r), deadlineOf(b.r)
	if c := da.Compare(db); c != 0 {
		return c
	}
	if c := cmp.Compare(slices.Index(policies.Severities, a.r.Severity), slices.Index(policies.Severities, b.r.Severity)); c != 0 {
		return c
	}
	return cmp.Compare(a.r.RuleID, b.r.RuleID)
}

func deadlineOf(r Result) time.Time {
	if r.Deadline == nil {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return *r.Deadline
}

func compose(d due, lang string, now time.Time) Notice {
	n := Notice{Kind: d.kind, Rules: []string{d.r.RuleID}, Body: noticeBody(d.r, lang)}
	deadline := ""
	if d.r.Deadline != nil {
		deadline = FormatTime(*d.r.Deadline, now.Location())
	}
	switch {
	case d.r.GraceConnected && d.r.Deadline != nil && d.r.Status == policies.StatusFail:
		n.Summary = connectedSummary(d, lang)
	case d.kind == KindOverdue:
		n.Summary = i18n.T(lang, "notify.overdue", "deadline", deadline)
	case d.kind == KindReminder && deadline != "":
		n.Summary = i18n.T(lang, "notify.reminder", "deadline", deadline)
	default:
		n.Summary = i18n.T(lang, "notify.new")
	}
	return n
}

// noticeBody says in lang what is wrong: the rule's problem in plain
// words ("Your disk is not encrypted"; else, for a policy that gives none,
// "Not done yet:" and its title), what Ward found, in lang too, and where
// the steps are. A result without an observed text (an older status) is
// said without it.
func noticeBody(r Result, lang string) string {
	t := r.In(lang)
	// One sentence of the body: its own full stop goes.
	observed := strings.TrimSuffix(strings.TrimSpace(r.ObservedIn(lang)), ".")
	switch {
	case observed == "":
		return i18n.T(lang, "notify.body", "title", t.Title)
	case t.Problem != "":
		return i18n.T(lang, "notify.body_problem", "problem", strings.TrimRight(strings.TrimSpace(t.Problem), ".。"), "observed", observed)
	}
	return i18n.T(lang, "notify.body_found", "title", t.Title, "observed", observed)
}

// FormatTime writes a time for people, in loc.
func FormatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04")
}

// open reports whether a notice may be shown at t.
func open(mem Memory, set Settings, t time.Time, shownToday int) bool {
	return !t.Before(mem.SnoozeUntil) && !quiet(set, t) && shownToday < set.MaxPerDay
}

// holdAt says why no notice may be shown at t, and until when; "" when
// one may.
func holdAt(mem Memory, set Settings, t time.Time) (Hold, time.Time) {
	switch {
	case t.Before(mem.SnoozeUntil):
		return HoldSnooze, mem.SnoozeUntil
	case quiet(set, t):
		return HoldQuiet, quietEnd(set, t)
	case countDay(mem.Shown, t) >= set.MaxPerDay:
		y, m, d := t.Date()
		return HoldCap, time.Date(y, m, d+1, 0, 0, 0, 0, t.Location())
	}
	return "", time.Time{}
}

// nextOpen returns the first time at or after t when a notice may be
// shown: after the snooze, outside quiet hours, on a day under the cap.
func nextOpen(mem Memory, set Settings, t time.Time) time.Time {
	for range 8 {
		switch {
		case t.Before(mem.SnoozeUntil):
			t = mem.SnoozeUntil
		case quiet(set, t):
			t = quietEnd(set, t)
		case countDay(mem.Shown, t) >= set.MaxPerDay:
			y, m, d := t.Date()
			t = time.Date(y, m, d+1, 0, 0, 0, 0, t.Location())
		default:
			return t
		}
	}
	return t
}

// sinceMidnight is t's time of day.
func sinceMidnight(t time.Time) time.Duration {
	y, m, d := t.Date()
	return t.Sub(time.Date(y, m, d, 0, 0, 0, 0, t.Location()))
}

func quiet(set Settings, t time.Time) bool {
	if set.QuietStart == set.QuietEnd {
		return false
	}
	s := sinceMidnight(t)
	if set.QuietStart < set.QuietEnd {
		return s >= set.QuietStart && s < set.QuietEnd
	}
	return s >= set.QuietStart || s < set.QuietEnd
}

// quietEnd is when the quiet hours that contain t end.
func quietEnd(set Settings, t time.Time) time.Time {
	y, m, d := t.Date()
	end := time.Date(y, m, d, 0, 0, 0, 0, t.Location()).Add(set.QuietEnd)
	if !end.After(t) {
		end = time.Date(y, m, d+1, 0, 0, 0, 0, t.Location()).Add(set.QuietEnd)
	}
	return end
}

// countDay counts the times on t's local calendar day.
func countDay(times []time.Time, t time.Time) int {
	y, m, d := t.Date()
	n := 0
	for _, s := range times {
		sy, sm, sd := s.In(t.Location()).Date()
		if sy == y && sm == m && sd == d {
			n++
		}
	}
	return n
}

// Record returns the memory after plan's notices were shown at now: each
// rule's last-shown time, the shown list (kept for two days) and rules that
// no longer fail forgotten.
func (m Memory) Record(st Status, shown []Notice, now time.Time) Memory {
	next := Memory{LastShown: map[string]time.Time{}, SnoozeUntil: m.SnoozeUntil}
	failing := map[string]bool{}
	for _, r := range st.Results {
		if r.Status == policies.StatusFail {
			failing[r.RuleID] = true
		}
	}
	for id, t := range m.LastShown {
		if failing[id] {
			next.LastShown[id] = t
		}
	}
	for _, s := range m.Shown {
		if now.Sub(s) < 48*time.Hour {
			next.Shown = append(next.Shown, s)
		}
	}
	for _, n := range shown {
		next.Shown = append(next.Shown, now)
		for _, id := range n.Rules {
			next.LastShown[id] = now
		}
	}
	if !now.Before(next.SnoozeUntil) {
		next.SnoozeUntil = time.Time{}
	}
	return next
}
