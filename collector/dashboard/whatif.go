package dashboard

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// whatIfTimeout bounds the evaluations of one what-if. Devices not
// evaluated by then are counted, not evaluated, and the result says it is
// partial. A variable so tests can shorten it.
var whatIfTimeout = 10 * time.Second

type whatIfRow struct {
	DeviceID, Hostname string
	Rules              []string
}

type whatIf struct {
	Group   string
	Name    string
	Version int
	// Evaluated devices of Total (every device of the group with facts).
	Evaluated, Total int
	// Partial is true when the deadline (Timeout) passed before every
	// device was evaluated: Newly and Fixed then cover the Evaluated
	// devices only.
	Partial bool
	Timeout time.Duration
	Newly   []whatIfRow
	Fixed   int
}

// whatIf evaluates draft against the latest facts of every device of the
// group: which would fail a rule they do not fail now. The evaluations stop
// at whatIfTimeout (or when ctx ends); the devices left are still counted.
func (h *handler) whatIf(ctx context.Context, group string, draft *policies.Policy) (*whatIf, error) {
	now := h.now()
	wi := &whatIf{Group: group, Name: draft.Name, Version: draft.Version, Timeout: whatIfTimeout}
	evalCtx, cancel := context.WithTimeout(ctx, whatIfTimeout)
	defer cancel()
	err := h.st.LatestFacts(ctx, group, func(lf store.LatestFacts) error {
		wi.Total++
		if evalCtx.Err() != nil {
			wi.Partial = true
			return nil
		}
		var facts wardv1.Facts
		if err := proto.Unmarshal(lf.Facts, &facts); err != nil {
			return fmt.Errorf("device %s: decode facts: %w", lf.DeviceID, err)
		}
		results := policies.Evaluate(evalCtx, draft, &facts, policies.Options{Now: now})
		if evalCtx.Err() != nil {
			// Cut short: some rules were not evaluated, so this device
			// is not counted as evaluated.
			wi.Partial = true
			return nil
		}
		wi.Evaluated++
		var newly []string
		failing := 0
		for _, res := range results {
			if res.Status == policies.StatusFail {
				failing++
				if !lf.Failing[res.RuleID] {
					newly = append(newly, res.RuleID)
				}
			}
		}
		if len(newly) > 0 {
			wi.Newly = append(wi.Newly, whatIfRow{DeviceID: lf.DeviceID, Hostname: lf.Hostname, Rules: newly})
		}
		if failing == 0 && len(lf.Failing) > 0 {
			wi.Fixed++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.log.Info("what-if", "group", group, "policy", draft.Name, "version", draft.Version,
		"evaluated", wi.Evaluated, "devices", wi.Total, "partial", wi.Partial)
	return wi, nil
}
