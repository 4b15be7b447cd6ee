package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/policies"
)

// shippedLangs are the languages every new message exists in.
var shippedLangs = []string{"en", "fr", "es", "ar", "ru", "uk", "pt"}

// deniedSource is a laptop read without administrator rights: the kernel
// refuses the nftables dump and iptables-save says so, as on Linux for a
// user who is not root. Everything else is the replayed laptop.
type deniedSource struct{ check.Source }

func (deniedSource) Nftables(context.Context) (check.NftRuleset, error) {
	return check.NftRuleset{}, fmt.Errorf("nftables: read generation: netlink receive: operation not permitted: %w", fs.ErrPermission)
}

func (d deniedSource) Command(ctx context.Context, tool string, args ...string) (check.CommandResult, error) {
	if tool == "iptables-save" || tool == "ip6tables-save" {
		return check.CommandResult{Path: "/usr/sbin/" + tool, ExitCode: 4,
			Stderr: []byte(tool + " v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n")}, nil
	}
	return d.Source.Command(ctx, tool, args...)
}

// honestStatus is a status of the test policy: three failures (one with a
// problem in every language, one with an English problem only, one with
// none), a check refused for lack of rights, and one that could not be
// decided for another reason.
func honestStatus(t *testing.T) notify.Status {
	t.Helper()
	pol, err := policies.Load(filepath.Join("testdata", "honest", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	deadline := since.Add(72 * time.Hour)
	results := []policies.Result{
		{RuleID: "disk-encrypted", Family: "disk_encryption", Status: policies.StatusFail, Severity: "critical",
			Observed: "/ on /dev/vda: not encrypted", FailingSince: &since, Deadline: &deadline},
		{RuleID: "screen-lock", Family: "os", Status: policies.StatusFail, Severity: "medium",
			Observed: "locks after: never", FailingSince: &since},
		{RuleID: "old-rule", Family: "os", Status: policies.StatusFail, Severity: "low", Observed: "it does not hold", FailingSince: &since},
		{RuleID: "firewall-on", Family: "firewall", Status: policies.StatusUnknown, Severity: "high", Observed: "unknown",
			Reason: "cannot read the firewall ruleset: cannot read nftables (permission denied (Ward must run as root): nftables: read generation: permission denied)"},
		{RuleID: "security-updates", Family: "patch_level", Status: policies.StatusUnknown, Severity: "high", Observed: "unknown",
			Reason: "apt-get -s dist-upgrade exited 100: E: Can't find a source to download version '2.6.2' of 'apt:amd64'"},
	}
	return notify.NewStatus(pol, "linux", results, since.Add(time.Hour))
}

// TestStatusWords renders the test policy's status in every shipped
// language against goldens (testdata/honest/status.LANG.golden; -update
// rewrites them), and checks the words that matter by value.
func TestStatusWords(t *testing.T) {
	st := honestStatus(t)
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	outs := map[string]string{}
	for _, lang := range shippedLangs {
		var b bytes.Buffer
		renderStatus(&b, st, notify.FromService, lang, now)
		outs[lang] = b.String()
		checktest.GoldenBytes(t, filepath.Join("testdata", "honest", "status."+lang+".golden"), b.Bytes())
	}
	en, fr := outs["en"], outs["fr"]
	// Failing items are titled with their problem, in the person's
	// language, else English, else the rule's title.
	for _, want := range []string{"\n1. Your disk is not encrypted\n", "\n2. Your screen does not lock by itself\n", "\n3. The old rule holds\n"} {
		if !strings.Contains(en, want) {
			t.Errorf("en lacks %q:\n%s", want, en)
		}
	}
	for _, want := range []string{"\n1. Votre disque n'est pas chiffré\n", "\n2. Your screen does not lock by itself\n", "\n3. La vieille règle tient\n"} {
		if !strings.Contains(fr, want) {
			t.Errorf("fr lacks %q:\n%s", want, fr)
		}
	}
	for lang, want := range map[string]string{"ar": "1. قرصك غير مشفّر", "ru": "1. Ваш диск не зашифрован", "uk": "1. Ваш диск не зашифрований", "pt": "1. O seu disco não está encriptado", "es": "1. Su disco no está cifrado"} {
		if !strings.Contains(outs[lang], want) {
			t.Errorf("%s lacks %q:\n%s", lang, want, outs[lang])
		}
	}
	// The goal never titles a failure: "The system disk is encrypted"
	// appears only as what is needed.
	if strings.Contains(en, ". The system disk is encrypted\n") || !strings.Contains(en, "What is needed: The system disk is encrypted.") {
		t.Errorf("en titles a failure with its goal:\n%s", en)
	}
	// Problem, then why, what to do, by when; then what was seen.
	order := []string{"1. Your disk is not encrypted", "Why it matters: A lost laptop", "What to do:", "Ask your IT contact to reinstall",
		"Deadline: 2026-12-04 09:00", "What Ward found: / on /dev/vda: not encrypted", "2. Your screen"}
	at := 0
	for _, s := range order {
		i := strings.Index(en[at:], s)
		if i < 0 {
			t.Fatalf("en: %q missing or out of order (after %d):\n%s", s, at, en)
		}
		at += i
	}
	// Could not be checked: said so, never fix steps or a deadline; the
	// refused one says administrator rights are needed.
	for lang, out := range outs {
		unk := out[strings.Index(out, "\n? "):]
		if strings.Count(unk, "\n? ") != 2 {
			t.Errorf("%s: want the two unchecked items last:\n%s", lang, unk)
		}
		for _, steps := range []string{"Turn the firewall on.", "Activez le pare-feu.", "Install the updates."} {
			if strings.Contains(out, steps) {
				t.Errorf("%s: fix steps %q for a check that could not be done:\n%s", lang, steps, out)
			}
		}
		if !strings.Contains(unk, i18n.T(lang, "status.unknown_admin")) || strings.Count(unk, i18n.T(lang, "status.unknown_help")) != 1 {
			t.Errorf("%s: the refused check lacks the administrator note, or the other one the usual help:\n%s", lang, unk)
		}
	}
	if !strings.Contains(en, "\n? Could not be checked: The firewall is on\n") || !strings.Contains(fr, "\n? N'a pas pu être vérifié : Le pare-feu est activé\n") {
		t.Errorf("unchecked items are not titled as such:\n%s\n%s", en, fr)
	}
}

// nonRoot runs ward-agent in this process as a person without
// administrator rights would: the OS refuses the firewall's ruleset and
// the process is not elevated.
func nonRoot(t *testing.T, elevated bool, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	src := deniedSource{replayed(t)}
	a := &app{version: "test", stdout: &stdout, stderr: &stderr,
		newSource: func() check.Source { return src }, elevated: func() bool { return elevated }}
	code := a.execute(context.Background(), args)
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return code, stdout.String()
}

// TestCheckWithoutAdminRights: `check` as a user who is not root names the
// checks that need administrator rights and what to do, gives them no
// fix steps, and keeps its exit code.
func TestCheckWithoutAdminRights(t *testing.T) {
	pol, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	var fwSteps string
	for _, r := range pol.Rules {
		if r.ID == "firewall-on" {
			fwSteps = strings.Fields(r.Remediation["en"]["linux"])[0] + " " + strings.Fields(r.Remediation["en"]["linux"])[1]
		}
	}
	code, out := nonRoot(t, false, "check", "--lang", "en", "--now", "2026-12-02T12:00:00Z")
	fw := out[strings.Index(out, "\n  firewall-on [UNKNOWN"):]
	fw = fw[:strings.Index(fw[1:], "\n\n")+1]
	if !strings.Contains(fw, "Not checked: this needs administrator rights (see the end).") || strings.Contains(fw, fwSteps) || strings.Contains(fw, "Deadline") {
		t.Errorf("firewall-on item:\n%s\nwant the administrator note and no fix steps (%q)", fw, fwSteps)
	}
	want := "\n\nChecks that need administrator rights: firewall-on. Run sudo ward-agent check as an administrator, or see what the Ward service found with ward-agent status (the service has those rights).\n"
	if !strings.HasSuffix(out, want) {
		t.Errorf("check as non-root ends:\n%s\nwant:\n%s", out[max(0, len(out)-400):], want)
	}
	refCode, ref, _ := runWith(t, replayed(t), "check", "--lang", "en", "--now", "2026-12-02T12:00:00Z")
	if code != ExitFail || refCode != ExitFail {
		t.Errorf("exit %d as non-root, %d with rights; want %d both (a rule fails either way)", code, refCode, ExitFail)
	}
	if strings.Contains(ref, "administrator") {
		t.Errorf("with the ruleset readable, check speaks of administrator rights:\n%s", ref)
	}

	_, fr := nonRoot(t, false, "check", "--lang", "fr", "--now", "2026-12-02T12:00:00Z")
	if !strings.Contains(fr, "Vérifications qui demandent des droits d'administrateur : firewall-on.") || !strings.Contains(fr, "Non vérifié : cela demande des droits d'administrateur") {
		t.Errorf("check --lang fr as non-root:\n%s", fr)
	}
	// As an administrator who is still refused: no advice to become one.
	_, admin := nonRoot(t, true, "check", "--lang", "en", "--now", "2026-12-02T12:00:00Z")
	if !strings.Contains(admin, "\n\nWard was refused even with administrator rights: firewall-on. Tell your IT contact.\n") || strings.Contains(admin, "sudo ward-agent check") {
		t.Errorf("check refused as an administrator:\n%s", admin)
	}
}

// TestAdminNoteForBundles: a bundle recorded without rights asks for a new
// recording, not for running check as an administrator here; results that
// need no rights add nothing.
func TestAdminNoteForBundles(t *testing.T) {
	refused := policies.Result{RuleID: "bitlocker", Status: policies.StatusUnknown,
		Reason: "reading BitLocker's state needs administrator rights; Ward was denied (permission denied (0x80041003))"}
	other := policies.Result{RuleID: "updates", Status: policies.StatusUnknown, Reason: "apt-get: not installed"}
	failed := policies.Result{RuleID: "fw", Status: policies.StatusFail, Reason: "permission denied"}
	var b bytes.Buffer
	renderAdminNote(&b, []policies.Result{other, refused, failed}, "en", false, true)
	if want := "\nThe support bundle was recorded without the administrator rights these checks need: bitlocker. Record it again as an administrator.\n"; b.String() != want {
		t.Errorf("replay note %q, want %q", b.String(), want)
	}
	b.Reset()
	renderAdminNote(&b, []policies.Result{other, failed}, "en", false, false)
	if b.Len() != 0 {
		t.Errorf("a note without any refused check: %q", b.String())
	}
}

// TestStatusFromAServiceWithoutRights: when the service itself was refused
// (it does not run with the rights it needs), `status` says the check needs
// administrator rights and that this is for IT, not fix steps.
func TestStatusFromAServiceWithoutRights(t *testing.T) {
	pol, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	facts := collect.All(context.Background(), deniedSource{replayed(t)}, now)
	results := policies.Evaluate(context.Background(), pol, facts, policies.Options{Now: now})
	st := notify.NewStatus(pol, "linux", results, now)
	var b bytes.Buffer
	renderStatus(&b, st, notify.FromService, "en", now)
	out := b.String()
	i := strings.Index(out, "\n? Could not be checked: The firewall is on\n")
	if i < 0 {
		t.Fatalf("no unchecked firewall item:\n%s", out)
	}
	item := out[i:]
	if j := strings.Index(item[1:], "\n\n"); j >= 0 {
		item = item[:j+1]
	}
	if !strings.Contains(item, "only an administrator can read nftables") || !strings.Contains(item, i18n.T("en", "status.unknown_admin")) {
		t.Errorf("firewall item:\n%s", item)
	}
	for _, r := range pol.Rules {
		if r.ID == "firewall-on" && strings.Contains(out, strings.TrimSpace(r.Remediation["en"]["linux"])[:40]) {
			t.Errorf("status gives the firewall's fix steps for a check it could not do:\n%s", out)
		}
	}
}

// TestNotifyOnceSaysWhat: what `notify --once` prints for each outcome.
func TestNotifyOnceSaysWhat(t *testing.T) {
	loc := time.FixedZone("EAT", 3*3600)
	now := time.Date(2026, 3, 2, 23, 0, 0, 0, loc)
	n := notify.Notice{Kind: notify.KindNew}
	set := notify.Settings{MaxPerDay: 3}
	for _, c := range []struct {
		name, lang string
		plan       notify.Plan
		noSession  bool
		want       string
	}{
		{"all failed, no session", "en", notify.Plan{Show: []notify.Notice{n, n, n}, Failed: []notify.Failure{{Notice: n, Err: fmt.Errorf("notify: notify-send exited 1: cannot open display")}, {Notice: n}, {Notice: n}},
			Next: now.Add(8 * time.Hour)}, true,
			"Notifications shown: 0\nNotifications that could not be shown: 3 (notify: notify-send exited 1: cannot open display). They will be tried again next time.\n" +
				"This is not running in a desktop session (there is no screen to show them on), so no notification can appear here.\nNext possible notification: 2026-03-03 07:00\n"},
		{"shown", "en", notify.Plan{Show: []notify.Notice{n}, Shown: []notify.Notice{n}, Next: now.Add(8 * time.Hour)}, false,
			"Notifications shown: 1\nNext possible notification: 2026-03-03 07:00\n"},
		{"quiet hours", "en", notify.Plan{Held: notify.HoldQuiet, HeldUntil: time.Date(2026, 3, 3, 8, 0, 0, 0, loc), Waiting: 2, Next: time.Date(2026, 3, 3, 8, 0, 0, 0, loc)}, false,
			"Nothing shown now: quiet hours until 2026-03-03 08:00.\n"},
		{"quiet hours ending today", "fr", notify.Plan{Held: notify.HoldQuiet, HeldUntil: time.Date(2026, 3, 2, 23, 30, 0, 0, loc), Waiting: 1, Next: time.Date(2026, 3, 2, 23, 30, 0, 0, loc)}, false,
			"Rien d'affiché pour l'instant : heures calmes jusqu'à 23:30.\n"},
		{"snoozed", "en", notify.Plan{Held: notify.HoldSnooze, HeldUntil: now.Add(30 * time.Minute), Waiting: 1, Next: now.Add(30 * time.Minute)}, false,
			"Nothing shown now: notifications are snoozed until 23:30.\n"},
		{"snooze then quiet hours", "en", notify.Plan{Held: notify.HoldSnooze, HeldUntil: now.Add(30 * time.Minute), Waiting: 1, Next: time.Date(2026, 3, 3, 8, 0, 0, 0, loc)}, false,
			"Nothing shown now: notifications are snoozed until 23:30.\nNext possible notification: 2026-03-03 08:00\n"},
		{"cap", "es", notify.Plan{Show: []notify.Notice{n}, Shown: []notify.Notice{n}, Held: notify.HoldCap, HeldUntil: time.Date(2026, 3, 3, 0, 0, 0, 0, loc), Waiting: 1, Next: time.Date(2026, 3, 3, 0, 0, 0, 0, loc)}, false,
			"Notificaciones mostradas: 1\nSe alcanzó el límite de notificaciones de hoy (3): el resto espera hasta 2026-03-03 00:00.\n"},
		{"not due", "en", notify.Plan{Next: time.Date(2026, 3, 3, 9, 0, 0, 0, loc)}, false,
			"Nothing is due now; next reminder: 2026-03-03 09:00.\n"},
		{"nothing", "ar", notify.Plan{}, false, "لا شيء لإبلاغك به الآن. يعرض ward-agent status الحالة كاملة.\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.plan.Failed {
				if c.plan.Failed[i].Err == nil {
					c.plan.Failed[i].Err = c.plan.Failed[0].Err
				}
			}
			var b bytes.Buffer
			renderNotifyOutcome(&b, c.plan, set, c.lang, now, c.noSession)
			if b.String() != c.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), c.want)
			}
		})
	}
}

