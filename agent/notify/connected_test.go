package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/policies"
)

var connNow = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// connectedResult is a failing connected-grace rule checked at connNow
// with left connected time left.
func connectedResult(left time.Duration, paused bool, since *time.Time) Result {
	deadline, failing := connNow.Add(left), connNow.Add(-5*24*time.Hour)
	return Result{RuleID: "security-updates", Family: "patch_level", Status: policies.StatusFail, Severity: "high",
		FailingSince: &failing, Deadline: &deadline,
		Texts:     map[string]Texts{"en": {Title: "Security updates are installed"}},
		Connected: Connected{GraceConnected: true, GraceLeft: left, DeadlinePaused: paused, PausedSince: since}}
}

func TestConnectedLinesEnglish(t *testing.T) {
	lastOnline := time.Date(2026, 11, 28, 17, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		r    Result
		want []string
	}{
		{"three days and a bit", connectedResult(3*24*time.Hour+5*time.Hour, false, nil), []string{
			"Connected days left: 3.",
			"Only time with an internet connection counts: if you stay connected, the deadline is 2026-12-04 14:00."}},
		{"hours", connectedResult(23*time.Hour+59*time.Minute, false, nil), []string{
			"Connected hours left: 23.",
			"Only time with an internet connection counts: if you stay connected, the deadline is 2026-12-02 08:59."}},
		{"minutes", connectedResult(20*time.Minute, false, nil), []string{
			"Less than an hour of connected time is left.",
			"Only time with an internet connection counts: if you stay connected, the deadline is 2026-12-01 09:20."}},
		{"paused", connectedResult(2*24*time.Hour, true, &lastOnline), []string{
			"Deadline paused: no connection since 2026-11-28 17:30. Only time with an internet connection counts, so the deadline waits until you are connected again.",
			"Connected days left: 2."}},
		{"paused since found", connectedResult(2*24*time.Hour, true, nil), []string{
			"Deadline paused: no connection since this problem was found. Only time with an internet connection counts, so the deadline waits until you are connected again.",
			"Connected days left: 2."}},
		{"used up", connectedResult(-time.Hour, true, &lastOnline), []string{
			"Overdue: the connected time allowed to fix this is used up. Please fix this as soon as you can, or ask your IT contact for help."}},
	}
	for _, tt := range tests {
		got := tt.r.ConnectedLines("en", time.UTC)
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
	if got := (Result{Status: policies.StatusFail, Deadline: &connNow}).ConnectedLines("en", time.UTC); got != nil {
		t.Errorf("wall-clock rule: %q", got)
	}
}

// TestConnectedLinesLanguages: every shipped language says it in its own
// words, with the numbers and times in place.
func TestConnectedLinesLanguages(t *testing.T) {
	lastOnline := time.Date(2026, 11, 28, 17, 30, 0, 0, time.UTC)
	running := connectedResult(3*24*time.Hour+5*time.Hour, false, nil)
	paused := connectedResult(2*24*time.Hour, true, &lastOnline)
	english := append(running.ConnectedLines("en", time.UTC), paused.ConnectedLines("en", time.UTC)...)
	wantRU := []string{
		"Осталось дней с подключением: 3.",
		"Считается только время с подключением к интернету: если вы останетесь на связи, срок — 2026-12-04 14:00.",
		"Срок приостановлен: нет подключения с 2026-11-28 17:30. Считается только время с подключением к интернету, поэтому срок не идёт, пока вы снова не подключитесь.",
		"Осталось дней с подключением: 2.",
	}
	for _, lang := range i18n.Languages {
		got := append(running.ConnectedLines(lang, time.UTC), paused.ConnectedLines(lang, time.UTC)...)
		for i, line := range got {
			for _, want := range [][]string{{"3"}, {"2026-12-04 14:00"}, {"2026-11-28 17:30"}, {"2"}}[i] {
				if !strings.Contains(line, want) {
					t.Errorf("%s line %d %q lacks %q", lang, i, line, want)
				}
			}
			if lang != "en" && line == english[i] {
				t.Errorf("%s line %d is English: %q", lang, i, line)
			}
			if strings.ContainsAny(line, "{}") {
				t.Errorf("%s line %d has a placeholder left: %q", lang, i, line)
			}
		}
		if lang == "ru" && strings.Join(got, "\n") != strings.Join(wantRU, "\n") {
			t.Errorf("ru:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRU, "\n"))
		}
	}
}

func TestConnectedOverdue(t *testing.T) {
	later := connNow.Add(30 * 24 * time.Hour)
	if r := connectedResult(24*time.Hour, true, nil); r.Overdue(later) {
		t.Error("a paused deadline with a day left is overdue a month later")
	}
	if r := connectedResult(24*time.Hour, false, nil); !r.Overdue(later) || r.Overdue(connNow) {
		t.Error("a running connected deadline is not overdue after it, or is before it")
	}
	if r := connectedResult(0, true, nil); !r.Overdue(connNow) {
		t.Error("a used-up connected grace is not overdue")
	}
}

func TestNewStatusCarriesConnectedGrace(t *testing.T) {
	pol, err := policies.Embedded("high-risk")
	if err != nil {
		t.Fatal(err)
	}
	deadline, since := connNow.Add(50*time.Hour), connNow.Add(-72*time.Hour)
	st := NewStatus(pol, "linux", []policies.Result{{RuleID: "security-updates", Status: policies.StatusFail,
		FailingSince: &since, Deadline: &deadline, GraceConnected: true, GraceUsed: 22 * time.Hour,
		DeadlinePaused: true, PausedSince: &since}}, connNow)
	got := st.Results[0].Connected
	if !got.GraceConnected || got.GraceLeft != 50*time.Hour || !got.DeadlinePaused || got.PausedSince == nil || !got.PausedSince.Equal(since) {
		t.Errorf("status result: %+v", got)
	}
}

// TestConnectedNotice: a notice about a connected-grace rule says what is
// left or that the deadline is paused, not a date that may move.
func TestConnectedNotice(t *testing.T) {
	set := Settings{Lang: "fr"}
	mem := Memory{LastShown: map[string]time.Time{"security-updates": connNow.Add(-48 * time.Hour)}}
	for _, tt := range []struct {
		r    Result
		want string
	}{
		{connectedResult(3*24*time.Hour, false, nil), "Rappel Ward : à corriger. Jours de connexion restants : 3."},
		{connectedResult(3*24*time.Hour, true, nil), "Rappel Ward : à corriger quand vous serez de nouveau connecté (la date limite est en pause)"},
		{connectedResult(0, true, nil), "Ward : le temps de connexion prévu pour corriger cela est écoulé"},
	} {
		st := Status{Format: Format, CheckedAt: connNow, Results: []Result{tt.r}}
		plan := Schedule(st, mem, set, connNow)
		if len(plan.Show) != 1 || plan.Show[0].Summary != tt.want {
			t.Errorf("plan %+v; want one notice %q", plan.Show, tt.want)
		}
	}
}
