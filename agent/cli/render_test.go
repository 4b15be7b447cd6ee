package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/bidi"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// The goldens of this file (testdata/render; -update rewrites them) show
// what a person reads, in every shipped language, from one fixed round on
// a Debian laptop under the shipped baseline: the disk is not encrypted,
// two services are reachable through the firewall, security updates are
// overdue, the swap could not be read (an older agent's English reason,
// with no catalogue text) and the system is supported (a policy's own
// English literal). What Ward found is catalogue messages with the ids
// helper catalogue defines (disk.volume_not_encrypted,
// firewall.service_reachable, patch.security_pending); an id the
// catalogue does not hold renders as its id and parameters, so these
// goldens change when it does.

// renderNow is the fixture's "now": 2026-12-02 12:00 UTC.
var renderNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func utc(month time.Month, day, hour int) *time.Time {
	t := time.Date(2026, month, day, hour, 0, 0, 0, time.UTC)
	return &t
}

// renderResults is the round's results, with the rule's texts in lang as
// the engine gives them (Options.Lang), for a linux laptop.
func renderResults(t *testing.T, pol *policies.Policy, lang string) []policies.Result {
	t.Helper()
	results := []policies.Result{
		{RuleID: "disk-encrypted", Family: "disk_encryption", Status: policies.StatusFail, Severity: "critical",
			Observed:     "/ (/dev/vda): not encrypted",
			ObservedText: []texts.Text{texts.New("disk.volume_not_encrypted", "place", "/ (/dev/vda)")},
			FailingSince: utc(12, 1, 9), Deadline: utc(12, 4, 9)},
		{RuleID: "swap-encrypted", Family: "disk_encryption", Status: policies.StatusUnknown, Severity: "high",
			Observed: "unknown", Reason: "cannot read /proc/swaps: open /proc/swaps: permission denied"},
		{RuleID: "firewall-on", Family: "firewall", Status: policies.StatusFail, Severity: "high",
			Observed: "TCP 22 (sshd) is reachable from 0.0.0.0/0; UDP 5353 (avahi-daemon) is reachable from 192.168.1.0/24",
			ObservedText: []texts.Text{
				texts.New("firewall.service_reachable", "protocol", "TCP", "place", "22 (sshd)", "sources", "0.0.0.0/0"),
				texts.New("firewall.service_reachable", "protocol", "UDP", "place", "5353 (avahi-daemon)", "sources", "192.168.1.0/24"),
			},
			FailingSince: utc(12, 2, 6), Deadline: utc(12, 3, 6)},
		{RuleID: "security-updates", Family: "patch_level", Status: policies.StatusFail, Severity: "high",
			Observed:     "3 security updates pending",
			ObservedText: []texts.Text{texts.New("patch.security_pending", "count", "3")},
			FailingSince: utc(11, 10, 8), Deadline: utc(11, 24, 8), Overdue: true},
		{RuleID: "os-supported-linux", Family: "os", Status: policies.StatusPass, Severity: "high",
			Observed: "Debian GNU/Linux 12"},
	}
	pick := func(m map[string]string) string {
		if s := m[lang]; s != "" {
			return s
		}
		return m[i18n.Default]
	}
	for i := range results {
		r := &results[i]
		j := slices.IndexFunc(pol.Rules, func(rule policies.Rule) bool { return rule.ID == r.RuleID })
		if j < 0 {
			t.Fatalf("baseline has no rule %s", r.RuleID)
		}
		rule := pol.Rules[j]
		r.Title, r.Expected = pick(rule.Titles), pick(rule.Expected)
		r.Remediation = rule.Remediation[lang]["linux"]
		if r.Remediation == "" {
			r.Remediation = rule.Remediation[i18n.Default]["linux"]
		}
	}
	return results
}

// allKnown reports whether the catalogue holds every message of results.
func allKnown(results []policies.Result) bool {
	for _, r := range results {
		for _, p := range slices.Concat(r.ObservedText, r.ReasonText) {
			if !texts.Known(p.ID) {
				return false
			}
		}
	}
	return true
}

func fixtureFacts() *wardv1.Facts {
	return &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux", Name: "Debian GNU/Linux", Version: "12"}}
}

