package policies

import (
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Fact reads: which facts a policy's expressions look at, so the agent
// can leave the others out of its report and the collector can tell a
// rule that reads a fact left out (docs/enrolment.md, "Report size").
// A read is named "variable.field" ("patch.pending"), or "variable" alone
// when an expression uses the variable other than by a constant field
// name (patch[k], a function of patch): then it may read any field.

// PendingNames is the read of the pending updates' list, which the agent
// sends only to a policy that reads it.
const PendingNames = varPatch + ".pending"

// factVars are the variables that hold facts.
var factVars = []string{varOS, varDisk, varPatch, varFirewall}

// exprReads lists the fact reads of one parsed expression, unsorted and
// possibly repeated.
func exprReads(parsed *cel.Ast) []string {
	var out []string
	for _, e := range celast.MatchDescendants(celast.NavigateAST(parsed.NativeRep()), celast.KindMatcher(celast.IdentKind)) {
		v := e.AsIdent()
		if !slices.Contains(factVars, v) {
			continue
		}
		out = append(out, identRead(e, v))
	}
	return out
}

// identRead names what the use e of the fact variable v reads: the field
// of a select (has() included) or of an index by a constant text, else
// the whole variable.
func identRead(e celast.NavigableExpr, v string) string {
	parent, ok := e.Parent()
	if !ok {
		return v
	}
	switch parent.Kind() {
	case celast.SelectKind:
		return v + "." + parent.AsSelect().FieldName()
	case celast.CallKind:
		call := parent.AsCall()
		args := call.Args()
		if (call.FunctionName() == "_[_]" || call.FunctionName() == "_[?_]") && len(args) == 2 &&
			args[0].ID() == e.ID() && args[1].Kind() == celast.LiteralKind {
			if s, ok := args[1].AsLiteral().(types.String); ok {
				return v + "." + string(s)
			}
		}
	}
	return v
}

// Reads lists, sorted, the facts the policy's rules read (when, require
// and observed expressions).
func (p *Policy) Reads() []string {
	var out []string
	for _, r := range p.Rules {
		out = append(out, r.reads...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ReadsFact reports whether some rule of the policy may read the fact
// path ("patch.pending"): it or its whole variable.
func (p *Policy) ReadsFact(path string) bool {
	for _, r := range p.Rules {
		if r.readsFact(path) {
			return true
		}
	}
	return false
}

func (r *Rule) readsFact(path string) bool {
	v, _, _ := strings.Cut(path, ".")
	return slices.Contains(r.reads, path) || slices.Contains(r.reads, v)
}

// omittedFacts lists the reads whose facts the agent left out of the
// report: the pending updates' names when only their digest came.
func omittedFacts(f *wardv1.Facts) []string {
	if p := f.GetPatchLevel(); len(p.GetPendingDigest()) > 0 && len(p.GetPending()) == 0 {
		return []string{PendingNames}
	}
	return nil
}
