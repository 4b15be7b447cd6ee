package policies

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Rule families: the fact family whose collection a rule depends on.
const (
	FamilyDiskEncryption = "disk_encryption"
	FamilyPatchLevel     = "patch_level"
	FamilyFirewall       = "firewall"
	FamilyOS             = "os"
)

// Families lists the rule families in a stable order.
var Families = []string{FamilyDiskEncryption, FamilyPatchLevel, FamilyFirewall, FamilyOS}

// Severities lists the rule severities, most severe first.
var Severities = []string{"critical", "high", "medium", "low"}

// Platforms lists the platforms a rule can apply to (Go GOOS values).
var Platforms = []string{"windows", "darwin", "linux"}

// DefaultLang is the language every text must exist in and the one used
// when a text is missing in the language asked for.
const DefaultLang = "en"

// Limits on what a policy document may hold. maxDocumentSize leaves room
// for every text in the seven languages the agent ships (the shipped
// high-risk policy is about 80 KiB with them); the parser's quadratic costs
// are bounded by the pre-scan's depth, key and node limits, not by size.
const (
	maxDocumentSize   = 512 << 10
	maxRules          = 500
	maxExpressionSize = 4096
	maxGrace          = 366 * 24 * time.Hour
)

// Policy is a validated policy document with its rules compiled.
type Policy struct {
	Name        string
	Version     int
	Description string
	// Discreet asks the agent to keep notifications free of any detail:
	// they only say the laptop needs attention (for staff whose screen may
	// be seen or seized). ward-agent status still shows everything.
	Discreet bool
	// Params are the document's parameters by name, as rules read them
	// (params.NAME): a string, an int64, a bool, a []string or an
	// []int64 (an empty list is an empty []string). They are part of the
	// policy: changing one is changing the policy.
	Params map[string]any
	Rules  []Rule
	// Cost is the estimated worst-case CEL cost of evaluating every rule
	// on one device, at most maxDocumentCost.
	Cost uint64
	// File is where the policy was loaded from.
	File string
}

// Rule is one requirement of a policy.
type Rule struct {
	ID string
	// Title is the English title; Titles holds it in every language given.
	Title    string
	Family   string
	Severity string
	// Platforms are the GOOS values the rule applies to.
	Platforms []string
	// Grace is how long a device may fail the rule, counted from the first
	// observed failure, before it is overdue.
	Grace time.Duration
	// GraceConnected says only connected time counts against Grace
	// ("grace: 72h connected"): the agent counts the time its device could
	// reach what the fix needs (docs/connectivity.md) and passes it in
	// Options.GraceUsed.
	GraceConnected bool

	Titles map[string]string
	// Expected says what the rule wants, per language.
	Expected map[string]string
	// Problem states in plain words what is wrong when the rule fails
	// ("Your disk is not encrypted"), per language (optional; the shipped
	// policies give it in every shipped language). The goal, Title, reads
	// like good news, so a failing item is titled with its problem.
	Problem map[string]string
	// Why says in one sentence why the rule matters, per language
	// (optional; the shipped policies give it in every shipped language).
	Why map[string]string
	// Remediation is the fix, per language then per platform.
	Remediation map[string]map[string]string

	// When, Require and Observed are the CEL sources.
	When, Require, Observed string
	// Line is where the rule starts in its document.
	Line int

	when, require, observed cel.Program
	// reads are the facts the expressions read (reads.go).
	reads []string
	// readsFeed says an expression of the rule uses the release feed
	// (feedfuncs.go): its results carry the feed's serial.
	readsFeed bool
	// literals counts the plain texts the rule shows as its observed
	// text or unknown reason (its own English words, not messages).
	literals int
}

//go:embed baseline.yaml high-risk.yaml
var shipped embed.FS

var shippedNames = []string{"baseline", "high-risk"}

// Names returns the names of the policies shipped with Ward.
func Names() []string { return slices.Clone(shippedNames) }

// Embedded returns a policy shipped with Ward by name ("baseline", "high-risk").
func Embedded(name string) (*Policy, error) {
	if !slices.Contains(shippedNames, name) {
		return nil, fmt.Errorf("no shipped policy named %q (have %s)", name, strings.Join(shippedNames, ", "))
	}
	file := name + ".yaml"
	data, err := shipped.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read shipped policy: %w", err)
	}
	return Parse(path.Join("policies", file), data)
}

