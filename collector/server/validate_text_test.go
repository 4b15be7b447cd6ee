package server

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestValidateCatalogueTexts: a report's catalogue messages (observed_text,
// reason_text, with their parameters) are accepted within the bounds of
// any string, and refused beyond them.
func TestValidateCatalogueTexts(t *testing.T) {
	report := func(params map[string]string) *wardv1.Report {
		return &wardv1.Report{Sequence: 1, CollectedAt: timestamppb.Now(),
			Facts: &wardv1.Facts{Firewall: &wardv1.FirewallFacts{Collection: &wardv1.Collection{
				ReasonText: []*wardv1.Text{{Id: "reason.needs_admin", Params: params}}}}},
			Results: []*wardv1.RuleResult{{RuleId: "disk-encrypted",
				ObservedText: []*wardv1.Text{{Id: "disk.volume_not_encrypted", Params: params}}}}}
	}
	if err := validateReport(report(map[string]string{"place": "/ (/dev/vda2)"})); err != nil {
		t.Errorf("a report with messages: %v", err)
	}
	if err := validateReport(report(map[string]string{"place": strings.Repeat("x", maxStringLen+1)})); err == nil {
		t.Error("a parameter over the string bound was accepted")
	}
	if err := validateReport(report(map[string]string{strings.Repeat("k", maxStringLen+1): "v"})); err == nil {
		t.Error("a parameter name over the string bound was accepted")
	}
	many := map[string]string{}
	for i := range maxListLen + 1 {
		many[strings.Repeat("k", 1+i%50)+string(rune('a'+i/50%26))+string(rune('a'+i/1300))] = "v"
	}
	if len(many) > maxListLen {
		if err := validateReport(report(many)); err == nil {
			t.Errorf("%d parameters were accepted", len(many))
		}
	}
}
