package notify

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/i18n"
)

// TestScheduleSaysWhyHeld: when due notices are held back, the plan says
// why and until when; when nothing is held it says nothing.
func TestScheduleSaysWhyHeld(t *testing.T) {
	fw := failing("firewall-on", "high", at(2, 10, 0), 72*time.Hour)
	disk := failing("disk-encrypted", "critical", at(2, 9, 0), 7*24*time.Hour)
	night := Settings{Lang: "en", MaxPerDay: 10, QuietStart: 21 * time.Hour, QuietEnd: 8 * time.Hour}
	for _, c := range []struct {
		name    string
		st      Status
		mem     Memory
		set     Settings
		now     time.Time
		shown   int
		held    Hold
		until   time.Time
		waiting int
	}{
		{name: "shown at once: nothing held", st: status(false, fw), set: night, now: at(2, 10, 5), shown: 1},
		{name: "quiet hours", st: status(false, fw, disk), set: night, now: at(2, 23, 0), held: HoldQuiet, until: at(3, 8, 0), waiting: 2},
		{name: "snoozed, even in the quiet hours", st: status(false, fw), set: night, mem: Memory{SnoozeUntil: at(3, 1, 0)},
			now: at(2, 23, 0), held: HoldSnooze, until: at(3, 1, 0), waiting: 1},
		{name: "cap reached before anything", st: status(false, fw), set: Settings{Lang: "en", MaxPerDay: 2},
			mem: Memory{Shown: []time.Time{at(2, 8, 0), at(2, 9, 0)}}, now: at(2, 10, 5), held: HoldCap, until: at(3, 0, 0), waiting: 1},
		{name: "cap reached by this run", st: status(false, fw, disk), set: Settings{Lang: "en", MaxPerDay: 3},
			mem: Memory{Shown: []time.Time{at(2, 8, 0), at(2, 9, 0)}}, now: at(2, 10, 5), shown: 1, held: HoldCap, until: at(3, 0, 0), waiting: 1},
		{name: "not due yet: nothing held", st: status(false, disk), set: night,
			mem: Memory{LastShown: map[string]time.Time{"disk-encrypted": at(2, 9, 0)}}, now: at(2, 10, 0)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Schedule(c.st, c.mem, c.set, c.now)
			if len(p.Show) != c.shown || p.Held != c.held || !p.HeldUntil.Equal(c.until) || p.Waiting != c.waiting {
				t.Errorf("show %d, held %q until %v, waiting %d; want %d, %q until %v, %d",
					len(p.Show), p.Held, p.HeldUntil.In(loc), p.Waiting, c.shown, c.held, c.until, c.waiting)
			}
		})
	}
}

// TestDiscreetNoticeNamesNothing: in every shipped language a discreet
// notice carries neither the product name nor any rule's words, in what
// reaches the desktop (notify-send's and osascript's argv), while an
// ordinary one is shown under "Ward".
func TestDiscreetNoticeNamesNothing(t *testing.T) {
	fw := failing("firewall-on", "high", at(2, 10, 0), 72*time.Hour)
	for _, lang := range []string{"en", "fr", "es", "ar", "ru", "uk", "pt"} {
		p := Schedule(status(true, fw), Memory{}, Settings{Lang: lang}, at(2, 10, 5))
		if len(p.Show) != 1 || !p.Show[0].Discreet || p.Show[0].Body != "" {
			t.Fatalf("%s: discreet plan %+v", lang, p.Show)
		}
		n := p.Show[0]
		if n.Summary != i18n.T(lang, "notify.discreet_plain") || n.Summary == "" {
			t.Errorf("%s: summary %q", lang, n.Summary)
		}
		for tool, argv := range map[string][]string{"notify-send": notifySendArgs(n), "osascript": osascriptArgs(n)} {
			all := strings.Join(argv, "\x00")
			for _, leak := range []string{"Ward", "ward", "firewall", "Rule "} {
				if strings.Contains(all, leak) {
					t.Errorf("%s: %s argv names %q: %q", lang, tool, leak, argv)
				}
			}
		}
	}
	plain := Schedule(status(false, fw), Memory{}, Settings{Lang: "en"}, at(2, 10, 5)).Show[0]
	if got := notifySendArgs(plain); !slices.Equal(got, []string{"--app-name=Ward", "--urgency=normal", "--", plain.Summary, plain.Body}) {
		t.Errorf("notify-send argv %q", got)
	}
	if got := osascriptArgs(plain); got[len(got)-1] != "Ward" || got[len(got)-3] != plain.Summary || got[len(got)-2] != plain.Body {
		t.Errorf("osascript argv %q", got)
	}
}

type failingNotifier struct{ calls int }

func (f *failingNotifier) Show(context.Context, Notice) error {
	f.calls++
	return errors.New("notify: notify-send exited 1: Cannot autolaunch D-Bus without X11 $DISPLAY")
}

// TestOnceCountsOnlyWhatWasShown: a notice the desktop refused is in
// Failed, not in Shown, and is not remembered, so the next run tries it
// again.
func TestOnceCountsOnlyWhatWasShown(t *testing.T) {
	dir := t.TempDir()
	fw := failing("firewall-on", "high", at(2, 10, 0), 72*time.Hour)
	disk := failing("disk-encrypted", "critical", at(2, 9, 0), 7*24*time.Hour)
	st := status(false, fw, disk)
	st.CheckedAt = at(2, 10, 0)
	if err := writeStatusFile(dir, st); err != nil {
		t.Fatal(err)
	}
	n := &failingNotifier{}
	mem := filepath.Join(t.TempDir(), "mem.json")
	h := &Helper{Dir: dir, MemoryFile: mem, Notifier: n, Settings: Settings{Lang: "en", MaxPerDay: 10},
		Now: func() time.Time { return at(2, 10, 5) }}
	plan, err := h.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n.calls != 2 || len(plan.Show) != 2 || len(plan.Shown) != 0 || len(plan.Failed) != 2 ||
		!strings.Contains(plan.Failed[0].Err.Error(), "DISPLAY") {
		t.Fatalf("calls %d, planned %d, shown %d, failed %+v", n.calls, len(plan.Show), len(plan.Shown), plan.Failed)
	}
	m, err := LoadMemory(mem)
	if err != nil || len(m.Shown) != 0 || len(m.LastShown) != 0 {
		t.Fatalf("memory after failures: %+v, %v", m, err)
	}
	// Shown this time: counted and remembered.
	h.Notifier = &FileNotifier{Path: filepath.Join(t.TempDir(), "shown.jsonl")}
	plan, err = h.Once(context.Background())
	if err != nil || len(plan.Shown) != 2 || len(plan.Failed) != 0 {
		t.Fatalf("second run: shown %d, failed %d, %v", len(plan.Shown), len(plan.Failed), err)
	}
}

func TestNoDesktopSession(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		goos string
		env  map[string]string
		want bool
	}{
		{"linux", nil, true},
		{"linux", map[string]string{"DISPLAY": ":0"}, false},
		{"linux", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, false},
		{"darwin", nil, false},
		{"windows", nil, false},
	} {
		if got := NoDesktopSession(c.goos, env(c.env)); got != c.want {
			t.Errorf("%s %v: %v, want %v", c.goos, c.env, got, c.want)
		}
	}
}

// writeStatusFile saves st where Read finds it when no service answers.
func writeStatusFile(dir string, st Status) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, StatusFile), data, 0o600)
}
