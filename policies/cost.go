package policies

import (
	"strings"

	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// CEL cost budgets, in cel-go's cost units (about one unit per value read
// or compared, a tenth of a unit per byte of text). Every expression's
// worst case is estimated when its document is loaded, with every list
// and map in the facts EstimatedListLen long and every text
// EstimatedTextLen bytes; a document over either budget is refused. The
// same budgets bound each evaluation. The shipped policies' worst cases
// are at most a fifth of each (TestShippedWithinLimits, docs/policies.md
// "Limits").
const (
	// maxExpressionCost bounds one expression on one device's facts.
	maxExpressionCost = 1_000_000
	// maxDocumentCost bounds all of a document's expressions on one
	// device's facts.
	maxDocumentCost = 3_000_000
)

// The sizes the load-time cost estimate assumes for the facts: the
// collector refuses a report with a longer list or text (so a policy it
// accepted cannot be pushed over its budget by a report), and the agent's
// collectors produce far less (a few volumes, profiles and services).
const (
	EstimatedListLen = 4096
	EstimatedTextLen = 4096
)

// Overloads whose cost grows with a list argument.
var listCostArg = map[string]int{
	"service_allowed_dyn_list_string": 1,
	"describe_volumes_list":           0,
	"describe_services_list":          0,
}

// sizes is the cost.Estimator for one document: the facts' lists and texts
// at their bounds, the document's parameters at their actual sizes.
type sizes struct {
	params map[string]*param
}

func (e sizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		// A value computed by the expression: its own size where the
		// estimator can derive it, else what a fact may hold.
		if sz := n.ComputedSize(); sz != nil {
			return sz
		}
		return &cost.SizeEstimate{Min: 0, Max: max(EstimatedListLen, EstimatedTextLen)}
	}
	if name, ok := strings.CutPrefix(path[0], paramsVar+"."); ok {
		p := e.params[name]
		if p == nil {
			return nil
		}
		var sz uint64
		switch v := p.value.(type) {
		case string:
			sz = uint64(len(v))
		case []string:
			sz = uint64(len(v))
			if len(path) > 1 {
				sz = 0
				for _, s := range v {
					sz = max(sz, uint64(len(s)))
				}
			}
		case []int64:
			sz = uint64(len(v))
		default:
			return nil
		}
		return &cost.SizeEstimate{Min: 0, Max: sz}
	}
	return &cost.SizeEstimate{Min: 0, Max: max(EstimatedListLen, EstimatedTextLen)}
}

func (e sizes) EstimateCallCost(_, overloadID string, _ *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	i, ok := listCostArg[overloadID]
	if !ok || i >= len(args) {
		return nil
	}
	sz := e.EstimateSize(args[i])
	if sz == nil {
		if sz = args[i].ComputedSize(); sz == nil {
			sz = &cost.SizeEstimate{Min: 0, Max: EstimatedListLen}
		}
	}
	return cost.NewCallEstimate(cost.Estimate{Min: 1, Max: cost.SafeAdd(sz.Max, 1)}, nil)
}

// callCosts charges the list functions at run time as they were estimated.
type callCosts struct{}

func (callCosts) CallCost(_, overloadID string, args []ref.Val, _ ref.Val) *uint64 {
	i, ok := listCostArg[overloadID]
	if !ok || i >= len(args) {
		return nil
	}
	n := uint64(1)
	if l, ok := args[i].(traits.Sizer); ok {
		if sz, ok := l.Size().Value().(int64); ok && sz > 0 {
			n += uint64(sz)
		}
	}
	return &n
}
