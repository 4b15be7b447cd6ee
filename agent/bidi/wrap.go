package bidi

import (
	"bytes"
	"io"
	"strings"
	"unicode"
)

// Width is how many terminal columns s takes: combining marks and
// formatting characters (isolates, marks) take none, wide East Asian
// characters two, every other character one.
func Width(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

func runeWidth(r rune) int {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		return 0
	case unicode.In(r, unicode.Han, unicode.Hangul, unicode.Hiragana, unicode.Katakana):
		return 2
	}
	return 1
}

// Wrap breaks line into lines of at most width columns, at spaces, never
// inside a word. An isolate (LRI … PDI) stays on one line when it fits in
// one; a longer one is continued on the next lines, each part in an
// isolate of its own, so that every line is complete for the terminal. A
// word wider than width gets a line of its own, the only kind of line
// wider than width. The lines after the first keep the line's
// indentation, and when the line starts with a list marker ("1. ", "- ",
// "? ", "~ ") they line up after it. A line that fits is returned as it
// is; so is a blank one.
func Wrap(line string, width int) []string {
	if Width(line) <= width || strings.TrimSpace(line) == "" {
		return []string{line}
	}
	indent, rest := hanging(line)
	first := line[:len(line)-len(rest)]
	var lines []string
	cur, curW := first, Width(first)
	empty := true // cur has no word yet
	newline := func() {
		lines = append(lines, cur)
		cur, curW, empty = indent, len(indent), true
	}
	add := func(word string) {
		if !empty {
			cur += " "
			curW++
		}
		cur += word
		curW += Width(word)
		empty = false
	}
	for _, word := range words(rest) {
		ww := Width(word)
		pre, inner, post, ok := splitIsolate(word)
		if !ok || ww <= width-len(indent) {
			if !empty && curW+1+ww > width {
				newline()
			}
			add(word)
			continue
		}
		// An isolate too long for any line: as much of it on each line
		// as fits, each part isolated.
		parts := strings.Split(inner, " ")
		for k := 0; k < len(parts); {
			room := width - curW
			if !empty {
				room--
			}
			j, segW := k, 0
			if k == 0 {
				segW = Width(pre)
			}
			for j < len(parts) {
				w := Width(parts[j])
				if j > k {
					w++
				}
				if j+1 == len(parts) {
					w += Width(post)
				}
				if segW+w > room && j > k {
					break
				}
				if segW+w > room && !empty {
					break
				}
				segW += w
				j++
			}
			if j == k {
				newline()
				continue
			}
			seg := string(LRI) + strings.Join(parts[k:j], " ") + string(PDI)
			if k == 0 {
				seg = pre + seg
			}
			if j == len(parts) {
				seg += post
			}
			add(seg)
			if k = j; k < len(parts) {
				newline()
			}
		}
	}
	return append(lines, cur)
}

// splitIsolate splits a word holding one left-to-right isolate with
// spaces inside into what comes before it, its content and what comes
// after it.
func splitIsolate(word string) (pre, inner, post string, ok bool) {
	i := strings.IndexRune(word, LRI)
	j := strings.LastIndex(word, string(PDI))
	if i < 0 || j < i || strings.Count(word, string(LRI)) != 1 {
		return "", "", "", false
	}
	inner = word[i+len(string(LRI)) : j]
	if !strings.Contains(inner, " ") {
		return "", "", "", false
	}
	return word[:i], inner, word[j+len(string(PDI)):], true
}

// hanging returns the indentation of the lines after the first and the
// line's text after its indentation and list marker.
func hanging(line string) (indent, rest string) {
	rest = strings.TrimLeft(line, " ")
	lead := len(line) - len(rest)
	marker := 0
	if i := strings.IndexByte(rest, ' '); i > 0 && i <= 4 {
		m := rest[:i]
		if m == "-" || m == "*" || m == "?" || m == "~" || m == "•" ||
			(strings.HasSuffix(m, ".") && strings.Trim(m[:len(m)-1], "0123456789") == "" && len(m) > 1) {
			marker = i + 1
		}
	}
	if marker > 0 {
		rest = strings.TrimLeft(rest[marker-1:], " ")
		marker = len(line) - lead - len(rest)
	}
	return strings.Repeat(" ", lead+marker), rest
}

// words splits s at spaces outside isolates; an isolate with spaces
// inside stays one word.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == LRI || r == '\u2067' || r == '\u2068':
			depth++
		case r == PDI && depth > 0:
			depth--
		case r == ' ' && depth == 0:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(r)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// Lines lays out one logical line of right-to-left output: its
// left-to-right runs isolated (Isolate), then wrapped to width (Wrap), and
// a line that starts with a left-to-right run led by RLM so that it still
// reads right to left. The whole line decides: when it holds no
// right-to-left letter, or already holds directional marks, it is only
// wrapped.
func Lines(line string, width int) []string {
	if !HasRTL(line) || HasMarks(line) {
		return Wrap(line, width)
	}
	lines := Wrap(isolateRuns(line), width)
	for i, l := range lines {
		if !startsRTL(l) {
			lines[i] = string(RLM) + l
		}
	}
	return lines
}

// startsRTL reports whether the first strong character of s outside
// isolates is right to left: how a terminal decides a line's direction.
func startsRTL(s string) bool {
	depth := 0
	for _, r := range s {
		switch {
		case r == LRI || r == '\u2067' || r == '\u2068':
			depth++
		case r == PDI && depth > 0:
			depth--
		case depth == 0 && strongRTL(r):
			return true
		case depth == 0 && classOf(r) == ltr && !unicode.IsDigit(r):
			return false
		}
	}
	return false
}

// Writer lays out what is written to it line by line (Lines) for a
// right-to-left terminal and writes it to the underlying writer. Each
// line is written as soon as its newline is; Flush writes a last line
// without one.
type Writer struct {
	w     io.Writer
	width int
	buf   []byte
	err   error
}

// NewWriter returns a Writer to w for a terminal width columns wide.
func NewWriter(w io.Writer, width int) *Writer { return &Writer{w: w, width: width} }

// Write implements io.Writer. An error from the underlying writer is
// returned from this call or the next.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.buf[:i]), true)
		w.buf = w.buf[i+1:]
	}
	return len(p), w.err
}

// Flush writes what is left after the last newline.
func (w *Writer) Flush() error {
	if len(w.buf) > 0 && w.err == nil {
		w.emit(string(w.buf), false)
		w.buf = nil
	}
	return w.err
}

func (w *Writer) emit(line string, newline bool) {
	out := strings.Join(Lines(line, w.width), "\n")
	if newline {
		out += "\n"
	}
	_, w.err = io.WriteString(w.w, out)
}
