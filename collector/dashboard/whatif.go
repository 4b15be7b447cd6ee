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

// WhatIfRow is a device that would newly fail rules.
type WhatIfRow struct {
	DeviceID string   `json:"device_id"`
	Hostname string   `json:"hostname"`
	Rules    []string `json:"rules"`
}

// WhatIfResult is what a draft policy would change in a group, judged on
// the devices' latest stored facts.
type WhatIfResult struct {
	Group   string `json:"group"`
	Name    string `json:"policy_name"`
	Version int    `json:"policy_version"`
	// Evaluated devices of Total (every device of the group with facts).
	Evaluated int `json:"evaluated"`
	Total     int `json:"devices"`
	// Partial is true when the deadline (Timeout) passed before every
	// device was evaluated: Newly and Fixed then cover the Evaluated
	// devices only.
	Partial bool          `json:"partial"`
	Timeout time.Duration `json:"-"`
	// Newly are the devices that would fail a rule they do not fail now.
	Newly []WhatIfRow `json:"newly_failing"`
	// Fixed counts the devices failing now that would fail nothing.
	Fixed int `json:"fixed"`
}

type whatIf = WhatIfResult

// WhatIf evaluates draft against the latest facts of every non-revoked
// device of the group: which would fail a rule they do not fail now. The
// evaluations stop after timeout (or when ctx ends); the devices left are
// still counted and the result is Partial. The dashboard's policies page
// and ward-collector policy what-if both answer with it.
func WhatIf(ctx context.Context, st store.Dashboard, group string, draft *policies.Policy, now time.Time, timeout time.Duration) (*WhatIfResult, error) {
	wi := &WhatIfResult{Group: group, Name: draft.Name, Version: draft.Version, Timeout: timeout, Newly: []WhatIfRow{}}
	evalCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := st.LatestFacts(ctx, group, func(lf store.LatestFacts) error {
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
			wi.Newly = append(wi.Newly, WhatIfRow{DeviceID: lf.DeviceID, Hostname: lf.Hostname, Rules: newly})
		}
		if failing == 0 && len(lf.Failing) > 0 {
			wi.Fixed++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return wi, nil
}

// whatIf is WhatIf for the dashboard, at its clock, bounded by
// whatIfTimeout, and logged.
func (h *handler) whatIf(ctx context.Context, group string, draft *policies.Policy) (*whatIf, error) {
	wi, err := WhatIf(ctx, h.st, group, draft, h.now(), whatIfTimeout)
	if err != nil {
		return nil, err
	}
	h.log.Info("what-if", "group", group, "policy", draft.Name, "version", draft.Version,
		"evaluated", wi.Evaluated, "devices", wi.Total, "partial", wi.Partial)
	return wi, nil
}
