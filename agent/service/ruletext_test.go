package service

import (
	"testing"

	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
)

// TestRuleResultsCarryTexts: the report carries a result's catalogue
// messages beside their English rendering.
func TestRuleResultsCarryTexts(t *testing.T) {
	obs := []texts.Text{texts.New("disk.volume_not_encrypted", "place", "/")}
	why := []texts.Text{texts.New("engine.detail", "detail", "lsblk timed out")}
	rr := ruleResults([]policies.Result{{RuleID: "a", Status: policies.StatusUnknown, Observed: "/ is not encrypted",
		ObservedText: obs, Reason: "lsblk timed out", ReasonText: why}})
	if len(rr) != 1 || len(rr[0].ObservedText) != 1 || rr[0].ObservedText[0].GetId() != "disk.volume_not_encrypted" ||
		rr[0].ObservedText[0].GetParams()["place"] != "/" || len(rr[0].ReasonText) != 1 ||
		rr[0].ReasonText[0].GetParams()["detail"] != "lsblk timed out" || rr[0].Observed != "/ is not encrypted" {
		t.Errorf("%+v", rr)
	}
}
