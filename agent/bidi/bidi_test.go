package bidi

import (
	"strings"
	"testing"
)

// show makes the marks visible: [ for LRI, ] for PDI, < for RLM.
func show(s string) string {
	return strings.NewReplacer(string(LRI), "[", string(PDI), "]", string(RLM), "<").Replace(s)
}

// logical removes the marks this package adds.
func logical(s string) string {
	return strings.NewReplacer(string(LRI), "", string(PDI), "", string(RLM), "").Replace(s)
}

func TestIsolate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Left-to-right lines and lines with marks are left alone.
		{"on /dev/vda: not encrypted", "on /dev/vda: not encrypted"},
		{"ما تم رصده: \u2066/dev/vda\u2069", "ما تم رصده: [/dev/vda]"},
		// A path keeps its leading slash; the colon after it is the sentence's.
		{"ما الخطأ: / on /dev/vda: not encrypted", "ما الخطأ: [/ on /dev/vda: not encrypted]"},
		{"/ on /dev/vda ثم", "/ [on /dev/vda] ثم"},
		{"القرص /dev/vda غير مشفّر.", "القرص [/dev/vda] غير مشفّر."},
		// A date and a time are one run, in their order.
		{"الموعد النهائي: 2026-12-04 06:56", "الموعد النهائي: [2026-12-04 06:56]"},
		{"فُحص في 2026-12-04 06:56، السياسة baseline (الإصدار 3)", "فُحص في [2026-12-04 06:56]، السياسة [baseline] (الإصدار [3])"},
		// A command with its operators is one run; the quotation marks
		// around it are the sentence's.
		{"افتح «ward-agent status» الآن", "افتح «[ward-agent status]» الآن"},
		{"نفّذ \"sudo apt update && sudo apt upgrade\".", "نفّذ \"[sudo apt update && sudo apt upgrade]\"."},
		// Brackets that open and close inside the run stay in it.
		{"الإصدار v1.2 (build 22631.4460) مثبّت", "الإصدار [v1.2 (build 22631.4460)] مثبّت"},
		{"استدعِ f(x) ثم", "استدعِ [f(x)] ثم"},
		// Product names, host names and URLs.
		{"شغّل BitLocker على C:", "شغّل [BitLocker] على [C]:"},
		{"المجمِّع https://ward.example.org:8443/v1 يتلقى", "المجمِّع [https://ward.example.org:8443/v1] يتلقى"},
		{"افتح Windows Update، ثم أعد التشغيل", "افتح [Windows Update]، ثم أعد التشغيل"},
		// A list number and Arabic-Indic digits.
		{"1. القرص غير مشفّر", "[1]. القرص غير مشفّر"},
		{"٣ مشاكل", "٣ مشاكل"},
		{"", ""},
	} {
		got := Isolate(tc.in)
		if show(got) != tc.want {
			t.Errorf("Isolate(%q)\n got %s\nwant %s", tc.in, show(got), tc.want)
		}
		if logical(got) != tc.in && !HasMarks(tc.in) {
			t.Errorf("Isolate(%q): logical text changed: %q", tc.in, logical(got))
		}
		if strings.Count(got, string(LRI)) != strings.Count(got, string(PDI)) {
			t.Errorf("Isolate(%q) = %s: unbalanced isolates", tc.in, show(got))
		}
	}
}

func TestWrap(t *testing.T) {
	in := "   ما الخطأ: القرص /dev/vda غير مشفّر، ويجب تشغيل التشفير قبل 2026-12-04 06:56 بالأمر sudo cryptsetup reencrypt --encrypt /dev/vda"
	for _, width := range []int{20, 30, 40, 60, 80, 200} {
		lines := Wrap(in, width)
		for _, l := range lines {
			if w := Width(l); w > width {
				t.Errorf("width %d: line %q is %d wide", width, l, w)
			}
			if l != lines[0] && !strings.HasPrefix(l, "   ") {
				t.Errorf("width %d: line %q lost the indentation", width, l)
			}
		}
		if got := strings.Fields(strings.Join(lines, " ")); strings.Join(got, " ") != strings.Join(strings.Fields(in), " ") {
			t.Errorf("width %d: words changed: %q", width, lines)
		}
	}
	// A list item's lines line up after its marker.
	got := Wrap("12. one two three four", 12)
	want := []string{"12. one two", "    three", "    four"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Wrap list item = %q, want %q", got, want)
	}
	// A word wider than the line gets a line of its own, uncut.
	got = Wrap("ab /a/very/long/path cd", 8)
	want = []string{"ab", "/a/very/long/path", "cd"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Wrap long word = %q, want %q", got, want)
	}
	// An isolate is never cut, even where it holds spaces.
	iso := "كلمة \u20662026-12-04 06:56\u2069 كلمة"
	got = Wrap(iso, 12)
	for _, l := range got {
		if strings.Count(l, string(LRI)) != strings.Count(l, string(PDI)) {
			t.Errorf("Wrap cut an isolate: %q", got)
		}
	}
	if len(got) != 3 {
		t.Errorf("Wrap(%q, 12) = %q, want 3 lines", iso, got)
	}
}

