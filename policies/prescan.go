package policies

import (
	"bytes"
	"fmt"
)

// Limits on a document's YAML shape, checked by prescan before the YAML
// parser builds anything. goccy/go-yaml's memory grows with the square of
// a flow collection's nesting depth and of a mapping's number of keys, so
// both are bounded well below where that matters; the node count bounds
// the syntax tree's size (about 2.5 KB of allocations per node). The
// shipped policies use at most a fifth of each (see TestShippedWithinLimits
// and docs/policies.md, "Limits").
const (
	maxDepth       = 24
	maxNodes       = 20_000
	maxMappingKeys = 256
)

// shape is what prescan measured of a document.
type shape struct {
	depth, nodes, keys int // deepest nesting, nodes, most keys in one mapping
}

// prescan measures a document's YAML structure in one pass over its bytes
// and refuses the first thing over a limit, and any anchor or alias
// (Ward's documents use none, and aliases are how a small document expands
// into a huge one: billion laughs), at its line. It reads YAML loosely: where it cannot
// tell structure from text it counts structure, so it may over-count but
// never under-counts what the parser builds (FuzzParse checks this against
// the parser's tree).
func prescan(data []byte) (shape, *Problem) {
	s := scanner{data: data, line: 1, blockText: -1, plainText: -1}
	s.run()
	return s.shape, s.problem
}

type blockFrame struct {
	col  int
	seq  bool
	keys int
}

type flowFrame struct {
	isMap bool
	keys  int
}

type scanner struct {
	data    []byte
	pos     int // start of the current line
	line    int
	shape   shape
	problem *Problem

	block []blockFrame
	flow  []flowFrame
	// blockText and plainText, when 0 or more, are the indentation a line
	// must exceed to be text of a block scalar or of a multi-line plain
	// scalar rather than structure.
	blockText, plainText int
	// plainCol is the column where the multi-line plain scalar started.
	plainCol int
	// quote is the quote character of a quoted scalar that runs on past
	// the end of a line, 0 when none; quoteCol is the column where it
	// started.
	quote    byte
	quoteCol int
	// flowStart is true when the next flow token starts a node.
	flowStart bool
	// flowCol is the column where the outermost flow collection started.
	flowCol int
}

func (s *scanner) fail(line int, format string, args ...any) {
	if s.problem == nil {
		s.problem = &Problem{Line: line, Reason: fmt.Sprintf(format, args...)}
	}
}

