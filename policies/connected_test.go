package policies

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseGraceSpec(t *testing.T) {
	tests := []struct {
		in        string
		want      time.Duration
		connected bool
		wantErr   bool
	}{
		{"72h", 72 * time.Hour, false, false},
		{"72h connected", 72 * time.Hour, true, false},
		{"3d connected", 72 * time.Hour, true, false},
		{"  14d   connected ", 14 * 24 * time.Hour, true, false},
		{"3d Connected", 0, false, true},
		{"3d connected days", 0, false, true},
		{"connected", 0, false, true},
		{"3d offline", 0, false, true},
		{"367d connected", 0, true, true},
		{"-1h connected", 0, true, true},
	}
	for _, tt := range tests {
		got, connected, err := parseGraceSpec(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && (got != tt.want || connected != tt.connected)) {
			t.Errorf("parseGraceSpec(%q) = %v, %v, %v; want %v, %v, error %v", tt.in, got, connected, err, tt.want, tt.connected, tt.wantErr)
		}
	}
}

// TestShippedConnectedGrace: the rules whose fix needs the update source
// count connected time only; the others keep wall-clock grace (a restart
// or a setting needs no connection).
func TestShippedConnectedGrace(t *testing.T) {
	want := map[string]map[string]time.Duration{
		"baseline":  {"security-updates": 14 * 24 * time.Hour},
		"high-risk": {"security-updates": 72 * time.Hour},
	}
	for name, rules := range want {
		p := mustEmbedded(t, name)
		for _, r := range p.Rules {
			g, connected := rules[r.ID]
			if r.GraceConnected != connected || (connected && r.Grace != g) {
				t.Errorf("%s: %s: grace %v connected %v; want connected %v (%v)", name, r.ID, r.Grace, r.GraceConnected, connected, g)
			}
		}
	}
}

func TestParseConnectedGraceErrorHasLine(t *testing.T) {
	doc := `name: mini
version: 1
description: One rule.
rules:
  - id: r
    title: { en: T }
    family: patch_level
    platforms: [linux]
    require: 'true'
    expected: { en: E }
    severity: low
    grace: 3 days connected
    remediation: { en: { linux: fix } }
`
	_, err := Parse("mini.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "mini.yaml:12") || !strings.Contains(err.Error(), `"connected"`) {
		t.Fatalf("error %v; want mini.yaml:12 and the connected form", err)
	}
}

// TestConnectedGrace: a connected-grace rule's deadline is now plus what
// is left of the grace, it is overdue once the connected time used reaches
// the grace, and a paused deadline says so without being overdue.
func TestConnectedGrace(t *testing.T) {
	p := mustEmbedded(t, "high-risk") // security-updates: grace 72h connected
	f := linuxFacts()
	f.PatchLevel.PendingSecurityUpdates = ptr(int32(3))
	since := map[string]time.Time{"security-updates": testNow.Add(-10 * 24 * time.Hour)}
	lastOnline := testNow.Add(-5 * 24 * time.Hour)
	tests := []struct {
		name        string
		used        time.Duration
		paused      map[string]time.Time
		deadline    time.Time
		overdue     bool
		pausedSince *time.Time
	}{
		{"nothing used", 0, nil, testNow.Add(72 * time.Hour), false, nil},
		{"one connected day", 24 * time.Hour, nil, testNow.Add(48 * time.Hour), false, nil},
		{"paused with two days left", 24 * time.Hour, map[string]time.Time{"security-updates": lastOnline}, testNow.Add(48 * time.Hour), false, &lastOnline},
		{"paused, never connected", 0, map[string]time.Time{"security-updates": {}}, testNow.Add(72 * time.Hour), false, nil},
		{"used up exactly", 72 * time.Hour, nil, testNow, true, nil},
		{"used up, paused", 80 * time.Hour, map[string]time.Time{"security-updates": lastOnline}, testNow.Add(-8 * time.Hour), true, &lastOnline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput, FailingSince: since,
				GraceUsed: map[string]time.Duration{"security-updates": tt.used}, Paused: tt.paused})
			got, _ := resultFor(res, "security-updates")
			if got.Status != StatusFail || got.Deadline == nil || !got.GraceConnected {
				t.Fatalf("got %+v, want a connected-grace FAIL with a deadline", got)
			}
			if !got.FailingSince.Equal(since["security-updates"]) {
				t.Errorf("failing since %v; want %v (connected grace keeps it)", got.FailingSince, since["security-updates"])
			}
			if !got.Deadline.Equal(tt.deadline) || got.Overdue != tt.overdue || got.GraceUsed != tt.used {
				t.Errorf("deadline %v overdue %v used %v; want %v, %v, %v", got.Deadline, got.Overdue, got.GraceUsed, tt.deadline, tt.overdue, tt.used)
			}
			if got.DeadlinePaused != (tt.paused != nil) {
				t.Errorf("paused %v; want %v", got.DeadlinePaused, tt.paused != nil)
			}
			if (got.PausedSince == nil) != (tt.pausedSince == nil) || (got.PausedSince != nil && !got.PausedSince.Equal(*tt.pausedSince)) {
				t.Errorf("paused since %v; want %v", got.PausedSince, tt.pausedSince)
			}
			// A wall-clock rule of the same round is untouched by the
			// connected-time options.
			if r, ok := resultFor(res, "restart-after-updates"); ok && (r.GraceConnected || r.DeadlinePaused || r.GraceUsed != 0) {
				t.Errorf("restart-after-updates: %+v carries connected grace", r)
			}
		})
	}
	// A passing rule says its grace is connected but carries no deadline.
	f.PatchLevel.PendingSecurityUpdates = ptr(int32(0))
	got, _ := resultFor(Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput, FailingSince: since,
		GraceUsed: map[string]time.Duration{"security-updates": time.Hour}, Paused: map[string]time.Time{"security-updates": {}}}), "security-updates")
	if got.Status != StatusPass || !got.GraceConnected || got.Deadline != nil || got.DeadlinePaused || got.GraceUsed != 0 {
		t.Errorf("passing rule: %+v", got)
	}
}