func TestLines(t *testing.T) {
	in := "     نفّذ في الطرفية: sudo apt update && sudo apt full-upgrade ثم أعد تشغيل الحاسوب"
	got := Lines(in, 40)
	var shown []string
	for _, l := range got {
		shown = append(shown, show(l))
		if Width(l) > 40 {
			t.Errorf("line %q wider than 40", l)
		}
	}
	want := []string{
		"     نفّذ في الطرفية: [sudo apt update &&]",
		"     [sudo apt full-upgrade] ثم أعد تشغيل",
		"     الحاسوب",
	}
	if strings.Join(shown, "\n") != strings.Join(want, "\n") {
		t.Errorf("Lines:\n%s\nwant\n%s", strings.Join(shown, "\n"), strings.Join(want, "\n"))
	}
	if strings.Join(strings.Fields(logical(strings.Join(got, " "))), " ") != strings.Join(strings.Fields(in), " ") {
		t.Errorf("Lines changed the logical text: %q", got)
	}
	// A wrapped line that starts with a left-to-right run and holds no
	// right-to-left letter is led by RLM.
	got = Lines("الأمر: sudo apt update && sudo apt full-upgrade", 24)
	if len(got) != 2 || show(got[1]) != "<[&& sudo apt full-upgrade]" {
		t.Errorf("Lines = %q, want the second line led by RLM", got)
	}
	// A run longer than a line goes on over the next lines, each part
	// isolated, and no line is wider than the width.
	got = Lines("الموعد: Domain on (inbound block), Private on (inbound block), Public off.", 30)
	want = []string{"الموعد: [Domain on (inbound]", "<[block), Private on (inbound]", "<[block), Public off]."}
	var gotShown []string
	for _, l := range got {
		gotShown = append(gotShown, show(l))
	}
	if strings.Join(gotShown, "|") != strings.Join(want, "|") {
		t.Errorf("Lines of a long run = %q, want %q", gotShown, want)
	}
	// A line without right-to-left letters is only wrapped.
	if got := Lines("policy: baseline (version 3)", 80); got[0] != "policy: baseline (version 3)" {
		t.Errorf("Lines of a left-to-right line = %q", got)
	}
}

func TestWriter(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b, 80)
	w.Write([]byte("السياسة baseline\nالقرص "))
	w.Write([]byte("/dev/vda\nآخر"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "السياسة [baseline]\nالقرص [/dev/vda]\nآخر"
	if show(b.String()) != want {
		t.Errorf("Writer wrote %q, want %q", show(b.String()), want)
	}
}

func TestIsolateArabicPunctuation(t *testing.T) {
	got := show(Isolate("على Windows 11 Pro 10.0.22631، 2024-09-12T08:00:00Z"))
	if want := "على [Windows 11 Pro 10.0.22631]، [2024-09-12T08:00:00Z]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestParagraph(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Ward: هناك أمر في حاسوبك يحتاج إلى إصلاح", "<[Ward]: هناك أمر في حاسوبك يحتاج إلى إصلاح"},
		{"تذكير من Ward: يرجى إصلاح هذا قبل 2026-12-04 06:56", "تذكير من [Ward]: يرجى إصلاح هذا قبل [2026-12-04 06:56]"},
		{"Ward: your laptop needs attention", "Ward: your laptop needs attention"},
	} {
		got := Paragraph(tc.in)
		if show(got) != tc.want {
			t.Errorf("Paragraph(%q) = %s, want %s", tc.in, show(got), tc.want)
		}
		if logical(got) != tc.in {
			t.Errorf("Paragraph(%q): logical text changed", tc.in)
		}
	}
}

// TestLinesProperties: for texts of every kind and every width, the
// lines keep the logical text, balance their isolates, are never wider
// than the width unless they hold a single word, and read right to left.
func TestLinesProperties(t *testing.T) {
	texts := []string{
		"   ما المشكلة: / on /dev/vda: not encrypted",
		"حالة Ward: السياسة baseline (الإصدار 3)، تم الفحص في 2026-12-04 06:56",
		"     نفّذ: sudo apt update && sudo apt full-upgrade --with-new-pkgs -o Dpkg::Options::=--force-confold ثم أعد التشغيل.",
		"1. المطلوب: Windows 10 22H2 (build 19045) أو إصدار أحدث، مع BitLocker على C: و D:",
		"? لم يتمكن Ward من التحقق من: cannot run /usr/sbin/nft list ruleset: permission denied (needs root)",
	}
	for _, in := range texts {
		for width := 8; width <= 90; width++ {
			lines := Lines(in, width)
			for _, l := range lines {
				if Width(l) > width && len(strings.Fields(logical(l))) > 1 {
					t.Errorf("width %d: line %q is %d wide", width, show(l), Width(l))
				}
				if strings.Count(l, string(LRI)) != strings.Count(l, string(PDI)) {
					t.Errorf("width %d: unbalanced isolates in %q", width, show(l))
				}
				if !startsRTL(l) {
					t.Errorf("width %d: line %q does not read right to left", width, show(l))
				}
			}
			if got := strings.Join(strings.Fields(logical(strings.Join(lines, " "))), " "); got != strings.Join(strings.Fields(in), " ") {
				t.Errorf("width %d: logical text changed:\n got %q\nwant %q", width, got, in)
			}
		}
	}
}
