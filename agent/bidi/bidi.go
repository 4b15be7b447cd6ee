package bidi

import (
	"strings"
	"unicode"
)

// The marks this package writes (Unicode Bidirectional Algorithm, UAX #9).
const (
	// LRI opens a left-to-right isolate: what follows, up to PDI, is laid
	// out on its own, left to right, and counts as one neutral character
	// for the text around it.
	LRI = '\u2066'
	// PDI closes the isolate LRI (or RLI, FSI) opened.
	PDI = '\u2069'
	// RLM is the right-to-left mark, an invisible right-to-left letter. A
	// line of right-to-left text that starts with a left-to-right run (a
	// wrapped line made only of a command, a table row) begins with one so
	// that the terminal still lays the line out right to left.
	RLM = '\u200F'
)

// class is what a character is for this package.
type class int

const (
	neutral class = iota // spaces, punctuation, symbols, marks
	ltr                  // letters of left-to-right scripts, digits
	rtl                  // letters of right-to-left scripts
)

// rtlScripts are the scripts written right to left.
var rtlScripts = []*unicode.RangeTable{
	unicode.Arabic, unicode.Hebrew, unicode.Syriac, unicode.Thaana, unicode.Nko,
	unicode.Samaritan, unicode.Mandaic, unicode.Adlam, unicode.Hanifi_Rohingya,
}

func classOf(r rune) class {
	switch {
	case r == RLM || r == '\u061C': // RLM and the Arabic letter mark are strong right-to-left
		return rtl
	case r == '،' || r == '؛' || r == '؟' || r == '۔':
		// The Arabic comma, semicolon, question mark and full stop (of the
		// Common script) end a run: they belong to the right-to-left
		// sentence.
		return rtl
	case unicode.IsDigit(r):
		// European digits are laid out left to right; Arabic-Indic digits
		// (٠١٢, ۰۱۲) belong to the Arabic text around them.
		if unicode.Is(unicode.Arabic, r) {
			return neutral
		}
		return ltr
	case unicode.IsLetter(r):
		if unicode.In(r, rtlScripts...) {
			return rtl
		}
		return ltr
	case unicode.In(r, rtlScripts...) && !unicode.Is(unicode.Mn, r):
		return rtl
	}
	return neutral
}

// strongRTL reports whether r is a strong right-to-left character for the
// Unicode Bidirectional Algorithm: a letter of a right-to-left script, or
// one of the right-to-left marks. (The Arabic comma, which ends a run
// here, is not one: it does not decide a line's direction.)
func strongRTL(r rune) bool {
	return r == RLM || r == '\u061C' || (unicode.IsLetter(r) && unicode.In(r, rtlScripts...))
}

// HasRTL reports whether s holds a right-to-left letter.
func HasRTL(s string) bool { return strings.ContainsFunc(s, strongRTL) }

// explicit reports whether r is one of the explicit directional
// formatting characters or marks: a line that already holds some was laid
// out by its writer and is left as it is.
func explicit(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') ||
		r == '\u200E' || r == '\u200F' || r == '\u061C'
}

// HasMarks reports whether s already holds explicit directional marks or
// isolates.
func HasMarks(s string) bool { return strings.ContainsFunc(s, explicit) }

// Isolate returns line with each left-to-right run in LRI … PDI when the
// line holds right-to-left letters, and line unchanged when it holds none
// (it then reads left to right anyway) or already holds directional
// marks.
//
// A run starts and ends with a left-to-right letter or a digit and holds
// no right-to-left letter, so "2026-12-04 06:56" and "sudo apt upgrade"
// are one run each. It takes in the punctuation attached to its ends
// ("/dev/vda", "v1.2"), except what belongs to the sentence around it:
// final punctuation (". , : ; ! ?" and the Arabic ones) and brackets or
// quotation marks that enclose the run or are not closed inside it.
func Isolate(line string) string {
	if !HasRTL(line) || HasMarks(line) {
		return line
	}
	return isolateRuns(line)
}

// isolateRuns isolates every left-to-right run of s.
func isolateRuns(s string) string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s) + 16)
	i := 0
	for i < len(rs) {
		start, end, ok := nextRun(rs, i)
		if !ok {
			b.WriteString(string(rs[i:]))
			break
		}
		b.WriteString(string(rs[i:start]))
		b.WriteRune(LRI)
		b.WriteString(string(rs[start:end]))
		b.WriteRune(PDI)
		i = end
	}
	return b.String()
}

