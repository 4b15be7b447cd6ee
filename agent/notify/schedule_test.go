package notify

import (
	"slices"
	"testing"
	"time"

	"github.com/wardhq/ward/policies"
)

// loc is the user's local time in the tests: East Africa, UTC+3.
var loc = time.FixedZone("EAT", 3*3600)

func at(day, hour, minute int) time.Time { return time.Date(2026, 3, day, hour, minute, 0, 0, loc) }

// failing is a failing rule first seen at since with the given grace.
func failing(id, severity string, since time.Time, grace time.Duration) Result {
	d := since.Add(grace)
	return Result{RuleID: id, Status: policies.StatusFail, Severity: severity, FailingSince: &since, Deadline: &d,
		Texts: map[string]Texts{
			"en": {Title: "Rule " + id},
			"fr": {Title: "Règle " + id},
		}}
}

func status(discreet bool, rs ...Result) Status {
	return Status{Format: Format, Policy: "baseline", PolicyVersion: 1, Discreet: discreet, Results: rs}
}

func TestSchedule(t *testing.T) {
	fw := failing("firewall-on", "high", at(2, 10, 0), 72*time.Hour)           // deadline 5th 10:00
	disk := failing("disk-encrypted", "critical", at(2, 9, 0), 7*24*time.Hour) // deadline 9th 09:00
	noQuiet := Settings{MaxPerDay: 10, Lang: "en"}
	pass := Result{RuleID: "ok", Status: policies.StatusPass}
	unknown := Result{RuleID: "why", Status: policies.StatusUnknown, Reason: "no firewall tool"}

	for _, c := range []struct {
		name      string
		st        Status
		mem       Memory
		set       Settings
		now       time.Time
		summaries []string
		bodies    []string
		next      time.Time
	}{
		{
			name: "new failure is shown at once", st: status(false, fw, pass, unknown), set: noQuiet, now: at(2, 10, 5),
			summaries: []string{"Ward: something on your laptop needs fixing"},
			bodies:    []string{"Not done yet: Rule firewall-on. Open Ward status (ward-agent status) to see the steps."},
			// 71h55m left: the next reminder in 8 hours.
			next: at(2, 18, 5),
		},
		{
			name: "new failure in French", st: status(false, fw), set: Settings{Lang: "fr"}, now: at(2, 10, 5),
			summaries: []string{"Ward : un point de votre ordinateur est à corriger"},
			bodies:    []string{"Pas encore fait : Règle firewall-on. Ouvrez l'état Ward (ward-agent status) pour voir les étapes."},
			next:      at(2, 18, 5),
		},
		{
			name: "nothing failing: nothing to show, no wake-up", st: status(false, pass, unknown), set: noQuiet, now: at(2, 10, 0),
		},
		{
			name: "far from the deadline reminders are daily", st: status(false, disk), set: noQuiet,
			mem: Memory{LastShown: map[string]time.Time{"disk-encrypted": at(2, 9, 0)}}, now: at(3, 8, 59),
			next: at(3, 9, 0),
		},
		{
			name: "the daily reminder comes", st: status(false, disk), set: noQuiet,
			mem: Memory{LastShown: map[string]time.Time{"disk-encrypted": at(2, 9, 0)}}, now: at(3, 9, 0),
			summaries: []string{"Ward reminder: please fix this before 2026-03-09 09:00"},
			bodies:    []string{"Not done yet: Rule disk-encrypted. Open Ward status (ward-agent status) to see the steps."},
			next:      at(4, 9, 0),
		},
		{
			name: "three days before the deadline every 8 hours", st: status(false, disk), set: noQuiet,
			mem: Memory{LastShown: map[string]time.Time{"disk-encrypted": at(6, 10, 0)}}, now: at(6, 11, 0),
			next: at(6, 18, 0),
		},
		{
			name: "on the last day every 2 hours", st: status(false, disk), set: noQuiet,
			mem: Memory{LastShown: map[string]time.Time{"disk-encrypted": at(8, 12, 0)}}, now: at(8, 12, 30),
			next: at(8, 14, 0),
		},
		{
			name: "a reminder falls on the deadline itself", st: status(false, disk), set: noQuiet,
			mem: Memory{LastShown: map[string]time.Time{"disk-encrypted": at(9, 8, 0)}}, now: at(9, 8, 30),
			next: at(9, 9, 0),
		},
		{
			name: "passed deadline says so", st: status(false, disk), set: noQuiet,
			mem: Memory{LastShown: map[string]time.Time{"disk-encrypted": at(9, 8, 0)}}, now: at(9, 9, 1),
			summaries: []string{"Ward: the deadline has passed (2026-03-09 09:00)"},
			bodies:    []string{"Not done yet: Rule disk-encrypted. Open Ward status (ward-agent status) to see the steps."},
			next:      at(9, 13, 1),
		},
		{
			name: "fixed then failing again is new", st: status(false, failing("firewall-on", "high", at(6, 10, 0), 72*time.Hour)), set: noQuiet,
			mem: Memory{LastShown: map[string]time.Time{"firewall-on": at(3, 10, 0)}}, now: at(6, 10, 0),
			summaries: []string{"Ward: something on your laptop needs fixing"},
			bodies:    []string{"Not done yet: Rule firewall-on. Open Ward status (ward-agent status) to see the steps."},
			next:      at(6, 18, 0),
		},
		{
			name: "snooze holds everything back until it ends", st: status(false, fw, disk), set: noQuiet,
			mem: Memory{SnoozeUntil: at(2, 13, 0)}, now: at(2, 10, 5),
			next: at(2, 13, 0),
		},
		{
			name: "after the snooze both are shown, most urgent first", st: status(false, fw, disk), set: noQuiet,
			mem: Memory{SnoozeUntil: at(2, 13, 0)}, now: at(2, 13, 0),
			summaries: []string{"Ward: something on your laptop needs fixing", "Ward: something on your laptop needs fixing"},
			bodies: []string{
				"Not done yet: Rule firewall-on. Open Ward status (ward-agent status) to see the steps.",
				"Not done yet: Rule disk-encrypted. Open Ward status (ward-agent status) to see the steps.",
			},
			next: at(2, 21, 0),
		},
		{
			name: "quiet hours wait for the morning", st: status(false, fw),
			set: Settings{Lang: "en", QuietStart: 21 * time.Hour, QuietEnd: 8 * time.Hour}, now: at(2, 23, 0),
			next: at(3, 8, 0),
		},
		{
			name: "quiet hours after midnight", st: status(false, fw),
			set: Settings{Lang: "en", QuietStart: 21 * time.Hour, QuietEnd: 8 * time.Hour}, now: at(3, 2, 0),
			next: at(3, 8, 0),
		},
		{
			name: "a reminder due at night moves to the morning", st: status(false, fw),
			set: Settings{Lang: "en", QuietStart: 21 * time.Hour, QuietEnd: 8 * time.Hour},
			mem: Memory{LastShown: map[string]time.Time{"firewall-on": at(2, 16, 0)}}, now: at(2, 17, 0),
			next: at(3, 8, 0),
		},
		{
			name: "discreet mode says only that the laptop needs attention", st: status(true, fw, disk), set: noQuiet, now: at(2, 10, 5),
			summaries: []string{"Your laptop needs your attention"},
			bodies:    []string{""},
			next:      at(2, 18, 5),
		},
		{
			name: "discreet mode in Arabic", st: status(true, fw), set: Settings{Lang: "ar"}, now: at(2, 10, 5),
			summaries: []string{"حاسوبك يحتاج إلى انتباهك"},
			bodies:    []string{""},
			next:      at(2, 18, 5),
		},
		{
			name: "the per-day cap holds the rest until tomorrow", st: status(false, fw, disk),
			set: Settings{Lang: "en", MaxPerDay: 3}, mem: Memory{Shown: []time.Time{at(2, 8, 0), at(2, 9, 0)}}, now: at(2, 10, 5),
			summaries: []string{"Ward: something on your laptop needs fixing"},
			bodies:    []string{"Not done yet: Rule firewall-on. Open Ward status (ward-agent status) to see the steps."},
			next:      at(3, 0, 0),
		},
		{
			name: "the cap counts local days, not UTC days", st: status(false, fw),
			// 01:30 local on the 3rd is still the 2nd in UTC.
			set: Settings{Lang: "en", MaxPerDay: 1}, mem: Memory{Shown: []time.Time{at(2, 22, 0)}}, now: at(3, 1, 30),
			summaries: []string{"Ward: something on your laptop needs fixing"},
			bodies:    []string{"Not done yet: Rule firewall-on. Open Ward status (ward-agent status) to see the steps."},
			next:      at(4, 0, 0),
		},
		{
			name: "overdue comes before a new failure under the cap", st: status(false, failing("new-one", "critical", at(9, 9, 30), 72*time.Hour), disk),
			set: Settings{Lang: "en", MaxPerDay: 1}, mem: Memory{LastShown: map[string]time.Time{"disk-encrypted": at(9, 8, 0)}}, now: at(9, 10, 0),
			summaries: []string{"Ward: the deadline has passed (2026-03-09 09:00)"},
			bodies:    []string{"Not done yet: Rule disk-encrypted. Open Ward status (ward-agent status) to see the steps."},
			next:      at(10, 0, 0),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := Schedule(c.st, c.mem, c.set, c.now)
			var summaries, bodies []string
			for _, n := range plan.Show {
				summaries = append(summaries, n.Summary)
				bodies = append(bodies, n.Body)
			}
			if !slices.Equal(summaries, c.summaries) || !slices.Equal(bodies, c.bodies) {
				t.Errorf("shown\n  %q\n  %q\nwant\n  %q\n  %q", summaries, bodies, c.summaries, c.bodies)
			}
			if !plan.Next.Equal(c.next) {
				t.Errorf("next wake-up %v, want %v", plan.Next.In(loc), c.next)
			}
		})
	}
}

