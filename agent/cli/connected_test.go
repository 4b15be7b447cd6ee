package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestStatusConnectedDeadline: status says a connected-grace deadline in
// connected time left, or paused since the last connection, instead of a
// date; a wall-clock rule keeps its date.
func TestStatusConnectedDeadline(t *testing.T) {
	pol, err := policies.Embedded("high-risk")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	since, lastOnline := now.Add(-4*24*time.Hour), now.Add(-26*time.Hour)
	running, paused, wall := now.Add(3*24*time.Hour+2*time.Hour), now.Add(30*time.Hour), now.Add(20*time.Hour)
	results := []policies.Result{
		{RuleID: "security-updates", Family: "patch_level", Status: policies.StatusFail, Severity: "critical",
			FailingSince: &since, Deadline: &running, GraceConnected: true, GraceUsed: 0},
		{RuleID: "restart-after-updates", Family: "patch_level", Status: policies.StatusFail, Severity: "high",
			FailingSince: &since, Deadline: &wall},
	}
	tests := []struct {
		name    string
		results []policies.Result
		lang    string
		want    []string
		notWant []string
	}{
		{"running", results, "en", []string{
			"   Connected days left: 3.\n   Only time with an internet connection counts: if you stay connected, the deadline is 2026-12-04 11:00.\n",
			"   Deadline: 2026-12-02 05:00\n"}, []string{"Deadline: 2026-12-04"}},
		{"paused", []policies.Result{{RuleID: "security-updates", Family: "patch_level", Status: policies.StatusFail,
			Severity: "critical", FailingSince: &since, Deadline: &paused, GraceConnected: true, GraceUsed: 42 * time.Hour,
			DeadlinePaused: true, PausedSince: &lastOnline}}, "fr", []string{
			"   Date limite en pause : pas de connexion depuis le 2026-11-30 07:00. Seul le temps passé connecté à Internet compte : la date limite attend que vous soyez de nouveau connecté.\n   Jours de connexion restants : 1.\n"},
			[]string{"Date limite : 2026-12-02", "En retard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := notify.NewStatus(pol, "linux", tt.results, now)
			var buf bytes.Buffer
			renderStatus(&buf, st, notify.FromService, tt.lang, now)
			out := buf.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("status lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("status says %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestCheckConnectedDeadline(t *testing.T) {
	pol, err := policies.Embedded("high-risk")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	deadline := now.Add(72 * time.Hour)
	results := []policies.Result{{RuleID: "security-updates", Title: "Security updates are installed", Family: "patch_level",
		Status: policies.StatusFail, Severity: "critical", Observed: "3 security updates pending", Expected: "none",
		FailingSince: &now, Deadline: &deadline, GraceConnected: true, Remediation: "Install them."}}
	facts := &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux", Name: "Debian GNU/Linux", Version: "12"}}
	var buf bytes.Buffer
	renderTable(&buf, pol, facts, results, now, "en", 160)
	out := buf.String()
	want := "    Connected days left: 3.\n    Only time with an internet connection counts: if you stay connected, the deadline is 2026-12-04 09:00.\n"
	if !strings.Contains(out, want) || strings.Contains(out, "Deadline: 2026-12-04") {
		t.Errorf("check output lacks the connected deadline %q:\n%s", want, out)
	}
}

// TestPrivacySaysTheProbe: the privacy summary says the report tells
// whether the collector and the update source were reached, and that Ward
// contacts the update source, naming it; without a probe, only the first.
func TestPrivacySaysTheProbe(t *testing.T) {
	dest := destination{collector: "ward.example.org:8443", enrolled: true, readable: true}
	for _, tt := range []struct {
		conn    *wardv1.Connectivity
		lang    string
		want    string
		notWant string
	}{
		{&wardv1.Connectivity{Collector: wardv1.Reach_REACH_REACHED, UpdateSource: wardv1.Reach_REACH_UNREACHABLE, UpdateSourceName: "deb.mirror.example.org"}, "en",
			"- whether the last report reached your organisation's Ward server, and whether your laptop could reach where its updates come from (deb.mirror.example.org): to find out, Ward opens a connection to deb.mirror.example.org once a round, sends nothing and closes it\n", ""},
		{&wardv1.Connectivity{Collector: wardv1.Reach_REACH_REACHED, UpdateSource: wardv1.Reach_REACH_NOT_PROBED}, "es",
			"- si el último informe llegó al servidor Ward de su organización\n", "actualizaciones ("},
		{nil, "en", "", "whether the last report"},
	} {
		r := laptopReport()
		r.Connectivity = tt.conn
		var out bytes.Buffer
		renderPrivacy(&out, tt.lang, r, dest, "alice-laptop", time.UTC)
		if !strings.Contains(out.String(), tt.want) || (tt.notWant != "" && strings.Contains(out.String(), tt.notWant)) {
			t.Errorf("%s, %v: summary:\n%s\nwant %q, not %q", tt.lang, tt.conn, out.String(), tt.want, tt.notWant)
		}
	}
}
