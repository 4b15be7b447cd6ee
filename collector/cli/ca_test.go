package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/pki"
)

// caShowDoc is ca show --json.
type caShowDoc struct {
	CA struct {
		Fingerprint string    `json:"fingerprint"`
		Subject     string    `json:"subject"`
		NotAfter    time.Time `json:"not_after"`
	} `json:"ca"`
	Previous []struct {
		Fingerprint string    `json:"fingerprint"`
		NotAfter    time.Time `json:"not_after"`
		Expired     bool      `json:"expired"`
	} `json:"previous"`
	Cross []struct {
		Fingerprint string `json:"fingerprint"`
		Issuer      string `json:"issuer"`
	} `json:"cross"`
}

func caShow(t *testing.T, dir, now string) caShowDoc {
	t.Helper()
	out, stderr, code := runErr("ca", "show", "--json", "--data", dir, "--now", now)
	if code != 0 {
		t.Fatalf("ca show: exit %d: %s", code, stderr)
	}
	var doc caShowDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("ca show --json: %v\n%s", err, out)
	}
	return doc
}

func TestCARotateThenShow(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old, _, err := pki.LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	before := caShow(t, dir, "2026-12-01T13:00:00Z")
	if before.CA.Fingerprint != old.Fingerprint() || len(before.Previous) != 0 || len(before.Cross) != 0 {
		t.Fatalf("ca show before rotating: %+v", before)
	}

	out, stderr, code := runErr("ca", "rotate", "--data", dir, "--now", "2027-01-01T00:00:00Z", "--lifetime", "43800h")
	if code != 0 {
		t.Fatalf("ca rotate: exit %d: %s", code, stderr)
	}
	ca, err := pki.Load(dir, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if ca.Fingerprint() == old.Fingerprint() {
		t.Fatal("ca rotate kept the CA")
	}
	for _, want := range []string{
		"new CA fingerprint: " + ca.Fingerprint(),
		"previous CA: " + old.Fingerprint(),
		"restart the collector",
		"--ca-fingerprint " + ca.Fingerprint(),
		"within 2/3 of its lifetime (60 days at the default 90)",
		"the previous CA stays trusted until its last device certificate expired",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ca rotate's output does not say %q:\n%s", want, out)
		}
	}
	if want := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Add(43800 * time.Hour); !ca.Cert.NotAfter.Equal(want) {
		t.Errorf("--lifetime 43800h: the new CA ends %s, want %s", ca.Cert.NotAfter, want)
	}

	after := caShow(t, dir, "2027-01-02T00:00:00Z")
	if after.CA.Fingerprint != ca.Fingerprint() || after.CA.Subject != ca.Cert.Subject.String() {
		t.Errorf("ca show: CA %s %q, want %s", after.CA.Fingerprint, after.CA.Subject, ca.Fingerprint())
	}
	if len(after.Previous) != 1 || after.Previous[0].Fingerprint != old.Fingerprint() || !after.Previous[0].NotAfter.Equal(old.Cert.NotAfter) || after.Previous[0].Expired {
		t.Errorf("ca show: previous %+v, want the old CA, not expired", after.Previous)
	}
	if len(after.Cross) != 1 || after.Cross[0].Fingerprint != pki.Fingerprint(ca.Cross[0].Raw) || after.Cross[0].Issuer != old.Cert.Subject.String() {
		t.Errorf("ca show: cross %+v, want one signed by %q", after.Cross, old.Cert.Subject)
	}
	text, _, code := runErr("ca", "show", "--data", dir, "--now", "2027-01-02T00:00:00Z")
	if code != 0 || !strings.Contains(text, "CA fingerprint: "+ca.Fingerprint()) || !strings.Contains(text, old.Fingerprint()) || !strings.Contains(text, "signed by "+old.Cert.Subject.String()) {
		t.Errorf("ca show (text): exit %d\n%s", code, text)
	}

	// Again within a device certificate lifetime: refused, unchanged.
	_, stderr, code = runErr("ca", "rotate", "--data", dir, "--now", "2027-02-01T00:00:00Z")
	if code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("second rotation within 90 days: exit %d, %q; want 1 and the way out", code, stderr)
	}
	if again := caShow(t, dir, "2027-02-01T00:00:00Z"); again.CA.Fingerprint != ca.Fingerprint() {
		t.Error("the refused rotation changed the CA")
	}
	if _, stderr, code = runErr("ca", "rotate", "--data", dir, "--now", "2027-02-01T00:00:00Z", "--force"); code != 0 {
		t.Errorf("--force: exit %d: %s", code, stderr)
	}
	if forced := caShow(t, dir, "2027-02-01T00:00:00Z"); forced.CA.Fingerprint == ca.Fingerprint() || len(forced.Previous) != 2 {
		t.Errorf("forced rotation: CA %s, %d previous; want a new CA and both earlier ones", forced.CA.Fingerprint, len(forced.Previous))
	}
}

func TestCARotateInputErrors(t *testing.T) {
	empty := t.TempDir()
	for _, args := range [][]string{
		{"ca", "rotate", "--data", empty},
		{"ca", "show", "--data", empty},
	} {
		_, stderr, code := runErr(args...)
		if code != 3 || !strings.Contains(stderr, "no collector CA") {
			t.Errorf("%v without a CA: exit %d, %q; want 3", args, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, "pki", "ca.crt")); !os.IsNotExist(err) {
		t.Errorf("ca on an empty data dir created a CA: %v", err)
	}
	dir := t.TempDir()
	if _, _, err := pki.LoadOrCreate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"0s", "-1h", "24h"} {
		if _, stderr, code := runErr("ca", "rotate", "--data", dir, "--lifetime", l); code != 3 || !strings.Contains(stderr, "--lifetime") {
			t.Errorf("--lifetime %s: exit %d, %q; want 3", l, code, stderr)
		}
	}
}