// TestScheduleDay walks one rule through its grace period, recording what
// is shown, and checks the reminders come closer as the deadline nears.
func TestScheduleDay(t *testing.T) {
	r := failing("disk-encrypted", "critical", at(2, 9, 0), 7*24*time.Hour)
	st := status(false, r)
	set := Settings{Lang: "en", MaxPerDay: 20}
	var mem Memory
	var shown []time.Time
	now := at(2, 9, 0)
	for now.Before(at(10, 0, 0)) {
		plan := Schedule(st, mem, set, now)
		if len(plan.Show) > 0 {
			shown = append(shown, now)
			mem = mem.Record(st, plan.Show, now)
		}
		if plan.Next.IsZero() || !plan.Next.After(now) {
			t.Fatalf("at %v: next %v does not move forward", now, plan.Next)
		}
		now = plan.Next
	}
	var gaps []time.Duration
	for i := 1; i < len(shown); i++ {
		gaps = append(gaps, shown[i].Sub(shown[i-1]))
	}
	want := []time.Duration{
		24 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour, // 7d, 6d, 5d, 4d left
		8 * time.Hour, 8 * time.Hour, 8 * time.Hour, 8 * time.Hour, 8 * time.Hour, 8 * time.Hour, // 3d..1d left
		2 * time.Hour, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour,
		2 * time.Hour, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour, // the last day
		4 * time.Hour, 4 * time.Hour, 4 * time.Hour, // overdue, until the end of the 9th
	}
	if !slices.Equal(gaps, want) {
		t.Errorf("gaps between notices:\n%v\nwant\n%v", gaps, want)
	}
}

