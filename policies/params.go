package policies

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"github.com/goccy/go-yaml/ast"
)

// Limits on a document's parameters.
const (
	maxParams     = 100
	maxParamItems = 1000
)

// paramsVar is the name rules read parameters under: params.NAME.
const paramsVar = "params"

var paramNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// celReserved are CEL's reserved words, which cannot follow "params.".
var celReserved = []string{"as", "break", "const", "continue", "else", "false", "for", "function", "if",
	"import", "in", "let", "loop", "package", "namespace", "null", "return", "true", "var", "void", "while"}

// param is one declared parameter while the document is decoded.
type param struct {
	value any // string, int64, bool, []string or []int64
	typ   *cel.Type
	node  ast.Node   // the value
	items []ast.Node // the entries of a list
	// bad is true when the value was refused; rules reading it are not
	// checked further, so one mistake gives one problem.
	bad  bool
	used bool
	// checked is true once the entries were checked as services.
	checked bool
}

// readParams reads the document's params: a mapping of names to a text, a
// whole number, true or false, or a list of texts or of whole numbers.
func (d *decoder) readParams(n ast.Node) {
	fields := d.mapping(n, "params")
	if fields == nil {
		d.paramsRefused = true
		return
	}
	if len(fields) > maxParams {
		d.errorf(n, "params: more than %d parameters", maxParams)
		d.paramsRefused = true
		return
	}
	for _, name := range sortedKeys(fields) {
		mv := fields[name]
		if !paramNamePattern.MatchString(name) || slices.Contains(celReserved, name) {
			d.errorf(mv.Key, "params: %q is not a parameter name (lowercase letters, digits and underscores, starting with a letter; rules read it as params.NAME)", name)
			continue
		}
		d.params[name] = d.paramValue(name, mv.Value)
	}
}

const paramShapes = "a text, a whole number, true or false, or a list of texts or of whole numbers"

func (d *decoder) paramValue(name string, n ast.Node) *param {
	p := &param{node: n, bad: true, typ: cel.DynType}
	if d.refuse(n) {
		return p
	}
	what := "params." + name
	switch v := n.(type) {
	case *ast.SequenceNode:
		if len(v.Values) > maxParamItems {
			d.errorf(n, "%s: more than %d entries", what, maxParamItems)
			return p
		}
		var strs []string
		var ints []int64
		for i, item := range v.Values {
			at := fmt.Sprintf("%s[%d]", what, i)
			if d.refuse(item) {
				return p
			}
			x, ok := d.paramScalar(at, item)
			if !ok {
				return p
			}
			switch x := x.(type) {
			case string:
				strs = append(strs, x)
			case int64:
				ints = append(ints, x)
			default:
				d.errorf(item, "%s: a list holds texts or whole numbers, not %v", at, x)
				return p
			}
			if len(strs) > 0 && len(ints) > 0 {
				d.errorf(item, "%s: a list holds only texts or only whole numbers, not both", at)
				return p
			}
			p.items = append(p.items, item)
		}
		switch {
		case len(ints) > 0:
			p.value, p.typ = ints, cel.ListType(cel.IntType)
		case len(strs) > 0:
			p.value, p.typ = strs, cel.ListType(cel.StringType)
		default:
			// An empty list fits any rule that reads a list.
			p.value, p.typ = []string{}, cel.ListType(cel.DynType)
		}
	default:
		x, ok := d.paramScalar(what, n)
		if !ok {
			return p
		}
		p.value = x
		switch x.(type) {
		case string:
			p.typ = cel.StringType
		case int64:
			p.typ = cel.IntType
		case bool:
			p.typ = cel.BoolType
		}
	}
	p.bad = false
	return p
}

