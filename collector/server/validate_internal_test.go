package server

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestValidateReasonText: a report whose collections and results carry
// catalogue Texts (a map of parameters) is taken; parameters are bounded
// like every string and list.
func TestValidateReasonText(t *testing.T) {
	report := func(params map[string]string) *wardv1.Report {
		text := []*wardv1.Text{{Id: "reason.needs_admin", Params: params}}
		return &wardv1.Report{Sequence: 1, CollectedAt: timestamppb.Now(), Facts: &wardv1.Facts{
			Firewall: &wardv1.FirewallFacts{Collection: &wardv1.Collection{
				Status: wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, Reason: "denied", ReasonText: text}}},
			Results: []*wardv1.RuleResult{{RuleId: "firewall-on", ReasonText: text}}}
	}
	if err := validateReport(report(map[string]string{"source": "nftables"})); err != nil {
		t.Errorf("a reason_text with a parameter: %v", err)
	}
	if err := validateReport(report(map[string]string{"detail": strings.Repeat("x", maxStringLen+1)})); err == nil ||
		!strings.Contains(err.Error(), "longer than") {
		t.Errorf("an over-long parameter value: %v", err)
	}
	if err := validateReport(report(map[string]string{strings.Repeat("k", maxStringLen+1): "v"})); err == nil {
		t.Error("an over-long parameter name was taken")
	}
	many := map[string]string{}
	for i := range maxMapLen + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	if err := validateReport(report(many)); err == nil || !strings.Contains(err.Error(), "entries") {
		t.Errorf("too many parameters: %v", err)
	}
}
