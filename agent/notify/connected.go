package notify

import (
	"strconv"
	"time"

	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/policies"
)

// Connected is what a result says about a connected-grace deadline
// (policy "grace: 72h connected", docs/connectivity.md). On a FAIL of such
// a rule, Deadline is the check time plus GraceLeft: when it falls if the
// device stays connected.
type Connected struct {
	// GraceConnected says only connected time counts against the grace.
	GraceConnected bool `json:"grace_connected,omitempty"`
	// GraceLeft is the connected time left at the check (zero or less:
	// used up).
	GraceLeft time.Duration `json:"grace_left,omitempty"`
	// DeadlinePaused says the check found no connection, so the deadline
	// is not running; PausedSince is when there last was one (nil: not
	// since the rule started failing).
	DeadlinePaused bool       `json:"deadline_paused,omitempty"`
	PausedSince    *time.Time `json:"paused_since,omitempty"`
}

func connected(r policies.Result, checkedAt time.Time) Connected {
	c := Connected{GraceConnected: r.GraceConnected}
	if !r.GraceConnected || r.Status != policies.StatusFail || r.Deadline == nil {
		return c
	}
	c.GraceLeft = r.Deadline.Sub(checkedAt)
	c.DeadlinePaused, c.PausedSince = r.DeadlinePaused, r.PausedSince
	return c
}

// ConnectedLines says a connected-grace deadline to a person, in lang: how
// much connected time is left and, while it runs, when the deadline falls
// if the device stays connected; paused, since when there has been no
// connection; used up, that it is overdue. left is the connected time left
// at the check, deadline the check time plus left.
func ConnectedLines(lang string, left time.Duration, deadline time.Time, paused bool, pausedSince *time.Time, loc *time.Location) []string {
	switch {
	case left <= 0:
		return []string{i18n.T(lang, "deadline.connected_overdue")}
	case paused && pausedSince != nil:
		return []string{i18n.T(lang, "deadline.paused", "time", FormatTime(*pausedSince, loc)), Left(lang, left)}
	case paused:
		return []string{i18n.T(lang, "deadline.paused_since_found"), Left(lang, left)}
	}
	return []string{Left(lang, left), i18n.T(lang, "deadline.if_connected", "deadline", FormatTime(deadline, loc))}
}

// Left says how much connected time is left: whole days, else whole
// hours, never rounded up (a person is never told there is more time than
// there is).
func Left(lang string, left time.Duration) string {
	switch {
	case left >= 24*time.Hour:
		return i18n.T(lang, "deadline.left_days", "days", strconv.Itoa(int(left/(24*time.Hour))))
	case left >= time.Hour:
		return i18n.T(lang, "deadline.left_hours", "hours", strconv.Itoa(int(left/time.Hour)))
	}
	return i18n.T(lang, "deadline.left_soon")
}

// ConnectedLines is r's connected-grace deadline in lang (see the
// function); nil when r has none.
func (r Result) ConnectedLines(lang string, loc *time.Location) []string {
	if !r.GraceConnected || r.Status != policies.StatusFail || r.Deadline == nil {
		return nil
	}
	return ConnectedLines(lang, r.GraceLeft, *r.Deadline, r.DeadlinePaused, r.PausedSince, loc)
}

// connectedSummary is a notice's summary for a connected-grace rule: its
// deadline moves with the connection, so the notice says what is left,
// or that it is paused, rather than a date.
func connectedSummary(d due, lang string) string {
	switch {
	case d.r.GraceLeft <= 0:
		return i18n.T(lang, "notify.overdue_connected")
	case d.r.DeadlinePaused:
		return i18n.T(lang, "notify.reminder_paused")
	case d.kind == KindNew:
		return i18n.T(lang, "notify.new")
	}
	return i18n.T(lang, "notify.reminder_connected", "left", Left(lang, d.r.GraceLeft))
}
