package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/bidi"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// visual lays text out as a bidi-aware terminal width columns wide shows
// it, with GNU FriBidi's command-line tool (Debian package
// libfribidi-bin): each line in visual order, right-to-left lines
// right-aligned, the isolates and marks removed. Under CI=true a missing
// fribidi fails the test; elsewhere it skips it.
func visual(t *testing.T, text string, width int) string {
	t.Helper()
	path, err := exec.LookPath("fribidi")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("fribidi is not installed (Debian package libfribidi-bin; scripts/test.sh installs it): %v", err)
		}
		t.Skipf("fribidi is not installed (Debian package libfribidi-bin): %v", err)
	}
	cmd := exec.Command(path, "--nobreak", "--clean", "--width", strconv.Itoa(width))
	cmd.Stdin = strings.NewReader(text)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fribidi: %v", err)
	}
	return string(out)
}

// logicalText is text without the marks agent/bidi adds.
func logicalText(s string) string {
	return strings.NewReplacer(string(bidi.LRI), "", string(bidi.PDI), "", string(bidi.RLM), "").Replace(s)
}

// checkLines asserts that no line of out is wider than width, unless it
// is a single word (which is never cut), and that isolates are balanced
// on every line.
func checkLines(t *testing.T, out string, width int) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if bidi.Width(l) > width && len(strings.Fields(logicalText(l))) > 1 {
			t.Errorf("line wider than %d: %q", width, l)
		}
		if strings.Count(l, string(bidi.LRI)) != strings.Count(l, string(bidi.PDI)) {
			t.Errorf("unbalanced isolates: %q", l)
		}
	}
}

// TestCheckArabicVisual renders `check` in Arabic at two widths (a table
// wrapped in its columns, and blocks) through fribidi and compares what a
// bidi terminal shows with a golden; the dates, times, commands and paths
// must read in their own order. The same text without its isolates
// would not: the test shows that too.
func TestCheckArabicVisual(t *testing.T) {
	for _, tc := range []struct {
		bundle string
		width  int
		runs   []string // left-to-right runs that must show in order
	}{
		{"windows-bitlocker-suspended-firewall-public-off", 100, []string{"2024-09-15 08:00 UTC", "Windows 11 Pro 10.0.22631 23H2", "BitLocker Drive Encryption", "Privacy & security"}},
		{"linux-plain-nft-empty", 60, []string{"2025-03-21 09:00 UTC", "/dev/vda", "sudo ufw enable", "Debian GNU/Linux 12"}},
	} {
		t.Run(tc.bundle+"-"+strconv.Itoa(tc.width), func(t *testing.T) {
			t.Setenv("COLUMNS", strconv.Itoa(tc.width))
			dir := filepath.Join("..", "testdata", "bundles", tc.bundle)
			code, out, errOut := run(t, "check", "--replay", dir, "--lang", "ar")
			_, outEN, _ := run(t, "check", "--replay", dir, "--lang", "en")
			codeEN, _, _ := run(t, "check", "--replay", dir, "--json")
			if code != codeEN || code != ExitFail {
				t.Errorf("exit %d in Arabic, %d with --json, want %d: %s", code, codeEN, ExitFail, errOut)
			}
			if !strings.ContainsRune(out, bidi.LRI) || !strings.Contains(out, "ما تم رصده") {
				t.Fatalf("no isolates or no Arabic header:\n%s", out)
			}
			if strings.ContainsRune(outEN, bidi.LRI) || strings.ContainsRune(outEN, bidi.RLM) {
				t.Errorf("English output has bidi marks:\n%s", outEN)
			}
			checkLines(t, out, tc.width)
			checkLines(t, outEN, tc.width)
			shown := visual(t, out, tc.width)
			for _, r := range tc.runs {
				if !strings.Contains(shown, r) {
					t.Errorf("a bidi terminal does not show %q in order:\n%s", r, shown)
				}
			}
			// Without the isolates the first run does not read in order:
			// the test can fail.
			if bare := visual(t, logicalText(out), tc.width); strings.Contains(bare, tc.runs[0]) {
				t.Errorf("%q reads in order even without isolates; the test proves nothing", tc.runs[0])
			}
			checktest.GoldenBytes(t, filepath.Join("testdata", "rtl", "check-"+tc.bundle+"-"+strconv.Itoa(tc.width)+".ar.visual.txt"), []byte(shown))
		})
	}
}