// Load reads and parses the policy document at path.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse validates a policy document and compiles its expressions. filename
// only names the document in errors and in Policy.File. A document with
// problems yields a *ValidationError listing all of them.
func Parse(filename string, data []byte) (*Policy, error) {
	// A UTF-8 byte order mark, as Windows editors write one, is not part
	// of the document.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	d := &decoder{file: filename}
	p := d.document(data)
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return nil, &ValidationError{Problems: d.problems}
	}
	p.File = filename
	return p, nil
}

var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	langPattern = regexp.MustCompile(`^[a-z]{2,3}$`)
)

// decoder walks the YAML syntax tree, so every problem has a line.
type decoder struct {
	file     string
	problems []Problem
	// params are the document's parameters; env is the CEL environment
	// with them declared (nil when it could not be built).
	params map[string]*param
	env    *cel.Env
	// paramsRefused is true when the params block was not a mapping.
	paramsRefused bool
	// unparsed is true when an expression did not parse, so its reads of
	// params are unknown.
	unparsed bool
	// cost is the worst-case cost of the expressions compiled so far;
	// overBudget is true once it went over maxDocumentCost.
	cost       uint64
	overBudget bool
	// reads collects the fact reads of the rule being decoded.
	reads []string
	// readsFeed says an expression of the rule being decoded uses the
	// release feed.
	readsFeed bool
	// literals counts the rule's plain-text observed or unknown texts.
	literals int
}