// paramScalar reads one text, whole number or boolean.
func (d *decoder) paramScalar(what string, n ast.Node) (any, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		s, _ := scalar(v)
		return s, true
	case *ast.BoolNode:
		return v.Value, true
	case *ast.IntegerNode:
		switch i := v.Value.(type) {
		case int64:
			return i, true
		case uint64:
			if i <= math.MaxInt64 {
				return int64(i), true
			}
		}
		d.errorf(n, "%s: %s is too large a number", what, v.GetToken().Value)
		return nil, false
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		d.errorf(n, "%s: %s is not a whole number (a parameter is %s)", what, n.GetToken().Value, paramShapes)
		return nil, false
	case *ast.NullNode:
		d.errorf(n, "%s has no value (a parameter is %s)", what, paramShapes)
		return nil, false
	}
	d.errorf(n, "%s must be %s", what, paramShapes)
	return nil, false
}

// paramEnv extends the base environment with one variable per parameter,
// named "params.NAME" and typed by its value, so the type checker catches a
// rule that reads a parameter as the wrong kind of value.
func (d *decoder) paramEnv(base *cel.Env) (*cel.Env, error) {
	if len(d.params) == 0 {
		return base, nil
	}
	var opts []cel.EnvOption
	for _, name := range sortedKeys(d.params) {
		opts = append(opts, cel.Variable(paramsVar+"."+name, d.params[name].typ))
	}
	return base.Extend(opts...)
}

// checkParamUses walks a parsed expression for its reads of params: each
// must be params.NAME with NAME declared, and a list of services given to
// service_allowed is checked entry by entry. It returns false when the
// expression should not be type-checked (the checker would only repeat the
// problem in its own words).
func (d *decoder) checkParamUses(parsed *cel.Ast, what string, line, col int) bool {
	native := parsed.NativeRep()
	info := native.SourceInfo()
	at := func(id int64, format string, args ...any) {
		d.atExpression(line, col, info.GetStartLocation(id), what+": "+fmt.Sprintf(format, args...))
	}
	ok := true
	for _, e := range celast.MatchDescendants(celast.NavigateAST(native), celast.AllMatcher()) {
		switch e.Kind() {
		case celast.IdentKind:
			if e.AsIdent() != paramsVar {
				continue
			}
			parent, has := e.Parent()
			if !has || parent.Kind() != celast.SelectKind {
				at(e.ID(), "params is not a value: read one parameter as params.NAME")
				ok = false
				continue
			}
			sel := parent.AsSelect()
			name := sel.FieldName()
			p := d.params[name]
			switch {
			case sel.IsTestOnly():
				at(e.ID(), "has(params.%s): a declared parameter always has a value", name)
				ok = false
			case p == nil && d.paramsRefused:
				ok = false // the params block itself was reported
			case p == nil:
				at(e.ID(), "the parameter %q is not declared under params%s", name, declaredParams(d.params))
				ok = false
			default:
				p.used = true
				if p.bad {
					ok = false
				}
			}
		case celast.ComprehensionKind:
			c := e.AsComprehension()
			if c.IterVar() == paramsVar || (c.HasIterVar2() && c.IterVar2() == paramsVar) {
				at(e.ID(), "params is reserved for the document's parameters: name the variable something else")
				ok = false
			}
		case celast.CallKind:
			call := e.AsCall()
			if call.FunctionName() != fnServiceAllowed || len(call.Args()) != 2 {
				continue
			}
			if !d.checkServiceList(call.Args()[1], what, func(id int64, msg string) { at(id, "%s", msg) }) {
				ok = false
			}
		}
	}
	return ok
}

