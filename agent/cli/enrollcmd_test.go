package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/collector/server/servertest"
)

// openssl is a "sha256:<hex>" fingerprint as openssl x509 -fingerprint
// -sha256 prints it: "sha256 Fingerprint=AB:CD:…".
func openssl(fp string) string {
	h := strings.ToUpper(strings.TrimPrefix(fp, "sha256:"))
	var pairs []string
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return strings.Join(pairs, ":")
}

// TestEnrollFingerprintForms: the colon form openssl prints and the bare
// hex enrol as well as ward-collector's sha256:HEX, and the success says
// what to do next.
func TestEnrollFingerprintForms(t *testing.T) {
	c := servertest.Start(t)
	for _, fp := range []string{openssl(c.Fingerprint), "SHA256 Fingerprint=" + openssl(c.Fingerprint), strings.TrimPrefix(c.Fingerprint, "sha256:")} {
		dir := filepath.Join(t.TempDir(), "state")
		code, stdout, stderr := runWith(t, replayed(t), "enroll", "--collector", c.Addr, "--token", c.Token("staff", 1, time.Hour), "--ca-fingerprint", fp, "--state", dir)
		if code != 0 || !strings.Contains(stdout, "enrolled as dev_") {
			t.Fatalf("enroll --ca-fingerprint %q = %d, %q, %q", fp, code, stdout, stderr)
		}
		if !strings.Contains(stdout, "next: run ward-agent install --state "+dir) || !strings.Contains(stdout, "ward-agent run --state "+dir) {
			t.Errorf("enroll does not say what comes next:\n%s", stdout)
		}
		if _, err := enroll.Load(dir); err != nil {
			t.Errorf("no identity after enrolling with %q: %v", fp, err)
		}
	}
}

// TestEnrollBadInputExits3: a malformed fingerprint or token, a token the
// collector refuses and a CA that does not match are the caller's to fix:
// exit 3, what was wrong and what to do, nothing written.
func TestEnrollBadInputExits3(t *testing.T) {
	c := servertest.Start(t)
	other := servertest.Start(t)
	good := c.Token("staff", 5, time.Hour)
	wellFormedUnknown := "wet_" + strings.Repeat("a", 52)
	colons := openssl(c.Fingerprint)
	for _, tc := range []struct {
		name, token, fp, want string
	}{
		{"fingerprint cut short", good, colons[:len(colons)-3], "want sha256:"},
		{"fingerprint of another hash", good, "sha1:" + strings.Repeat("ab", 20), "want sha256:"},
		{"stray colons", good, strings.Replace(colons, ":", "::", 1), "colon-separated pairs"},
		{"not a token", "hello", c.Fingerprint, "not a Ward token"},
		{"token cut short", good[:30], c.Fingerprint, "cut short"},
		{"token with a space inside", good[:20] + " " + good[21:], c.Fingerprint, "not a token character"},
		{"token the collector does not know", wellFormedUnknown, c.Fingerprint, "ask for a new one"},
		{"another collector's CA", good, other.Fingerprint, "ward-collector ca show"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			code, stdout, stderr := runWith(t, replayed(t), "enroll", "--collector", c.Addr, "--token", tc.token, "--ca-fingerprint", tc.fp, "--state", dir)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, ExitUsage, tc.want)
			}
			if strings.Contains(stderr, good[4:]) {
				t.Errorf("the token's secret is in the error: %q", stderr)
			}
			if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				t.Errorf("state directory holds %d entries after a refusal", len(entries))
			}
		})
	}
	// The good token was never consumed by the refusals before it reached
	// the collector: it still enrols.
	dir := filepath.Join(t.TempDir(), "state")
	if code, _, stderr := runWith(t, replayed(t), "enroll", "--collector", c.Addr, "--token", good, "--ca-fingerprint", colons, "--state", dir); code != 0 {
		t.Errorf("the good token after the refusals: %d %s", code, stderr)
	}
}

// Typos exit 3 and say what was meant.
func TestSuggestions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"enrol"}, "did you mean enroll?"},
		{[]string{"statsu"}, "did you mean status?"},
		{[]string{"enroll", "--ca-fingerprnt", "x"}, "did you mean --ca-fingerprint?"},
	} {
		code, stdout, stderr := runWith(t, replayed(t), tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, ExitUsage, tc.want)
		}
	}
}
