package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/notify"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestPrivacyShowsCompactForms: privacy prints the report in the form it
// is sent: results without texts, pending updates by count and digest, and
// for an unchanged round the facts' digest instead of facts it does not
// send.
func TestPrivacyShowsCompactForms(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	full := &wardv1.Report{Sequence: 7, CollectedAt: at, PolicyName: "baseline", PolicyVersion: 1,
		Facts: &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux"},
			PatchLevel: &wardv1.PatchFacts{Manager: "apt", PendingUpdates: proto.Int32(143), PendingDigest: []byte{0xab, 0xcd}}},
		Results: []*wardv1.RuleResult{{RuleId: "firewall-on", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL}}}
	unchanged := &wardv1.Report{Sequence: 8, CollectedAt: at, PolicyName: "baseline", PolicyVersion: 1,
		BaseFacts: []byte{0x01, 0x02, 0xff}, ResultsAsBase: true}
	for _, tt := range []struct {
		r         *wardv1.Report
		want, not []string
	}{
		{full, []string{"FAIL     firewall-on\n", `"pending_updates": 143`, `"pending_digest": "q80="`, `"platform": "linux"`}, []string{"fingerprint"}},
		{unchanged, []string{"number 8", "The same results as in the last report", "only their fingerprint is sent: sha256:0102ff"}, []string{`"platform"`, "{digest}"}},
	} {
		dir := t.TempDir()
		data, err := protojson.Marshal(tt.r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, notify.LastReportFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := run(t, "privacy", "--lang", "en", "--status-dir", dir)
		if code != 0 {
			t.Fatalf("privacy = %d: %s", code, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("report %d: privacy lacks %q:\n%s", tt.r.Sequence, w, out)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(out, n) {
				t.Errorf("report %d: privacy shows %q:\n%s", tt.r.Sequence, n, out)
			}
		}
	}
}
