package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestAgentGraceOnlyWhereThePolicySaysConnected: the collector keeps an
// agent's connected-time accounting (grace used, paused) only for rules its
// own policy gives a connected grace; a claim of a paused deadline on a
// wall-clock rule is ignored, so the rule still falls overdue.
func TestAgentGraceOnlyWhereThePolicySaysConnected(t *testing.T) {
	claim := func(id string) *wardv1.RuleResult {
		return &wardv1.RuleResult{RuleId: id, Status: wardv1.ResultStatus_RESULT_STATUS_FAIL,
			GraceConnected: true, GraceUsed: durationpb.New(2 * time.Hour), DeadlinePaused: true}
	}
	collector := []policies.Result{
		{RuleID: "security-updates", Status: policies.StatusFail, GraceConnected: true},
		{RuleID: "firewall-on", Status: policies.StatusFail},
	}
	got := mergeResults(collector, []*wardv1.RuleResult{claim("security-updates"), claim("firewall-on")})
	if len(got) != 2 {
		t.Fatalf("%d results, want 2", len(got))
	}
	if r := got[0]; !r.GraceConnected || r.GraceUsed != 2*time.Hour || !r.DeadlinePaused {
		t.Errorf("connected rule: %+v, want the agent's accounting kept", r)
	}
	if r := got[1]; r.GraceConnected || r.GraceUsed != 0 || r.DeadlinePaused {
		t.Errorf("wall-clock rule: %+v, want the agent's claim of a paused deadline ignored", r)
	}
}