func TestRecord(t *testing.T) {
	fw := failing("firewall-on", "high", at(2, 10, 0), 72*time.Hour)
	mem := Memory{
		LastShown:   map[string]time.Time{"firewall-on": at(1, 10, 0), "fixed": at(1, 10, 0)},
		Shown:       []time.Time{at(1, 9, 0), at(3, 9, 0)},
		SnoozeUntil: at(3, 10, 0),
	}
	got := mem.Record(status(false, fw), []Notice{{Rules: []string{"firewall-on"}}}, at(3, 11, 0))
	if len(got.LastShown) != 1 || !got.LastShown["firewall-on"].Equal(at(3, 11, 0)) {
		t.Errorf("last shown %v", got.LastShown)
	}
	if len(got.Shown) != 2 || !got.Shown[0].Equal(at(3, 9, 0)) || !got.Shown[1].Equal(at(3, 11, 0)) {
		t.Errorf("shown %v: want the 3rd 09:00 kept, the 1st dropped, now added", got.Shown)
	}
	if !got.SnoozeUntil.IsZero() {
		t.Errorf("an expired snooze is kept: %v", got.SnoozeUntil)
	}
}

func TestScheduleQuietAboutWaived(t *testing.T) {
	fw := failing("firewall-on", "high", at(2, 10, 0), 72*time.Hour)
	fw.Waiver = &Waiver{Reason: "travel router", ExpiresAt: at(10, 12, 0)}
	set := Settings{MaxPerDay: 10, Lang: "en"}
	// Waived, even past its deadline: nothing shown, looked at again when
	// the waiver ends.
	plan := Schedule(status(false, fw), Memory{}, set, at(6, 10, 0))
	if len(plan.Show) != 0 || !plan.Next.Equal(at(10, 12, 0)) {
		t.Errorf("waived: show %v, next %v; want nothing until the waiver ends", plan.Show, plan.Next)
	}
	plan = Schedule(status(true, fw), Memory{}, set, at(6, 10, 0))
	if len(plan.Show) != 0 {
		t.Errorf("waived, discreet: show %v", plan.Show)
	}
	// Expired: prompted again (overdue by now).
	plan = Schedule(status(false, fw), Memory{}, set, at(10, 12, 1))
	if len(plan.Show) != 1 || plan.Show[0].Kind != KindOverdue {
		t.Errorf("after the waiver: show %v, want the overdue notice", plan.Show)
	}
}

