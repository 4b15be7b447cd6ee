package dashboard

import (
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// TestTimelineSaysWhenLateReportsArrived: a verdict change stands at its
// report's collected time; when the report arrived later (queued
// offline), the entry says when it was received. One received at once
// says nothing more.
func TestTimelineSaysWhenLateReportsArrived(t *testing.T) {
	day1 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	day11 := day1.Add(10 * 24 * time.Hour)
	soon := day1.Add(-24*time.Hour + 2*time.Second)
	trans := []store.Transition{
		{DeviceID: "d", RuleID: "disk-encrypted", To: store.Pass, At: day1.Add(-24 * time.Hour), Sequence: 1, ReceivedAt: &soon},
		{DeviceID: "d", RuleID: "disk-encrypted", From: store.Pass, To: store.Fail, At: day1, Sequence: 2, ReceivedAt: &day11},
		{DeviceID: "d", RuleID: "firewall-on", To: store.Pass, At: day1, Sequence: 2}, // recorded before received_at was kept
	}
	got := map[string]event{}
	for _, e := range timeline(store.Device{ID: "d", Group: "g"}, trans, nil, nil, day11) {
		got[e.Text] = e
	}
	for text, at := range map[string]time.Time{
		"disk-encrypted: first verdict → PASS (report 1)":                                       day1.Add(-24 * time.Hour),
		"disk-encrypted: PASS → FAIL (report 2, collected then, received 2026-03-12 09:00 UTC)": day1,
		"firewall-on: first verdict → PASS (report 2)":                                          day1,
	} {
		if e, ok := got[text]; !ok || !e.At.Equal(at) {
			t.Errorf("no timeline entry %q at %v in %v", text, at, got)
		}
	}
}