// checkServiceList checks the list given to service_allowed when it is
// known at load time: a parameter (problems at its entries' lines) or a
// list of literal texts.
func (d *decoder) checkServiceList(arg celast.Expr, what string, at func(id int64, msg string)) bool {
	switch arg.Kind() {
	case celast.SelectKind:
		sel := arg.AsSelect()
		if op := sel.Operand(); op.Kind() != celast.IdentKind || op.AsIdent() != paramsVar {
			return true
		}
		p := d.params[sel.FieldName()]
		if p == nil || p.bad || p.checked {
			return true
		}
		p.checked = true
		name := "params." + sel.FieldName()
		list, isList := p.value.([]string)
		if !isList {
			rule := what
			if i := strings.LastIndex(what, ": "); i > 0 {
				rule = what[:i]
			}
			d.errorf(p.node, "%s must be a list of services such as [tcp/22, udp/5353] (%s reads it with %s)", name, rule, fnServiceAllowed)
			p.bad = true
			return false
		}
		for i, s := range list {
			if _, err := parseServiceSpec(s); err != nil {
				d.errorf(p.items[i], "%s[%d]: %v", name, i, err)
			}
		}
	case celast.ListKind:
		for _, el := range arg.AsList().Elements() {
			if el.Kind() != celast.LiteralKind {
				continue
			}
			if s, isStr := el.AsLiteral().(types.String); isStr {
				if _, err := parseServiceSpec(string(s)); err != nil {
					at(el.ID(), err.Error())
				}
			}
		}
	}
	return true
}

func declaredParams(params map[string]*param) string {
	if len(params) == 0 {
		return " (the document declares no params)"
	}
	return " (declared: " + strings.Join(sortedKeys(params), ", ") + ")"
}

// unusedParams reports parameters no rule reads: most often a typo, or a
// rule removed and its parameter left behind.
func (d *decoder) unusedParams() {
	for _, name := range sortedKeys(d.params) {
		if p := d.params[name]; !p.used {
			d.errorf(p.node, "params.%s is not read by any rule", name)
		}
	}
}

// serviceSpec is one entry of a list of allowed services: a protocol and
// an inclusive port range.
type serviceSpec struct {
	proto  string
	lo, hi uint64
}

// serviceProtocols are the protocols a service entry may name: those of
// listening sockets with ports.
var serviceProtocols = []string{"tcp", "udp", "sctp"}

// parseServiceSpec reads "tcp/22", "udp/5353" or "tcp/8000-8100". The
// protocol is case-insensitive; ports are 1 to 65535.
func parseServiceSpec(s string) (serviceSpec, error) {
	bad := func(why string) (serviceSpec, error) {
		return serviceSpec{}, fmt.Errorf("%q is not a service: %s (write PROTOCOL/PORT or PROTOCOL/FIRST-LAST, such as tcp/22, udp/5353 or tcp/8000-8100)", s, why)
	}
	proto, ports, found := strings.Cut(s, "/")
	if !found {
		return bad("it has no \"/\" between protocol and port")
	}
	proto = strings.ToLower(proto)
	if !slices.Contains(serviceProtocols, proto) {
		return bad("the protocol must be tcp, udp or sctp")
	}
	first, last, isRange := strings.Cut(ports, "-")
	lo, err := parsePort(first)
	if err != nil {
		return bad(err.Error())
	}
	hi := lo
	if isRange {
		if hi, err = parsePort(last); err != nil {
			return bad(err.Error())
		}
		if hi < lo {
			return bad("the range ends before it starts")
		}
	}
	return serviceSpec{proto: proto, lo: lo, hi: hi}, nil
}

func parsePort(s string) (uint64, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, _ := strconv.ParseUint(s, 10, 32)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is not between 1 and 65535", n)
	}
	return n, nil
}

// allows reports whether the spec covers a service on proto and port.
func (s serviceSpec) allows(proto string, port uint64) bool {
	return s.proto == proto && s.lo <= port && port <= s.hi
}

// atExpression reports a problem at a place in a CEL expression whose YAML
// node starts at line, col.
func (d *decoder) atExpression(line, col int, loc common.Location, msg string) {
	if loc != nil && loc.Line() > 0 {
		l, c := line+loc.Line()-1, loc.Column()+1
		if loc.Line() == 1 {
			c = col + loc.Column()
		}
		d.at(l, c, "%s (expression %d:%d)", msg, loc.Line(), loc.Column()+1)
		return
	}
	d.at(line, col, "%s", msg)
}