// TestNotifyOnceInEveryLanguage: each outcome is said in each shipped
// language, with its time, and never in English for another language.
func TestNotifyOnceInEveryLanguage(t *testing.T) {
	now := time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC)
	morning := time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC)
	n := notify.Notice{Kind: notify.KindNew}
	plans := map[string]notify.Plan{
		"quiet":  {Held: notify.HoldQuiet, HeldUntil: morning, Next: morning},
		"snooze": {Held: notify.HoldSnooze, HeldUntil: morning, Next: morning},
		"cap":    {Held: notify.HoldCap, HeldUntil: morning, Next: morning},
		"failed": {Show: []notify.Notice{n}, Failed: []notify.Failure{{Notice: n, Err: fmt.Errorf("no display")}}, Next: morning},
	}
	english := map[string]string{}
	for _, lang := range shippedLangs {
		for name, plan := range plans {
			var b bytes.Buffer
			renderNotifyOutcome(&b, plan, notify.Settings{}, lang, now, true)
			out := b.String()
			if !strings.Contains(out, "2026-03-03 08:00") {
				t.Errorf("%s %s: no time in %q", lang, name, out)
			}
			if lang == "en" {
				english[name] = out
			} else if out == english[name] {
				t.Errorf("%s %s: English text %q", lang, name, out)
			}
			if name == "cap" && !strings.Contains(out, "(4)") {
				t.Errorf("%s cap: the default limit is not said: %q", lang, out)
			}
		}
	}
}

// TestNotifyOnceWithoutDesktop runs `notify --once` with the native
// notifier where there is no desktop session: the notifications fail, and
// it says so instead of counting them as shown, and does not remember them
// as shown.
func TestNotifyOnceWithoutDesktop(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	for _, k := range []string{"DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"} {
		t.Setenv(k, "")
	}
	os.MkdirAll(filepath.Join(home, ".config", "ward"), 0o700)
	if err := os.WriteFile(filepath.Join(home, ".config", "ward", "config.json"), []byte(`{"quiet_hours": "", "max_per_day": 10}`), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st := honestStatus(t)
	data, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, notify.StatusFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "notify", "--once", "--lang", "en", "--status-dir", dir)
	if code != 0 || !strings.HasPrefix(out, "Notifications shown: 0\nNotifications that could not be shown: 3 (notify: ") ||
		!strings.Contains(out, "\nThis is not running in a desktop session") {
		t.Errorf("notify --once without a desktop = %d:\n%s", code, out)
	}
	mem, err := notify.LoadMemory(filepath.Join(home, ".config", "ward", "notify-state.json"))
	if err != nil || len(mem.Shown) != 0 {
		t.Errorf("remembered as shown: %+v, %v", mem, err)
	}
}