// TestCheckTableNoTruncation: at any width, every word of every observed
// and expected text is in the table (wrapped, never cut), and no line is
// wider than the terminal.
func TestCheckTableNoTruncation(t *testing.T) {
	dir := filepath.Join("..", "testdata", "bundles", "windows-bitlocker-suspended-firewall-public-off")
	_, js, _ := run(t, "check", "--replay", dir, "--json")
	var out struct {
		Results []policies.Result `json:"results"`
	}
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatal(err)
	}
	for _, width := range []int{40, 60, 80, 120, 250} {
		for _, lang := range []string{"en", "fr", "ar"} {
			t.Setenv("COLUMNS", strconv.Itoa(width))
			code, table, _ := run(t, "check", "--replay", dir, "--lang", lang)
			if code != ExitFail {
				t.Errorf("%s at %d: exit %d, want %d", lang, width, code, ExitFail)
			}
			checkLines(t, table, width)
			words := strings.Fields(logicalText(table))
			has := map[string]bool{}
			for _, w := range words {
				has[w] = true
			}
			for _, r := range out.Results {
				// What Ward found, in lang (its catalogue messages), else
				// in English.
				for _, w := range strings.Fields(observedIn(r, lang)) {
					if !has[w] {
						t.Errorf("%s at %d: observed word %q of %v is not in the table:\n%s", lang, width, w, r.RuleID, table)
					}
				}
				if strings.Contains(table, "…") {
					t.Errorf("%s at %d: the table cuts a text:\n%s", lang, width, table)
				}
			}
			if lang == "fr" && !strings.Contains(table, "CONSTATÉ") {
				t.Errorf("fr at %d: headers not in French:\n%s", width, table)
			}
		}
	}
}