func (s *scanner) run() {
	for s.pos < len(s.data) && s.problem == nil {
		// A line ends at LF, CR or CRLF (a lone CR is a line break to the
		// parser too).
		end := s.pos
		for ; end < len(s.data) && s.data[end] != '\n' && s.data[end] != '\r'; end++ {
			// YAML allows no control character but tab and line breaks, and the
			// parser reads them inconsistently ("-" then NUL is a list
			// entry, "-" then BEL a key).
			if c := s.data[end]; (c < ' ' && c != '\t' && c != '\r') || c == 0x7f {
				s.fail(s.line, "control character 0x%02x (YAML allows tab, CR and LF only)", c)
				return
			}
		}
		s.scanLine(s.data[s.pos:end])
		if end+1 < len(s.data) && s.data[end] == '\r' && s.data[end+1] == '\n' {
			end++
		}
		s.pos = end + 1
		s.line++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// endsToken reports whether position i of l ends a token: the end of the
// line or a space.
func endsToken(l []byte, i int) bool { return i >= len(l) || isSpace(l[i]) }

func (s *scanner) scanLine(l []byte) {
	i := 0
	if s.quote != 0 {
		if i = s.skipQuoted(l, 0, s.quote); i < 0 {
			return // still inside the quotes
		}
		s.quote = 0
		if len(s.flow) > 0 {
			s.scanFlow(l, i)
		} else {
			s.afterBlockNode(l, i, s.quoteCol)
		}
		return
	}
	if len(s.flow) > 0 {
		s.scanFlow(l, 0)
		return
	}
	indent := 0
	for indent < len(l) && l[indent] == ' ' {
		indent++
	}
	rest := indent
	for rest < len(l) && isSpace(l[rest]) {
		rest++
	}
	blank := rest == len(l)
	if s.blockText >= 0 {
		if blank || indent > s.blockText {
			return
		}
		s.blockText = -1
	}
	if blank || l[rest] == '#' {
		return
	}
	if s.plainText >= 0 {
		if indent > s.plainText {
			// Text of a multi-line plain scalar; the parser takes a ":"
			// on it as ending a multi-line key.
			if j := keyIndicator(l, rest); j >= 0 {
				s.plainText = -1
				s.enterBlock(s.plainCol, false)
				s.blockNode(l, j+1)
			}
			return
		}
		s.plainText = -1
	}
	if indent == 0 && (bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("..."))) {
		// A document marker, and what follows as a node (the parser
		// reads "...-" as a marker and a list).
		s.block = s.block[:0]
		s.blockNode(l, 3)
		return
	}
	if indent == 0 && l[0] == '%' {
		return // a directive
	}
	s.blockNode(l, rest)
}

func (s *scanner) node() {
	s.shape.nodes++
	if s.shape.nodes > maxNodes {
		s.fail(s.line, "the document has more than %d YAML nodes", maxNodes)
	}
}

func (s *scanner) checkDepth() {
	d := len(s.block) + len(s.flow)
	s.shape.depth = max(s.shape.depth, d)
	if d > maxDepth {
		s.fail(s.line, "YAML nested deeper than %d levels", maxDepth)
	}
}

func (s *scanner) countKey(n int) int {
	n++
	s.shape.keys = max(s.shape.keys, n)
	if n > maxMappingKeys {
		s.fail(s.line, "a mapping has more than %d keys", maxMappingKeys)
	}
	return n
}

// enterBlock records a block collection entry (a sequence's "-" or a
// mapping's key) at column col.
//
// A list and a mapping may share a column ("key:" above "- item"). An entry
// of the other kind at that column ends the inner one only when the outer
// one is of its kind ("key2:" after the items); otherwise it nests in it,
// as the parser reads "-" above "key:".
func (s *scanner) enterBlock(col int, seq bool) {
	for n := len(s.block); n > 0 && s.block[n-1].col > col; n = len(s.block) {
		s.block = s.block[:n-1]
	}
	if n := len(s.block); n > 1 && s.block[n-1].col == col && s.block[n-1].seq != seq &&
		s.block[n-2].col == col && s.block[n-2].seq == seq {
		s.block = s.block[:n-1]
	}
	if n := len(s.block); n > 0 && s.block[n-1].col == col && s.block[n-1].seq == seq {
		if !seq {
			s.block[n-1].keys = s.countKey(s.block[n-1].keys)
		}
		return
	}
	f := blockFrame{col: col, seq: seq}
	if !seq {
		f.keys = s.countKey(0)
	}
	s.block = append(s.block, f)
	s.node()
	s.checkDepth()
}

// parentCol is the column of the innermost block collection, -1 at the top.
func (s *scanner) parentCol() int {
	if n := len(s.block); n > 0 {
		return s.block[n-1].col
	}
	return -1
}

// refuseIndicator refuses an anchor or an alias. Tags are left to the
// decoder, which refuses them with the document's other problems, unless
// nothing follows on the line: the parser then takes the next lines'
// nodes as the tagged one, which this scan cannot follow.
func (s *scanner) refuseIndicator(c byte) bool {
	switch c {
	case '&':
		s.fail(s.line, "YAML anchors are not supported (nor aliases, which repeat what an anchor names)")
	case '*':
		s.fail(s.line, "YAML aliases are not supported (they repeat what an anchor names)")
	default:
		return false
	}
	return true
}

// restEmpty reports whether l holds nothing but spaces and a comment from i.
func restEmpty(l []byte, i int) bool {
	for ; i < len(l); i++ {
		if l[i] == '#' {
			return true
		}
		if !isSpace(l[i]) {
			return false
		}
	}
	return true
}

// skipTag returns the index after a tag ("!!str ") that starts at l[i].
func skipTag(l []byte, i int) int {
	for i < len(l) && !isSpace(l[i]) {
		i++
	}
	return i
}

// blockNode reads a node that starts at l[i] in block context.
func (s *scanner) blockNode(l []byte, i int) {
	// props is the column of a tag before the node, -1 when none: the
	// node (a mapping, when it is a key) starts there.
	props := -1
	for s.problem == nil {
		for i < len(l) && isSpace(l[i]) {
			i++
		}
		if i >= len(l) || l[i] == '#' {
			return
		}
		c, col := l[i], i
		if props >= 0 {
			col = props
		}
		switch {
		case (c == '-' || c == '?') && endsToken(l, i+1):
			s.enterBlock(i, c == '-')
			i++
			props = -1
			continue
		case s.refuseIndicator(c):
			return
		case c == ':' && endsToken(l, i+1):
			// A value without a key: the parser nests it in ways this
			// scan does not follow, and the decoder takes plain keys only.
			s.fail(s.line, `a ":" without a key before it (write "key: value")`)
			return
		case c == '!':
			if props < 0 {
				props = i
			}
			if i = skipTag(l, i); restEmpty(l, i) {
				s.fail(s.line, "YAML tags are not supported")
				return
			}
			continue
		case c == '[' || c == '{':
			s.flowCol = col
			s.scanFlow(l, i)
			return
		case c == '|' || c == '>':
			s.node()
			s.blockText = s.parentCol()
			return
		case c == '\'' || c == '"':
			s.node()
			end := s.skipQuoted(l, i+1, c)
			if end < 0 {
				s.quote, s.quoteCol = c, col
				return
			}
			s.afterBlockNode(l, end, col)
			return
		}
		// A plain scalar: a key if ": " follows on the line, else text that
		// may run on over more indented lines.
		s.node()
		key := keyIndicator(l, i)
		if key < 0 {
			s.plainText, s.plainCol = s.parentCol(), col
			return
		}
		s.enterBlock(col, false)
		i = key + 1
		props = -1
	}
}

// keyIndicator returns the index of the first ": " (or ":" ending the
// line) in plain text from l[i] before a comment, -1 when there is none.
func keyIndicator(l []byte, i int) int {
	for j := i; j < len(l); j++ {
		if l[j] == '#' && j > i && isSpace(l[j-1]) {
			return -1
		}
		if l[j] == ':' && endsToken(l, j+1) {
			return j
		}
	}
	return -1
}

// afterBlockNode reads what follows a quoted scalar or a flow collection
// that started at column col: a ": " makes it a key.
func (s *scanner) afterBlockNode(l []byte, i, col int) {
	for i < len(l) && isSpace(l[i]) {
		i++
	}
	if i < len(l) && l[i] == ':' && endsToken(l, i+1) {
		s.enterBlock(col, false)
		s.blockNode(l, i+1)
	}
}

// skipQuoted returns the index after the quote closing a scalar whose text
// starts at l[i], or -1 when it runs past the line.
func (s *scanner) skipQuoted(l []byte, i int, q byte) int {
	for ; i < len(l); i++ {
		switch {
		case q == '"' && l[i] == '\\':
			i++
		case l[i] == q && q == '\'' && i+1 < len(l) && l[i+1] == '\'':
			i++
		case l[i] == q:
			return i + 1
		}
	}
	return -1
}

// scanFlow reads flow collections from l[i] on, across lines until the
// outermost closes.
func (s *scanner) scanFlow(l []byte, i int) {
	for ; i < len(l) && s.problem == nil; i++ {
		c := l[i]
		switch {
		case isSpace(c):
			continue
		case c == '#' && (i == 0 || isSpace(l[i-1])):
			return
		case c == '[' || c == '{':
			// A flow mapping's entries are counted by their commas (an
			// entry need not have a ":").
			f := flowFrame{isMap: c == '{'}
			if f.isMap {
				f.keys = s.countKey(0)
			}
			s.flow = append(s.flow, f)
			s.node()
			s.checkDepth()
			s.flowStart = true
			continue
		case c == ']' || c == '}':
			if len(s.flow) > 0 {
				s.flow = s.flow[:len(s.flow)-1]
			}
			s.flowStart = false
			if len(s.flow) == 0 {
				s.afterBlockNode(l, i+1, s.flowCol)
				return
			}
			continue
		case c == ',':
			if n := len(s.flow); n > 0 && s.flow[n-1].isMap {
				s.flow[n-1].keys = s.countKey(s.flow[n-1].keys)
			}
			s.flowStart = true
			continue
		case c == ':' && (endsToken(l, i+1) || (i+1 < len(l) && isFlowIndicator(l[i+1])) || !s.flowStart):
			if n := len(s.flow); n > 0 && !s.flow[n-1].isMap {
				s.shape.keys = max(s.shape.keys, 1) // a one-pair mapping in a list
			}
			s.node()
			s.flowStart = true
			continue
		case c == '?' && endsToken(l, i+1):
			s.flowStart = true
			continue
		case s.flowStart && s.refuseIndicator(c):
			return
		case s.flowStart && c == '!':
			if i = skipTag(l, i); restEmpty(l, i) {
				s.fail(s.line, "YAML tags are not supported")
				return
			}
			i--
			continue
		case c == '\'' || c == '"':
			s.node()
			s.flowStart = false
			end := s.skipQuoted(l, i+1, c)
			if end < 0 {
				s.quote = c
				return
			}
			i = end - 1
			continue
		}
		// A plain scalar runs to a flow indicator, ": " or " #".
		s.node()
		s.flowStart = false
		for i+1 < len(l) {
			n := l[i+1]
			if isFlowIndicator(n) || (n == ':' && (endsToken(l, i+2) || (i+2 < len(l) && isFlowIndicator(l[i+2])))) ||
				(n == '#' && isSpace(l[i])) {
				break
			}
			i++
		}
	}
}

func isFlowIndicator(c byte) bool { return c == ',' || c == '[' || c == ']' || c == '{' || c == '}' }