// nextRun finds the first left-to-right run at or after i: rs[start:end].
func nextRun(rs []rune, i int) (start, end int, ok bool) {
	for {
		first := -1
		for j := i; j < len(rs); j++ {
			if classOf(rs[j]) == ltr {
				first = j
				break
			}
		}
		if first < 0 {
			return 0, 0, false
		}
		// Extend over everything up to the next right-to-left letter, then
		// back to the last left-to-right character.
		last := first
		for j := first; j < len(rs) && classOf(rs[j]) != rtl; j++ {
			if classOf(rs[j]) == ltr {
				last = j
			}
		}
		start, end = first, last+1
		// Take in the punctuation attached to the run's ends (no space
		// between them), then give back what belongs to the sentence.
		for start > i && attached(rs[start-1]) {
			start--
		}
		for end < len(rs) && attached(rs[end]) {
			end++
		}
		start, end = trim(rs, start, end)
		if start < end {
			return pathBefore(rs, i, start), end, true
		}
		i = last + 1 // only punctuation was left: look further
	}
}

// pathBefore moves a run's start back over a path that is only "/" or
// "~" (a mount point, the home folder) standing just before it in the
// same text: "/ on /dev/vda" is one run. At the start of the line such a
// character is a marker, not a path, and stays outside.
func pathBefore(rs []rune, i, start int) int {
	k := start - 1
	for k >= i && rs[k] == ' ' {
		k--
	}
	m := k
	for m >= i && strings.ContainsRune(`/\~`, rs[m]) {
		m--
	}
	if m == k || m < i || rs[m] != ' ' || strings.TrimSpace(string(rs[:m])) == "" {
		return start
	}
	return m + 1
}

// attached reports whether r joins the run next to it: a neutral that is
// not a space.
func attached(r rune) bool { return classOf(r) == neutral && !unicode.IsSpace(r) }

// Pairs of brackets and quotation marks; final is the punctuation that
// ends a sentence or a clause.
var (
	openers = map[rune]rune{'(': ')', '[': ']', '{': '}', '«': '»', '‹': '›', '“': '”', '‘': '’'}
	closers = map[rune]rune{')': '(', ']': '[', '}': '{', '»': '«', '›': '‹', '”': '“', '’': '‘'}
	quotes  = "\"'`"
	final   = ".,;:!?…،؛؟۔"
)

// trim gives back to the sentence the punctuation at the ends of
// rs[start:end] that belongs to it.
func trim(rs []rune, start, end int) (int, int) {
	count := func(r rune) int {
		n := 0
		for _, c := range rs[start:end] {
			if c == r {
				n++
			}
		}
		return n
	}
	for start < end {
		first, last := rs[start], rs[end-1]
		switch {
		case strings.ContainsRune(final, last):
			end--
		case end-start >= 2 && openers[first] == last && enclosing(rs[start:end]):
			start++
			end--
		case end-start >= 2 && strings.ContainsRune(quotes, first) && first == last:
			start++
			end--
		case openers[first] != 0 && count(first) > count(openers[first]):
			start++
		case closers[last] != 0 && count(last) > count(closers[last]):
			end--
		case strings.ContainsRune(quotes, first) && count(first)%2 == 1:
			start++
		case strings.ContainsRune(quotes, last) && count(last)%2 == 1:
			end--
		default:
			return start, end
		}
	}
	return start, end
}

// enclosing reports whether the bracket that opens s is the one that
// closes it ("(v3)", not "(a) (b)").
func enclosing(s []rune) bool {
	open, close := s[0], s[len(s)-1]
	depth := 0
	for i, r := range s {
		switch r {
		case open:
			depth++
		case close:
			depth--
			if depth == 0 && i < len(s)-1 {
				return false
			}
		}
	}
	return depth == 0
}

// Paragraph is Isolate(s), led by RLM when s holds right-to-left letters
// but its first letter is not one, for a renderer that takes a text's
// direction from its first strong letter, isolates or not (a desktop
// notification): "Ward: …" in Arabic then still reads right to left.
func Paragraph(s string) string {
	if !HasRTL(s) || HasMarks(s) {
		return s
	}
	s = isolateRuns(s)
	for _, r := range s {
		if strongRTL(r) {
			return s
		}
		if classOf(r) == ltr {
			break
		}
	}
	return string(RLM) + s
}
