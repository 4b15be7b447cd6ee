package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/evidence/evidencetest"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// write builds a small file (three days, a FAIL on the second) and
// writes it and its CA into a temporary directory.
func write(t *testing.T, tamper func(*evidence.File)) (file, ca string) {
	t.Helper()
	c := evidencetest.NewCA(t, t0.Add(-24*time.Hour*365))
	d := c.Enrol(t, "dev-7", t0.Add(-48*time.Hour))
	for h := -12; h <= 72; h += 12 {
		at := t0.Add(time.Duration(h) * time.Hour)
		d.Report(t, at, evidencetest.LinuxFacts(at, h < 24 || h >= 48), "baseline", 3)
	}
	f := evidencetest.Build(t, c, t0, t0.Add(72*time.Hour), []evidence.Policy{evidencetest.Policy(t, "baseline", 3)}, d)
	if tamper != nil {
		tamper(f)
	}
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := evidence.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	file, ca = filepath.Join(dir, "evidence.json"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, ca
}

func runVerify(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestVerified(t *testing.T) {
	file, ca := write(t, nil)
	code, out, errOut := runVerify(file, "--ca", ca)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"VERIFIED ward-evidence/1: 1 device(s), 8 report(s), 2026-03-01T00:00:00Z to 2026-03-04T00:00:00Z",
		"trust: the CA given: ",
		"  disk-encrypted: FAIL from 2026-03-02T00:00:00Z to 2026-03-03T00:00:00Z",
		"  nothing unobserved",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Flags may come first, and --reports lists what is signed beside
	// what is asserted.
	code, out, _ = runVerify("--reports", file)
	if code != 0 || !strings.Contains(out, "trust: the file's own CA chain") ||
		!regexp.MustCompile(`devices\[0\]\.reports\[2\] \(epoch 1, sequence 3\): collected 2026-03-01T12:00:00Z, policy baseline v3, key [0-9a-f]{16} \(signed\); observed 2026-03-01T12:00:00Z, received 2026-03-01T12:01:00Z \(the collector's word\)`).MatchString(out) {
		t.Errorf("exit %d, --reports output:\n%s", code, out)
	}
}

func TestNotVerified(t *testing.T) {
	file, ca := write(t, func(f *evidence.File) {
		s := f.Devices[0].Reports[4].Signature
		s[len(s)-1] ^= 0x40
	})
	code, out, _ := runVerify(file, "--ca", ca)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	want := "NOT VERIFIED: 1 problem(s)\n  devices[0].reports[4] (epoch 1, sequence 5): signature: signature does not verify\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("output:\n%s\nwant it to start with:\n%s", out, want)
	}

	code, out, _ = runVerify(file, "--ca", ca, "--json")
	var res struct {
		Verified bool
		Problems []evidence.Problem
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if res.Verified || len(res.Problems) != 1 || res.Problems[0].Place != "devices[0].reports[4] (epoch 1, sequence 5)" {
		t.Errorf("JSON result %+v", res)
	}
}

func TestUsageAndUnreadable(t *testing.T) {
	file, _ := write(t, nil)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	trailing := filepath.Join(t.TempDir(), "trailing.json")
	if err := os.WriteFile(trailing, append(data, []byte("{}\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(data), "\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: ward-verify FILE"},
		{[]string{file, file}, "usage: ward-verify FILE"},
		{[]string{"--nope", file}, "flag provided but not defined"},
		{[]string{filepath.Join(t.TempDir(), "absent.json")}, "no such file"},
		{[]string{file, "--ca", file}, "no PEM certificate"},
		{[]string{trailing}, "trailing.json: evidence file: " + itoa(lines+1) + ":1: data after the document"},
	} {
		code, out, errOut := runVerify(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q (stdout %q), want 2 and %q", tc.args, code, errOut, out, tc.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestStandsAlone: the verifier an auditor runs needs no collector,
// agent, database or network code.
func TestStandsAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	bad := regexp.MustCompile(`^(github\.com/wardhq/ward/(collector|agent)(/.*)?|database/.*|net/http(/.*)?|google\.golang\.org/grpc(/.*)?|.*sqlite.*|.*pgx.*)$`)
	for _, p := range strings.Fields(string(out)) {
		if bad.MatchString(p) {
			t.Errorf("ward-verify depends on %s", p)
		}
	}
	if !strings.Contains(string(out), "github.com/wardhq/ward/evidence\n") {
		t.Errorf("go list -deps does not list package evidence:\n%s", out)
	}
}

func writeFile(t *testing.T, dir, name string, f *evidence.File) string {
	t.Helper()
	var buf bytes.Buffer
	if err := evidence.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPrevious: two exports of a collector's log; the second verifies
// --previous the first (its consistency proof starts at the first's
// checkpoint) and the first does not --previous the second; a file
// without a log verifies with the note that it cannot show later
// reports exist.
func TestPrevious(t *testing.T) {
	c := evidencetest.NewCA(t, t0.Add(-24*time.Hour*365))
	d := c.Enrol(t, "dev-7", t0.Add(-48*time.Hour))
	log := c.NewLog(t, t0.Add(-48*time.Hour))
	pols := []evidence.Policy{evidencetest.Policy(t, "baseline", 3)}
	for h := -12; h <= 24; h += 12 {
		at := t0.Add(time.Duration(h) * time.Hour)
		d.Report(t, at, evidencetest.LinuxFacts(at, true), "baseline", 3)
	}
	f1 := evidencetest.Build(t, c, t0, t0.Add(24*time.Hour), pols, d)
	bare := writeFile(t, t.TempDir(), "bare.json", f1)
	log.Attach(t, f1, t0.Add(25*time.Hour), nil)
	for h := 36; h <= 72; h += 12 {
		at := t0.Add(time.Duration(h) * time.Hour)
		d.Report(t, at, evidencetest.LinuxFacts(at, true), "baseline", 3)
	}
	f2 := evidencetest.Build(t, c, t0, t0.Add(72*time.Hour), pols, d)
	log.Attach(t, f2, t0.Add(73*time.Hour), &f1.Log.Checkpoint)
	dir := t.TempDir()
	old, cur := writeFile(t, dir, "old.json", f1), writeFile(t, dir, "new.json", f2)

	code, out, errOut := runVerify(cur, "--previous", old)
	if code != 0 || !regexp.MustCompile(`log: checkpoint of 8 report\(s\) at 2026-03-04T01:00:00Z, root [0-9a-f]{64}, extends the log of 4 report\(s\) with root [0-9a-f]{64}\n`).MatchString(out) {
		t.Errorf("new --previous old: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runVerify(old, "--previous", cur)
	if code != 1 || !strings.Contains(out, "log.consistency: none: the file does not prove it extends the previous file's log") {
		t.Errorf("old --previous new: exit %d, want 1\n%s", code, out)
	}
	code, out, _ = runVerify(bare)
	if code != 0 || !strings.Contains(out, "log: no log: the file cannot show that reports after the last one exist") {
		t.Errorf("a file without a log: exit %d, want 0 and the note\n%s", code, out)
	}
	code, out, _ = runVerify(cur, "--previous", bare)
	if code != 1 || !strings.Contains(out, "previous.log: the previous file has no log") {
		t.Errorf("--previous a file without a log: exit %d, want 1\n%s", code, out)
	}
	code, _, errOut = runVerify(cur, "--previous", filepath.Join(dir, "absent.json"))
	if code != 2 || !strings.Contains(errOut, "--previous: ") {
		t.Errorf("--previous absent: exit %d, stderr %q", code, errOut)
	}
}