func (d *decoder) at(line, col int, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Column: col, Reason: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorf(n ast.Node, format string, args ...any) {
	line, col := position(n)
	d.at(line, col, format, args...)
}

func position(n ast.Node) (line, col int) {
	if n == nil {
		return 0, 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line, tk.Position.Column
	}
	return 0, 0
}

func (d *decoder) document(data []byte) *Policy {
	if len(data) > maxDocumentSize {
		d.at(0, 0, "document is larger than %d bytes", maxDocumentSize)
		return nil
	}
	if _, pr := prescan(data); pr != nil {
		d.at(pr.Line, 0, "%s (see the limits in docs/policies.md)", pr.Reason)
		return nil
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		d.yamlError(err)
		return nil
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	switch {
	case len(docs) == 0:
		d.at(1, 1, "empty document: a policy needs name, version and rules")
		return nil
	case len(docs) > 1:
		d.errorf(docs[1].Body, "more than one YAML document: a file holds one policy")
		return nil
	}
	fields := d.mapping(docs[0].Body, "policy", "name", "version", "description", "discreet", "params", "rules")
	if fields == nil {
		return nil
	}
	p := &Policy{}
	p.Name = d.requiredString(docs[0].Body, fields, "name", "policy")
	if p.Name != "" && !namePattern.MatchString(p.Name) {
		d.errorf(fields["name"].Value, "name %q must be lowercase letters, digits and dashes", p.Name)
	}
	if v := fields["version"]; v == nil {
		d.errorf(docs[0].Body, "policy: missing version")
	} else if s, ok := scalar(v.Value); !ok {
		d.errorf(v.Value, "version must be a whole number")
	} else if n, err := strconv.Atoi(s); err != nil || n < 1 {
		d.errorf(v.Value, "version %q must be a whole number of at least 1", s)
	} else {
		p.Version = n
	}
	if v := fields["description"]; v != nil {
		p.Description = d.str(v.Value, "description")
	}
	if v := fields["discreet"]; v != nil {
		switch s, _ := scalar(v.Value); s {
		case "true":
			p.Discreet = true
		case "false":
		default:
			d.errorf(v.Value, "discreet must be true or false")
		}
	}
	d.params = map[string]*param{}
	if v := fields["params"]; v != nil {
		d.readParams(v.Value)
	}
	if base, err := celEnv(); err != nil {
		d.at(0, 0, "cannot set up CEL: %v", err)
	} else if d.env, err = d.paramEnv(base); err != nil {
		d.errorf(fields["params"].Value, "params: %v", err)
	}
	for name, pr := range d.params {
		if !pr.bad {
			if p.Params == nil {
				p.Params = map[string]any{}
			}
			p.Params[name] = pr.value
		}
	}
	rules := fields["rules"]
	if rules == nil {
		d.errorf(docs[0].Body, "policy: missing rules")
		return p
	}
	seq, ok := rules.Value.(*ast.SequenceNode)
	if !ok {
		d.errorf(rules.Value, "rules must be a list")
		return p
	}
	if len(seq.Values) == 0 {
		d.errorf(rules.Value, "rules: a policy needs at least one rule")
	}
	if len(seq.Values) > maxRules {
		d.errorf(rules.Value, "rules: more than %d rules", maxRules)
		return p
	}
	seen := map[string]int{}
	for i, n := range seq.Values {
		r := d.rule(n, i)
		if r == nil {
			continue
		}
		if r.ID != "" {
			if first, dup := seen[r.ID]; dup {
				d.errorf(n, "rule id %q is already used at line %d", r.ID, first)
			} else {
				seen[r.ID] = r.Line
			}
		}
		p.Rules = append(p.Rules, *r)
	}
	if !d.unparsed {
		d.unusedParams()
	}
	p.Cost = d.cost
	return p
}

// yamlError reports a YAML syntax error at its token.
func (d *decoder) yamlError(err error) {
	type tokenError interface {
		GetToken() *token.Token
		GetMessage() string
	}
	var te tokenError
	if e, ok := err.(tokenError); ok {
		te = e
	}
	if te != nil && te.GetToken() != nil && te.GetToken().Position != nil {
		pos := te.GetToken().Position
		d.at(pos.Line, pos.Column, "invalid YAML: %s", te.GetMessage())
		return
	}
	d.at(0, 0, "invalid YAML: %v", err)
}

// refuse reports constructs Ward's documents do not use; it returns true
// when n is one of them.
func (d *decoder) refuse(n ast.Node) bool {
	switch n.(type) {
	case *ast.AnchorNode, *ast.AliasNode:
		d.errorf(n, "anchors and aliases are not supported")
		return true
	case *ast.TagNode:
		d.errorf(n, "YAML tags are not supported")
		return true
	}
	return false
}

// mapping checks that n is a mapping with only the allowed keys, each once,
// and returns its entries by key. It returns nil when n is not a mapping.
func (d *decoder) mapping(n ast.Node, what string, allowed ...string) map[string]*ast.MappingValueNode {
	if n == nil || d.refuse(n) {
		return nil
	}
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		d.errorf(n, "%s must be a mapping of keys to values", what)
		return nil
	}
	out := make(map[string]*ast.MappingValueNode, len(values))
	for _, mv := range values {
		key, ok := scalar(mv.Key)
		if !ok {
			d.errorf(mv.Key, "%s: keys must be plain words", what)
			continue
		}
		if _, dup := out[key]; dup {
			d.errorf(mv.Key, "%s: key %q appears twice", what, key)
			continue
		}
		if allowed != nil && !slices.Contains(allowed, key) {
			d.errorf(mv.Key, "%s: unknown key %q (allowed: %s)", what, key, strings.Join(allowed, ", "))
			continue
		}
		out[key] = mv
	}
	return out
}

// scalar returns the text of a scalar node.
func scalar(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

func (d *decoder) str(n ast.Node, what string) string {
	if d.refuse(n) {
		return ""
	}
	s, ok := scalar(n)
	if !ok {
		d.errorf(n, "%s must be text", what)
		return ""
	}
	return s
}

func (d *decoder) requiredString(parent ast.Node, fields map[string]*ast.MappingValueNode, key, what string) string {
	v := fields[key]
	if v == nil {
		d.errorf(parent, "%s: missing %s", what, key)
		return ""
	}
	s := strings.TrimSpace(d.str(v.Value, what+": "+key))
	if s == "" {
		if _, ok := scalar(v.Value); ok {
			d.errorf(v.Value, "%s: %s is empty", what, key)
		}
	}
	return s
}

// texts reads a text given once (English) or per language.
func (d *decoder) texts(n ast.Node, what string) map[string]string {
	if d.refuse(n) {
		return nil
	}
	if s, ok := scalar(n); ok {
		if strings.TrimSpace(s) == "" {
			d.errorf(n, "%s is empty", what)
			return nil
		}
		return map[string]string{DefaultLang: s}
	}
	fields := d.mapping(n, what)
	if fields == nil {
		return nil
	}
	out := map[string]string{}
	for lang, mv := range fields {
		if !langPattern.MatchString(lang) {
			d.errorf(mv.Key, "%s: %q is not a language code (use two or three lowercase letters: en, fr)", what, lang)
			continue
		}
		s := d.str(mv.Value, what+"."+lang)
		if strings.TrimSpace(s) == "" {
			if _, ok := scalar(mv.Value); ok {
				d.errorf(mv.Value, "%s.%s is empty", what, lang)
			}
			continue
		}
		out[lang] = s
	}
	if _, ok := out[DefaultLang]; !ok && len(fields) > 0 {
		d.errorf(n, "%s has no %q text (English is the fallback for every language)", what, DefaultLang)
	}
	return out
}

var ruleKeys = []string{"id", "title", "problem", "family", "platforms", "when", "require", "observed", "expected", "why", "severity", "grace", "remediation"}

func (d *decoder) rule(n ast.Node, i int) *Rule {
	where := fmt.Sprintf("rules[%d]", i)
	d.reads, d.literals = nil, 0
	fields := d.mapping(n, where)
	if fields == nil {
		return nil
	}
	if v := fields["id"]; v != nil {
		if id, ok := scalar(v.Value); ok && strings.TrimSpace(id) != "" {
			where = fmt.Sprintf("rule %q", strings.TrimSpace(id))
		}
	}
	for key, mv := range fields {
		if !slices.Contains(ruleKeys, key) {
			d.errorf(mv.Key, "%s: unknown key %q (allowed: %s)", where, key, strings.Join(ruleKeys, ", "))
			delete(fields, key)
		}
	}
	line, _ := position(n)
	if first := firstKeyLine(fields); first > 0 {
		line = first
	}
	r := &Rule{Line: line}
	r.ID = d.requiredString(n, fields, "id", where)
	if r.ID != "" && !namePattern.MatchString(r.ID) {
		d.errorf(fields["id"].Value, "%s: id must be lowercase letters, digits and dashes", where)
	}
	for _, key := range []string{"title", "expected", "require", "severity", "family", "platforms", "remediation"} {
		if fields[key] == nil {
			d.errorf(n, "%s: missing %s", where, key)
		}
	}
	if v := fields["title"]; v != nil {
		r.Titles = d.texts(v.Value, where+": title")
		r.Title = r.Titles[DefaultLang]
	}
	if v := fields["expected"]; v != nil {
		r.Expected = d.texts(v.Value, where+": expected")
	}
	if v := fields["why"]; v != nil {
		r.Why = d.texts(v.Value, where+": why")
	}
	if v := fields["problem"]; v != nil {
		r.Problem = d.texts(v.Value, where+": problem")
	}
	if v := fields["family"]; v != nil {
		r.Family = d.str(v.Value, where+": family")
		if r.Family != "" && !slices.Contains(Families, r.Family) {
			d.errorf(v.Value, "%s: family %q is not one of %s", where, r.Family, strings.Join(Families, ", "))
		}
	}
	if v := fields["severity"]; v != nil {
		r.Severity = d.str(v.Value, where+": severity")
		if !slices.Contains(Severities, r.Severity) {
			d.errorf(v.Value, "%s: severity %q is not one of %s", where, r.Severity, strings.Join(Severities, ", "))
		}
	}
	if v := fields["platforms"]; v != nil {
		r.Platforms = d.platforms(v.Value, where)
	}
	if v := fields["grace"]; v != nil {
		s := d.str(v.Value, where+": grace")
		g, connected, err := parseGraceSpec(s)
		if err != nil {
			d.errorf(v.Value, "%s: grace %q: %v", where, s, err)
		}
		r.Grace, r.GraceConnected = g, connected
	}
	if v := fields["remediation"]; v != nil {
		r.Remediation = d.remediation(v.Value, where, r.Platforms)
	}
	if v := fields["when"]; v != nil {
		r.When = d.str(v.Value, where+": when")
		r.when = d.compile(v.Value, r.When, where+": when", cel.BoolType)
	}
	if v := fields["require"]; v != nil {
		r.Require = d.str(v.Value, where+": require")
		r.require = d.compile(v.Value, r.Require, where+": require", cel.BoolType)
	}
	if v := fields["observed"]; v != nil {
		r.Observed = d.str(v.Value, where+": observed")
		r.observed = d.compile(v.Value, r.Observed, where+": observed", cel.StringType, messageType, cel.ListType(messageType))
	}
	slices.Sort(d.reads)
	r.reads, d.reads = slices.Compact(d.reads), nil
	r.readsFeed, d.readsFeed = d.readsFeed, false
	r.literals = d.literals
	return r
}

func firstKeyLine(fields map[string]*ast.MappingValueNode) int {
	first := 0
	for _, mv := range fields {
		if l, _ := position(mv.Key); l > 0 && (first == 0 || l < first) {
			first = l
		}
	}
	return first
}

func (d *decoder) platforms(n ast.Node, where string) []string {
	if d.refuse(n) {
		return nil
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errorf(n, "%s: platforms must be a list such as [windows, darwin, linux]", where)
		return nil
	}
	if len(seq.Values) == 0 {
		d.errorf(n, "%s: platforms is empty", where)
	}
	var out []string
	for _, v := range seq.Values {
		s := d.str(v, where+": platforms")
		switch {
		case s == "":
		case !slices.Contains(Platforms, s):
			d.errorf(v, "%s: platform %q is not one of %s", where, s, strings.Join(Platforms, ", "))
		case slices.Contains(out, s):
			d.errorf(v, "%s: platform %q is listed twice", where, s)
		default:
			out = append(out, s)
		}
	}
	return out
}

// remediation reads the fix per language and platform. English is required;
// every language given must cover every platform of the rule, so a
// translation cannot silently miss a platform.
func (d *decoder) remediation(n ast.Node, where string, platforms []string) map[string]map[string]string {
	langs := d.mapping(n, where+": remediation")
	if langs == nil {
		return nil
	}
	out := map[string]map[string]string{}
	for _, lang := range sortedKeys(langs) {
		mv := langs[lang]
		if !langPattern.MatchString(lang) {
			d.errorf(mv.Key, "%s: remediation: %q is not a language code (use two or three lowercase letters: en, fr)", where, lang)
			continue
		}
		byPlatform := d.mapping(mv.Value, where+": remediation."+lang)
		if byPlatform == nil {
			continue
		}
		texts := map[string]string{}
		for _, pl := range sortedKeys(byPlatform) {
			pv := byPlatform[pl]
			if !slices.Contains(platforms, pl) {
				d.errorf(pv.Key, "%s: remediation.%s: %q is not one of the rule's platforms", where, lang, pl)
				continue
			}
			s := d.str(pv.Value, where+": remediation."+lang+"."+pl)
			if strings.TrimSpace(s) == "" {
				if _, ok := scalar(pv.Value); ok {
					d.errorf(pv.Value, "%s: remediation.%s.%s is empty", where, lang, pl)
				}
				continue
			}
			texts[pl] = s
		}
		for _, pl := range platforms {
			if _, ok := byPlatform[pl]; !ok {
				d.errorf(mv.Key, "%s: remediation.%s has no text for platform %s", where, lang, pl)
			}
		}
		out[lang] = texts
	}
	if _, ok := langs[DefaultLang]; !ok {
		d.errorf(n, "%s: remediation has no %q text (English is the fallback for every language)", where, DefaultLang)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parseGraceSpec reads a grace: a duration as parseGrace reads it,
// optionally followed by the word "connected" ("72h connected", "3d
// connected"), which makes only connected time count.
func parseGraceSpec(s string) (g time.Duration, connected bool, err error) {
	fields := strings.Fields(s)
	switch {
	case len(fields) == 2 && fields[1] == "connected":
		connected = true
		s = fields[0]
	case len(fields) > 1:
		return 0, false, errNotDuration
	}
	g, err = parseGrace(s)
	return g, connected, err
}

var errNotDuration = errors.New(`not a duration (write 72h, 90m or 14d, optionally followed by "connected")`)

// parseGrace reads a Go duration ("72h", "90m") or a whole number of days
// ("14d").
func parseGrace(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var g time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		days, err := strconv.Atoi(n)
		if err != nil || days > int(maxGrace/(24*time.Hour)) {
			return 0, fmt.Errorf("longer than %d days", int(maxGrace/(24*time.Hour)))
		}
		g = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		g, err = time.ParseDuration(s)
		if err != nil {
			return 0, errNotDuration
		}
	}
	switch {
	case g < 0:
		return 0, fmt.Errorf("must not be negative")
	case g > maxGrace:
		return 0, fmt.Errorf("longer than %d days", int(maxGrace/(24*time.Hour)))
	}
	return g, nil
}

// compile checks and compiles one CEL expression; problems point to the
// YAML line of the expression plus CEL's own line.
func (d *decoder) compile(n ast.Node, src, what string, want ...*cel.Type) cel.Program {
	if strings.TrimSpace(src) == "" {
		if _, ok := scalar(n); ok {
			d.errorf(n, "%s is empty", what)
		}
		d.unparsed = true
		return nil
	}
	if len(src) > maxExpressionSize {
		d.errorf(n, "%s is longer than %d characters", what, maxExpressionSize)
		d.unparsed = true
		return nil
	}
	env := d.env
	if env == nil {
		return nil // reported once by document
	}
	line, col := position(n)
	if lit, ok := n.(*ast.LiteralNode); ok && lit.Start != nil && lit.Start.Position != nil {
		// A block scalar's text starts on the line after its indicator.
		line, col = lit.Start.Position.Line+1, 0
	} else if tk := n.GetToken(); tk != nil && (tk.Type == token.SingleQuoteType || tk.Type == token.DoubleQuoteType) {
		col++ // the quote
	}
	parsed, iss := env.Parse(src)
	if iss != nil && iss.Err() != nil {
		d.unparsed = true
		d.celIssues(iss, what, line, col)
		return nil
	}
	d.reads = append(d.reads, exprReads(parsed)...)
	d.readsFeed = d.readsFeed || readsFeed(parsed)
	if !d.checkParamUses(parsed, what, line, col) || !d.checkMessages(parsed, what, line, col) {
		return nil
	}
	checked, iss := env.Check(parsed)
	if iss != nil && iss.Err() != nil {
		d.celIssues(iss, what, line, col)
		return nil
	}
	out := checked.OutputType()
	if !out.IsExactType(cel.DynType) && !slices.ContainsFunc(want, out.IsExactType) {
		words := typeWord(want[0])
		if len(want) > 1 {
			words = "text, a message (msg) or a list of messages"
		}
		d.errorf(n, "%s must give a %s, not a %s", what, words, typeWord(out))
		return nil
	}
	for _, ref := range checked.NativeRep().ReferenceMap() {
		if slices.Contains(ref.OverloadIDs, "unknown_string") {
			d.literals++
		}
	}
	if strings.HasSuffix(what, ": observed") && !out.IsExactType(messageType) && !out.IsExactType(cel.ListType(messageType)) {
		d.literals++
	}
	if !d.withinBudget(n, env, checked, what, line) {
		return nil
	}
	prg, err := env.Program(checked, cel.CostLimit(maxExpressionCost), cel.CostTracking(callCosts{}),
		cel.InterruptCheckFrequency(interruptEvery))
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
		return nil
	}
	return prg
}

// withinBudget estimates an expression's worst-case cost and adds it to
// the document's; it reports the expression over the per-expression limit
// and the one that takes the document over its budget.
func (d *decoder) withinBudget(n ast.Node, env *cel.Env, checked *cel.Ast, what string, line int) bool {
	est, err := env.EstimateCost(checked, sizes{params: d.params})
	if err != nil {
		d.errorf(n, "%s: cannot estimate its cost: %v", what, err)
		return false
	}
	if est.Max > maxExpressionCost {
		d.at(line, 0, "%s can cost up to %s in the worst case, more than the %s one expression may (see the limits in docs/policies.md)",
			what, costWords(est.Max), costWords(maxExpressionCost))
		return false
	}
	d.cost += est.Max
	if d.cost > maxDocumentCost && !d.overBudget {
		d.overBudget = true
		d.at(line, 0, "%s takes the policy's worst-case cost to %s, more than the %s a policy may spend on one device (see the limits in docs/policies.md)",
			what, costWords(d.cost), costWords(maxDocumentCost))
	}
	return !d.overBudget
}

func costWords(n uint64) string { return strconv.FormatUint(n, 10) + " units" }

func (d *decoder) celIssues(iss *cel.Issues, what string, line, col int) {
	for _, e := range iss.Errors() {
		d.atExpression(line, col, e.Location, what+": "+e.Message)
	}
}

func typeWord(t *cel.Type) string {
	switch {
	case t.IsExactType(cel.BoolType):
		return "condition (true or false)"
	case t.IsExactType(cel.StringType):
		return "text (string)"
	case t.IsExactType(messageType):
		return "message (msg)"
	case t.IsExactType(cel.ListType(messageType)):
		return "list of messages"
	}
	return t.String()
}
