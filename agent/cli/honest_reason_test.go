package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
)

// TestNeedsAdminTyped: the collectors' typed reason decides; the English
// words decide only when a result carries no typed reason (an older
// agent's status file).
func TestNeedsAdminTyped(t *testing.T) {
	admin := []texts.Text{texts.New("reason.firewall_rules_unreadable"), texts.New("reason.needs_admin", "source", "nftables")}
	here := []texts.Text{texts.New("reason.patch_last_install_unknown"), texts.New("reason.needs_admin_here")}
	missing := []texts.Text{texts.New("reason.patch_pending_unknown"), texts.New("reason.missing", "source", "apt-get")}
	wrapped := []texts.Text{texts.New("reason.detail", "detail", "nftables: permission denied")}
	tests := []struct {
		name   string
		status policies.Status
		reason string
		text   []texts.Text
		want   bool
	}{
		{"typed refusal, English silent about rights", policies.StatusUnknown, "cannot read the firewall ruleset", admin, true},
		{"typed refusal without a source", policies.StatusUnknown, "last update time unknown", here, true},
		{"typed other reason wins over English words", policies.StatusUnknown, "apt-get: permission denied in its own words", missing, false},
		{"older status file: English permission error", policies.StatusUnknown, "nftables: read generation: permission denied", nil, true},
		{"older status file: administrator rights", policies.StatusUnknown, "reading BitLocker's state needs administrator rights", nil, true},
		{"older status file: other reason", policies.StatusUnknown, "apt-get: not installed", nil, false},
		{"engine's English wrapper falls back to the words", policies.StatusUnknown, "nftables: permission denied", wrapped, true},
		{"a FAIL was decided", policies.StatusFail, "permission denied", admin, false},
		{"a PASS was decided", policies.StatusPass, "", admin, false},
	}
	for _, tt := range tests {
		if got := needsAdmin(tt.status, tt.reason, tt.text...); got != tt.want {
			t.Errorf("%s: needsAdmin = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAdminNoteFromCollectedReason: a laptop read without rights (the
// kernel refuses the nftables dump) gives a firewall collection whose
// reason_text says so, and `check`'s end lists the rule from that typed
// reason alone, whatever the English reason says.
func TestAdminNoteFromCollectedReason(t *testing.T) {
	facts := collect.All(context.Background(), deniedSource{replayed(t)}, time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	rt := texts.FromProto(facts.GetFirewall().GetCollection().GetReasonText())
	if len(rt) != 2 || rt[0].ID != "reason.firewall_rules_unreadable" || rt[1].ID != "reason.needs_admin" || rt[1].Params["source"] != "nftables" {
		t.Fatalf("firewall reason_text %+v", rt)
	}
	r := policies.Result{RuleID: "firewall-on", Status: policies.StatusUnknown, Reason: "the firewall could not be read", ReasonText: rt}
	if got, want := unknownAdvice(r, "fr"), "Non vérifié : cela demande des droits d'administrateur (voir à la fin)."; got != want {
		t.Errorf("advice %q, want %q", got, want)
	}
	var b bytes.Buffer
	renderAdminNote(&b, []policies.Result{r}, "en", false, false)
	if !strings.Contains(b.String(), "Checks that need administrator rights: firewall-on.") {
		t.Errorf("admin note %q", b.String())
	}
	if got, want := texts.Render("es", rt), "Ward no pudo leer las reglas del cortafuegos: solo un administrador puede leer nftables, y Ward no se ejecutaba como administrador"; got != want {
		t.Errorf("es reason %q\nwant %q", got, want)
	}
}