func baseline(t *testing.T) *policies.Policy {
	t.Helper()
	pol, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// renderCheck is `check`'s text output for the fixture in lang, width
// columns wide, as the command writes it: through the right-to-left writer
// for Arabic, with the note on the checks that need administrator rights
// (here as a person without them).
func renderCheck(t *testing.T, lang string, width int) (string, []policies.Result) {
	t.Helper()
	pol := baseline(t)
	results := renderResults(t, pol, lang)
	var b bytes.Buffer
	var w io.Writer = &b
	bw := bidi.NewWriter(&b, width)
	if i18n.RTL(lang) {
		w = bw
	}
	renderTable(w, pol, fixtureFacts(), results, renderNow, lang, width)
	renderAdminNote(w, results, lang, false, false)
	bw.Flush()
	return b.String(), results
}

// TestCheckGoldens renders `check` for the fixture in every shipped
// language, 80 columns wide, against goldens, and checks by value that
// what Ward found is said in the reader's language from the catalogue,
// never the English text beside it, and that the English one is shown
// where there is no catalogue text.
func TestCheckGoldens(t *testing.T) {
	for _, lang := range shippedLangs {
		t.Run(lang, func(t *testing.T) {
			out, results := renderCheck(t, lang, 80)
			checktest.GoldenBytes(t, filepath.Join("testdata", "render", "check."+lang+".golden"), []byte(out))
			// The note on administrator rights is one line (see
			// renderAdminNote); the rest fits the width. Every observed
			// text of the fixture is in the catalogue (an unknown id would
			// render as a fallback, not as the reader's words).
			if !allKnown(results) {
				t.Errorf("the catalogue lacks some of the fixture's message ids")
			}
			checkLines(t, out[:strings.LastIndex(out, "\n\n")+1], 80)
			if code := outcome(results); code != ExitFail {
				t.Errorf("outcome %d, want %d (the exit code of check)", code, ExitFail)
			}
			plain := logicalText(out)
			flat := strings.Join(strings.Fields(plain), " ")
			words := map[string]bool{}
			for _, w := range strings.Fields(plain) {
				words[w] = true
			}
			for _, r := range results {
				said := observedIn(r, lang)
				if len(r.ObservedText) > 0 {
					if said != texts.Render(lang, r.ObservedText) {
						t.Errorf("%s: observed %q is not the catalogue's rendering", r.RuleID, said)
					}
					if said != r.Observed && strings.Contains(flat, r.Observed) {
						t.Errorf("%s: the English observed text %q is shown beside its catalogue text:\n%s", r.RuleID, r.Observed, out)
					}
				} else if said != r.Observed {
					t.Errorf("%s: without catalogue text, observed %q, want the English %q", r.RuleID, said, r.Observed)
				}
				for _, w := range strings.Fields(said) {
					if !words[w] {
						t.Errorf("%s: observed word %q (of %q) is not in the output:\n%s", r.RuleID, w, said, out)
					}
				}
			}
			// The swap's English reason, the only one it has, is shown;
			// its check needs administrator rights, so no fix steps.
			if !strings.Contains(flat, "cannot read /proc/swaps: open /proc/swaps: permission denied") ||
				!strings.Contains(flat, i18n.T(lang, "check.item_admin")) {
				t.Errorf("the swap's reason or its administrator note is missing:\n%s", out)
			}
			if !strings.Contains(flat, i18n.T(lang, "check.overdue", "deadline", "2026-11-24 08:00 UTC")) {
				t.Errorf("security updates are not said to be overdue:\n%s", out)
			}
		})
	}
}

// writeRenderStatus publishes the fixture's status as the service would
// (in English; the status carries every language's rule texts and the
// catalogue messages), enrolled as dev_render, and gives the test a HOME
// whose config has no quiet hours, in UTC.
func writeRenderStatus(t *testing.T, discreet bool) (dir, state, home string) {
	t.Helper()
	pol := baseline(t)
	st := notify.NewStatus(pol, "linux", renderResults(t, pol, "en"), time.Date(2026, 12, 2, 11, 30, 0, 0, time.UTC))
	st.DeviceID, st.Epoch, st.Discreet = "dev_render", 1, discreet
	dir, state, home = t.TempDir(), t.TempDir(), t.TempDir()
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, notify.StatusFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, enroll.DeviceFile), []byte(`{"device_id":"dev_render","collector":"c:443","epoch":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	local := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = local })
	mkConfig(t, `{"quiet_hours": "", "max_per_day": 4}`)
	return dir, state, home
}

// runAt runs ward-agent in this process with its clock at now.
func runAt(t *testing.T, now time.Time, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{version: "test", stdout: &stdout, stderr: &stderr, now: func() time.Time { return now }}
	code := a.execute(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

// TestStatusGoldens runs `status` on the fixture's saved status in every
// shipped language against goldens: what Ward found in the reader's
// language, the swap's English reason as it is, exit 1.
func TestStatusGoldens(t *testing.T) {
	t.Setenv("COLUMNS", "80")
	for _, lang := range shippedLangs {
		t.Run(lang, func(t *testing.T) {
			dir, state, _ := writeRenderStatus(t, false)
			code, out, errOut := runAt(t, renderNow, "status", "--status-dir", dir, "--state", state, "--lang", lang)
			if code != ExitFail {
				t.Fatalf("status = %d, want %d: %s\n%s", code, ExitFail, errOut, out)
			}
			checktest.GoldenBytes(t, filepath.Join("testdata", "render", "status."+lang+".golden"), []byte(out))
			plain := logicalText(out)
			for _, r := range renderResults(t, baseline(t), lang) {
				if r.Status != policies.StatusFail {
					continue
				}
				want := i18n.T(lang, "status.seen", "observed", texts.Render(lang, r.ObservedText))
				if !strings.Contains(strings.Join(strings.Fields(plain), " "), want) {
					t.Errorf("%s: %q is not in the status:\n%s", r.RuleID, want, out)
				}
			}
			if !strings.Contains(plain, i18n.T(lang, "status.unknown_reason", "reason", "cannot read /proc/swaps: open /proc/swaps: permission denied")) {
				t.Errorf("the swap's English reason is not shown as it is:\n%s", out)
			}
			// --json carries the catalogue messages themselves.
			_, js, _ := runAt(t, renderNow, "status", "--status-dir", dir, "--state", state, "--json")
			var doc notify.Status
			if err := json.Unmarshal([]byte(js), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Results) != 5 || len(doc.Results[2].ObservedText) != 2 || doc.Results[2].ObservedText[1].Params["place"] != "5353 (avahi-daemon)" {
				t.Errorf("status --json lost the observed texts: %+v", doc.Results)
			}
		})
	}
}

// notifyOnce runs `notify --once` on the fixture's status at renderNow,
// the notices recorded instead of shown; the disk's first notice was
// shown the day before (so it is due as a reminder). It returns the
// notices and what the command printed.
func notifyOnce(t *testing.T, lang string, discreet bool) ([]notify.Notice, string) {
	t.Helper()
	dir, _, home := writeRenderStatus(t, discreet)
	mem := notify.Memory{LastShown: map[string]time.Time{"disk-encrypted": time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
		Shown: []time.Time{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}}
	if err := notify.SaveMemory(filepath.Join(home, ".config", "ward", "notify-state.json"), mem); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(t.TempDir(), "shown.jsonl")
	code, out, errOut := runAt(t, renderNow, "notify", "--once", "--lang", lang, "--status-dir", dir, "--record-to", rec)
	if code != 0 {
		t.Fatalf("notify --once = %d: %s %s", code, out, errOut)
	}
	notices := shownNotices(t, rec, out)
	return notices, out
}

// noticesText lays the notices out for a golden: for each, the
// application name the desktop shows it under and its two texts, then
// what `notify --once` printed.
func noticesText(notices []notify.Notice, out string) string {
	var b strings.Builder
	for i, n := range notices {
		fmt.Fprintf(&b, "notification %d (%s; %s)\n", i+1, n.Kind, strings.Join(n.Rules, ", "))
		fmt.Fprintf(&b, "app: %s\nsummary: %s\nbody: %s\n\n", cmp.Or(notify.AppName(n), "(none)"), n.Summary, cmp.Or(n.Body, "(none)"))
	}
	b.WriteString("notify --once:\n")
	b.WriteString(out)
	return b.String()
}

// TestNotifyGoldens runs `notify --once` on the fixture in every shipped
// language, plainly and in discreet mode, against goldens of what the
// desktop would get and what the command says, and checks them by value:
// the overdue rule first, then the nearest deadline; each notice states the
// problem and what Ward found in the reader's language; a discreet notice
// names nothing.
func TestNotifyGoldens(t *testing.T) {
	t.Setenv("COLUMNS", "80")
	pol := baseline(t)
	results := map[string]policies.Result{}
	for _, r := range renderResults(t, pol, "en") {
		results[r.RuleID] = r
	}
	problem := func(id, lang string) string {
		for _, r := range pol.Rules {
			if r.ID == id {
				return r.Problem[lang]
			}
		}
		return ""
	}
	for _, lang := range shippedLangs {
		t.Run(lang, func(t *testing.T) {
			notices, out := notifyOnce(t, lang, false)
			var kinds []string
			for _, n := range notices {
				kinds = append(kinds, string(n.Kind)+" "+strings.Join(n.Rules, ","))
			}
			want := []string{"overdue security-updates", "new firewall-on", "reminder disk-encrypted"}
			if !slices.Equal(kinds, want) {
				t.Fatalf("notices %q, want %q", kinds, want)
			}
			for _, n := range notices {
				r := results[n.Rules[0]]
				body := logicalText(n.Body)
				observed := strings.TrimSuffix(texts.Render(lang, r.ObservedText), ".")
				if !strings.HasPrefix(body, problem(r.RuleID, lang)+". ") || !strings.Contains(body, observed) || !strings.Contains(body, "ward-agent status") {
					t.Errorf("%s body %q: want the %s problem %q, what Ward found %q and the command", r.RuleID, body, lang, problem(r.RuleID, lang), observed)
				}
				if observed != r.Observed && strings.Contains(body, r.Observed) {
					t.Errorf("%s body %q has the English observed text", r.RuleID, body)
				}
				if notify.AppName(n) != notify.ProductName {
					t.Errorf("a plain notice shows under %q", notify.AppName(n))
				}
			}
			if got := logicalText(notices[0].Summary); got != i18n.T(lang, "notify.overdue", "deadline", "2026-11-24 08:00") {
				t.Errorf("overdue summary %q", got)
			}
			if got := logicalText(notices[2].Summary); got != i18n.T(lang, "notify.reminder", "deadline", "2026-12-04 09:00") {
				t.Errorf("reminder summary %q", got)
			}
			wantOut := i18n.T(lang, "notify.once_shown", "count", "3") + "\n" + i18n.T(lang, "notify.next", "time", "2026-12-02 14:00") + "\n"
			if logicalText(out) != wantOut {
				t.Errorf("notify --once printed %q, want %q", logicalText(out), wantOut)
			}

			discreet, dout := notifyOnce(t, lang, true)
			if len(discreet) != 1 || !discreet[0].Discreet || discreet[0].Body != "" || notify.AppName(discreet[0]) != "" ||
				logicalText(discreet[0].Summary) != i18n.T(lang, "notify.discreet_plain") || len(discreet[0].Rules) != 3 {
				t.Errorf("discreet notices: %+v", discreet)
			}

			// In quiet hours nothing is shown, and --once says why and
			// until when.
			dir, _, _ := writeRenderStatus(t, false)
			mkConfig(t, `{"quiet_hours": "11:00-13:00"}`)
			rec := filepath.Join(t.TempDir(), "shown.jsonl")
			code, qout, errOut := runAt(t, renderNow, "notify", "--once", "--lang", lang, "--status-dir", dir, "--record-to", rec)
			if _, err := os.Stat(rec); code != 0 || err == nil {
				t.Errorf("notify --once in quiet hours = %d (%s), recorded a notice: %v", code, errOut, err == nil)
			}
			if want := i18n.T(lang, "notify.held_quiet", "time", "13:00") + "\n"; logicalText(qout) != want {
				t.Errorf("notify --once in quiet hours printed %q, want %q", logicalText(qout), want)
			}
			golden := noticesText(notices, out) + "\n--- discreet ---\n" + noticesText(discreet, dout) +
				"\n--- quiet hours 11:00-13:00 ---\n" + noticesText(nil, qout)
			checktest.GoldenBytes(t, filepath.Join("testdata", "render", "notify."+lang+".golden"), []byte(golden))
		})
	}
}

// TestRenderArabicVisual: the fixture's `check`, `status` and
// notifications in Arabic as a bidi terminal shows them (GNU FriBidi),
// against goldens; the left-to-right runs (paths, addresses, dates,
// commands) read in their own order.
func TestRenderArabicVisual(t *testing.T) {
	out, _ := renderCheck(t, "ar", 80)
	shown := visual(t, out, 80)
	for _, run := range []string{"2026-12-04 09:00 UTC", "2026-11-24 08:00 UTC", "sudo ward-agent check", "Debian GNU/Linux 12", "/proc/swaps"} {
		if !strings.Contains(shown, run) {
			t.Errorf("check: %q does not read in order:\n%s", run, shown)
		}
	}
	checktest.GoldenBytes(t, filepath.Join("testdata", "render", "check.ar.visual.txt"), []byte(shown))

	t.Setenv("COLUMNS", "60")
	dir, state, _ := writeRenderStatus(t, false)
	_, status, _ := runAt(t, renderNow, "status", "--status-dir", dir, "--state", state, "--lang", "ar")
	checkLines(t, status, 60)
	shown = visual(t, status, 60)
	for _, run := range []string{"2026-12-04 09:00", "2026-12-02 11:30"} {
		if !strings.Contains(shown, run) {
			t.Errorf("status: %q does not read in order:\n%s", run, shown)
		}
	}
	checktest.GoldenBytes(t, filepath.Join("testdata", "render", "status.ar.visual.txt"), []byte(shown))

	// A notification is one paragraph each for its summary and body; the
	// desktop wraps it, here to 50 columns.
	notices, once := notifyOnce(t, "ar", false)
	var b strings.Builder
	for _, n := range notices {
		for _, text := range []string{n.Summary, n.Body} {
			if !bidi.HasRTL(text) || strings.ContainsAny(outsideIsolates(text), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
				t.Errorf("notice text %q: not Arabic, or left-to-right text outside isolates", text)
			}
			b.WriteString(visual(t, text+"\n", 50))
		}
		b.WriteString("\n")
	}
	shown = b.String()
	for _, run := range []string{"2026-11-24 08:00", "2026-12-04 09:00", "ward-agent status"} {
		if !strings.Contains(shown, run) {
			t.Errorf("notifications: %q does not read in order:\n%s", run, shown)
		}
	}
	shown += "\nnotify --once:\n" + visual(t, once, 60)
	if !strings.Contains(shown, "2026-12-02 14:00") {
		t.Errorf("notify --once: the time does not read in order:\n%s", shown)
	}
	checktest.GoldenBytes(t, filepath.Join("testdata", "render", "notify.ar.visual.txt"), []byte(shown))
}

// TestObservedAndReasonWords: a result's catalogue texts are rendered in
// the reader's language (English for a language the catalogue lacks);
// without any, its English text is shown as it is; an id the catalogue
// does not hold still shows its data.
func TestObservedAndReasonWords(t *testing.T) {
	platform := []texts.Text{texts.New("engine.platform_unknown")}
	r := notify.Result{Status: policies.StatusUnknown, Observed: "unknown", Reason: "cannot tell which platform this device runs", ReasonText: platform}
	for lang, want := range map[string]string{
		"fr":    "impossible de savoir quel système fait fonctionner cet appareil",
		"fr-CA": "impossible de savoir quel système fait fonctionner cet appareil",
		"ar":    "لا يمكن معرفة النظام الذي يعمل عليه هذا الجهاز",
		"uk":    "не вдається визначити, яка система працює на цьому пристрої",
		"de":    "cannot tell which platform this device runs",
	} {
		if got := r.ReasonIn(lang); got != want {
			t.Errorf("reason in %s: %q, want %q", lang, got, want)
		}
	}
	old := notify.Result{Observed: "/ on /dev/vda: not encrypted", Reason: "apt-get: not found"}
	if got := old.ObservedIn("fr"); got != old.Observed {
		t.Errorf("an older status's observed in fr: %q, want the English %q", got, old.Observed)
	}
	if got := old.ReasonIn("ar"); got != old.Reason {
		t.Errorf("an older status's reason in ar: %q", got)
	}
	newer := notify.Result{Observed: "x", ObservedText: []texts.Text{texts.New("disk.from_a_newer_agent", "place", "/home")}}
	if got := newer.ObservedIn("fr"); !strings.Contains(got, "/home") {
		t.Errorf("an unknown id loses its data: %q", got)
	}
	pr := policies.Result{Status: policies.StatusUnknown, Reason: "English", ReasonText: platform}
	if got := reasonIn(pr, "es"); got != "no se puede saber qué sistema usa este equipo" {
		t.Errorf("check's reason in es: %q", got)
	}
	// The two fields travel in check --json and the status document.
	data, err := json.Marshal(pr)
	if err != nil || !strings.Contains(string(data), `"reason_text":[{"id":"engine.platform_unknown"}]`) {
		t.Errorf("policies.Result JSON: %s, %v", data, err)
	}
	st := notify.NewStatus(&policies.Policy{Name: "p", Version: 1}, "linux", []policies.Result{pr}, renderNow)
	if len(st.Results[0].ReasonText) != 1 || st.Results[0].ReasonText[0].ID != "engine.platform_unknown" {
		t.Errorf("NewStatus drops the reason text: %+v", st.Results[0])
	}
}
