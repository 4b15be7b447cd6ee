package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/collector/loadgen"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--mode", "sometimes", "--ca-fingerprint", "sha256:00", "--token", "t"},
		{"--token", "t"},
		{"--ca-fingerprint", "sha256:00"},
		{"--devices"},
		{"--seal=sometimes", "--ca-fingerprint", "sha256:00", "--token", "t"},
		{"extra", "--token", "t"},
		{"table"},
	} {
		var out, errs bytes.Buffer
		if code := run(args, &out, &errs); code != 2 || errs.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs.String())
		}
	}
}

// TestTable: the table subcommand reads --json summaries back.
func TestTable(t *testing.T) {
	s := loadgen.Summary{
		Policy:    "baseline v1",
		Enrolment: loadgen.EnrollResult{Devices: 10, Enrolled: 10, Seconds: 0.5, PerSec: 20},
		Ward:      &loadgen.RunResult{Target: "ward", Mode: loadgen.Fresh, Sealed: true, Devices: 10, PerSec: 123.4, P99ms: 56.7, BytesPerReport: 7890, Errors: map[string]int64{"Unavailable": 2}},
		Ceiling:   &loadgen.RunResult{Target: "ceiling", Mode: loadgen.Fresh, Devices: 10, PerSec: 246.8},
		Ratio:     0.5,
		Verify:    &loadgen.Verification{Acknowledged: 41, Stored: 41, OK: true},
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := run([]string{"table", f}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	// The run went sealed, the ceiling's (no Sealed) not.
	if !strings.Contains(out.String(), "ward  fresh     yes") || !strings.Contains(out.String(), "ceiling  fresh      no") {
		t.Errorf("table does not say which run was sealed:\n%s", out.String())
	}
	for _, want := range []string{"123", "56.7", "7890", "Unavailable 2", "50.0 %", "41 = 41", "fresh flat out", "baseline v1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