func TestApplyWaivers(t *testing.T) {
	fw := failing("firewall-on", "high", at(2, 10, 0), 72*time.Hour)
	disk := failing("disk-encrypted", "critical", at(2, 9, 0), 72*time.Hour)
	pass := Result{RuleID: "os-updated", Status: policies.StatusPass}
	st := status(false, fw, disk, pass)
	st.CheckedAt = at(3, 10, 0)
	st.ApplyWaivers([]Waiver{
		{RuleID: "firewall-on", Reason: "short", ExpiresAt: at(4, 0, 0)},
		{RuleID: "firewall-on", Reason: "long", ExpiresAt: at(9, 0, 0)},
		{RuleID: "disk-encrypted", Reason: "expired", ExpiresAt: at(3, 9, 0)},
		{RuleID: "os-updated", Reason: "a pass stays a pass", ExpiresAt: at(9, 0, 0)},
	})
	if w := st.Results[0].Waiver; w == nil || w.Reason != "long" || !st.Results[0].WaivedAt(at(5, 0, 0)) || st.Results[0].WaivedAt(at(9, 0, 0)) {
		t.Errorf("firewall-on waiver = %+v", w)
	}
	if st.Results[1].Waiver != nil || st.Results[2].Waiver != nil {
		t.Errorf("expired or passing rule waived: %+v, %+v", st.Results[1].Waiver, st.Results[2].Waiver)
	}
}
