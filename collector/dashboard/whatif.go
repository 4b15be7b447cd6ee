package dashboard

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

type whatIfRow struct {
	DeviceID, Hostname string
	Rules              []string
}

type whatIf struct {
	Group     string
	Name      string
	Version   int
	Evaluated int
	Newly     []whatIfRow
	Fixed     int
}

// whatIf evaluates draft against the latest facts of every device of the
// group: which would fail a rule they do not fail now.
func (h *handler) whatIf(ctx context.Context, group string, draft *policies.Policy) (*whatIf, error) {
	now := h.now()
	wi := &whatIf{Group: group, Name: draft.Name, Version: draft.Version}
	err := h.st.LatestFacts(ctx, group, func(lf store.LatestFacts) error {
		var facts wardv1.Facts
		if err := proto.Unmarshal(lf.Facts, &facts); err != nil {
			return fmt.Errorf("device %s: decode facts: %w", lf.DeviceID, err)
		}
		wi.Evaluated++
		var newly []string
		failing := 0
		for _, res := range policies.Evaluate(ctx, draft, &facts, policies.Options{Now: now}) {
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
	return wi, err
}