// arabicStatus writes the status of a replayed laptop (unencrypted disk,
// firewall off) as the service would, for status and notify.
func arabicStatus(t *testing.T) (dir, state string) {
	t.Helper()
	m, rec, err := source.OpenBundle(filepath.Join("..", "testdata", "bundles", "linux-plain-nft-empty"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	facts := collect.All(context.Background(), rec, m.CreatedAt)
	results := policies.Evaluate(context.Background(), pol, facts, policies.Options{Now: m.CreatedAt})
	st := notify.NewStatus(pol, "linux", results, m.CreatedAt)
	st.DeviceID, st.Epoch = "dev_rtl", 1
	dir, state = t.TempDir(), t.TempDir()
	data, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, notify.StatusFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, enroll.DeviceFile), []byte(`{"device_id":"dev_rtl","collector":"c:443","epoch":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	local := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = local })
	return dir, state
}

// dateTime is a date and a time as FormatTime writes them, in order.
var dateTime = regexp.MustCompile(`20\d\d-\d\d-\d\d \d\d:\d\d`)

// TestStatusArabicVisual renders `status` in Arabic through fribidi to a
// golden, 60 columns wide.
func TestStatusArabicVisual(t *testing.T) {
	dir, state := arabicStatus(t)
	t.Setenv("COLUMNS", "60")
	code, out, errOut := run(t, "status", "--status-dir", dir, "--state", state, "--lang", "ar")
	if code != ExitFail {
		t.Fatalf("status = %d, want %d: %s\n%s", code, ExitFail, errOut, out)
	}
	checkLines(t, out, 60)
	if !strings.ContainsRune(out, bidi.LRI) {
		t.Fatalf("no isolates:\n%s", out)
	}
	shown := visual(t, out, 60)
	if !dateTime.MatchString(shown) {
		t.Errorf("no date and time in order:\n%s", shown)
	}
	checktest.GoldenBytes(t, filepath.Join("testdata", "rtl", "status.ar.visual.txt"), []byte(shown))

	// --json is left as it is: no marks in the document.
	_, js, _ := run(t, "status", "--status-dir", dir, "--state", state, "--lang", "ar", "--json")
	if strings.ContainsRune(js, bidi.LRI) || strings.ContainsRune(js, bidi.RLM) {
		t.Errorf("status --json has bidi marks")
	}
}

// TestPrivacyArabicVisual renders `privacy` in Arabic through fribidi to
// a golden.
func TestPrivacyArabicVisual(t *testing.T) {
	dir := t.TempDir()
	r := &wardv1.Report{Sequence: 7, CollectedAt: timestamppb.New(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)),
		AgentVersion: "1.4.0", PolicyName: "baseline", PolicyVersion: 1,
		BaseFacts: []byte{0x01, 0x02, 0xff}, ResultsAsBase: true,
		Results: []*wardv1.RuleResult{{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL, Observed: "on /dev/vda: not encrypted"}}}
	data, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, notify.LastReportFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	local := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = local })
	t.Setenv("COLUMNS", "70")
	code, out, errOut := run(t, "privacy", "--lang", "ar", "--status-dir", dir, "--state", t.TempDir())
	if code != 0 {
		t.Fatalf("privacy = %d: %s", code, errOut)
	}
	checkLines(t, out, 70)
	shown := visual(t, out, 70)
	if !strings.Contains(shown, "2026-11-25 09:00") {
		t.Errorf("the date does not read in order:\n%s", shown)
	}
	checktest.GoldenBytes(t, filepath.Join("testdata", "rtl", "privacy.ar.visual.txt"), []byte(shown))
}

// TestNotifyArabicPayload: what `notify --once` sends to the desktop in
// Arabic (here recorded by --record-to instead of notify-send) carries the
// isolates around its left-to-right runs, and each text leads with a
// right-to-left mark when it starts with one ("Ward: …"); its logical
// text is the catalogue's message.
func TestNotifyArabicPayload(t *testing.T) {
	dir, _ := arabicStatus(t)
	rec := filepath.Join(t.TempDir(), "shown.jsonl")
	mkConfig(t, `{"quiet_hours": ""}`)
	code, out, errOut := run(t, "notify", "--once", "--lang", "ar", "--status-dir", dir, "--record-to", rec)
	if code != 0 {
		t.Fatalf("notify --once = %d: %s %s", code, out, errOut)
	}
	notices := shownNotices(t, rec, out)
	if len(notices) == 0 {
		t.Fatal("no notice")
	}
	for _, n := range notices {
		for _, text := range []string{n.Summary, n.Body} {
			if !bidi.HasRTL(text) {
				t.Errorf("notice text not in Arabic: %q", text)
				continue
			}
			if out := outsideIsolates(text); strings.ContainsAny(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
				t.Errorf("notice text %q has left-to-right text outside isolates: %q", text, out)
			}
			if strings.HasPrefix(logicalText(text), "Ward") && !strings.HasPrefix(text, string(bidi.RLM)) {
				t.Errorf("notice text %q starts with a left-to-right run but not with RLM", text)
			}
			if bidi.Paragraph(logicalText(text)) != text {
				t.Errorf("notice text %q is not the laid-out catalogue text", text)
			}
		}
		if !strings.Contains(logicalText(n.Body), "ward-agent status") {
			t.Errorf("body %q does not name the command", n.Body)
		}
	}
}

// outsideIsolates is s without what its isolates hold.
func outsideIsolates(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == bidi.LRI:
			depth++
		case r == bidi.PDI:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mkConfig writes the user's ward/config.json.
func mkConfig(t *testing.T, doc string) {
	t.Helper()
	p := userConfigPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// shownNotices reads what `notify --once --record-to rec` sent to the
// desktop, one JSON notice per line; out is the command's output, for the
// failure message.
func shownNotices(t *testing.T, rec, out string) []notify.Notice {
	t.Helper()
	data, err := os.ReadFile(rec)
	if err != nil {
		t.Fatalf("nothing sent to the desktop: %v (%s)", err, out)
	}
	var notices []notify.Notice
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var n notify.Notice
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			t.Fatal(err)
		}
		notices = append(notices, n)
	}
	return notices
}
