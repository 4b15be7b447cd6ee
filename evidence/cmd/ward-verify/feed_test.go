package main

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/evidence/evidencetest"
)

// writeFeedFile is a day of a Debian laptop under the feedcheck policy,
// Debian 12 then 11, judged with the test feed the file carries.
func writeFeedFile(t *testing.T, tamper func(*evidence.File)) (file, ca string) {
	t.Helper()
	at0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := evidencetest.NewCA(t, at0.Add(-24*time.Hour*365))
	d := c.Enrol(t, "dev-9", at0.Add(-24*time.Hour))
	fd := evidencetest.Feed(t)
	for i, v := range []string{"12", "11"} {
		at := at0.Add(time.Duration(i) * 12 * time.Hour)
		facts := evidencetest.LinuxFacts(at, true)
		facts.Os.Version = v
		d.Report(t, at, facts, "feedcheck", 1).FeedSerial = fd.Serial
	}
	f := evidencetest.Build(t, c, at0, at0.Add(24*time.Hour), []evidence.Policy{evidencetest.FeedPolicy()}, d)
	f.Feeds = []evidence.Feed{evidencetest.FileFeed(t)}
	evidencetest.Resummarize(t, f)
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

func TestFeeds(t *testing.T) {
	file, ca := writeFeedFile(t, nil)
	code, out, errOut := runVerify(file, "--ca", ca, "--reports")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"release feeds: 1\n  feeds[0] (serial 202611200000): generated 2026-11-20T00:00:00Z, expires 2027-05-19T00:00:00Z, judged 2 report(s)\n",
		"  os-supported: PASS from 2026-12-01T00:00:00Z to 2026-12-01T12:00:00Z",
		"  os-supported: FAIL from 2026-12-01T12:00:00Z to 2026-12-02T00:00:00Z",
		", judged by release feed 202611200000 (the collector's word)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A feed changed after the export: not verified, the feed named
	// first, and its rule UNKNOWN (so the summary differs too).
	file, ca = writeFeedFile(t, func(f *evidence.File) {
		f.Feeds[0].Document = strings.Replace(f.Feeds[0].Document, `"2028-06-30"`, `"2026-06-30"`, 1)
	})
	code, out, _ = runVerify(file, "--ca", ca)
	if want := "NOT VERIFIED: 2 problem(s)\n  feeds[0] (serial 202611200000): release feed: the document does not hash to its sha256"; code != 1 || !strings.HasPrefix(out, want) {
		t.Errorf("exit %d, output:\n%s\nwant it to start with:\n%s", code, out, want)
	}
	if !strings.Contains(out, "release feeds: 1\n") || strings.Contains(out, "os-supported: PASS") {
		t.Errorf("a tampered feed's file shows:\n%s", out)
	}

	// Without the feed: verified, the rule UNKNOWN with the reason.
	file, ca = writeFeedFile(t, func(f *evidence.File) {
		f.Feeds = nil
		evidencetest.Resummarize(t, f)
	})
	code, out, _ = runVerify(file, "--ca", ca)
	for _, want := range []string{
		"release feeds: 0\n",
		"  os-supported: UNKNOWN from 2026-12-01T00:00:00Z to 2026-12-02T00:00:00Z",
		"rules judged by the release feed UNKNOWN from 2026-12-01T00:00:00Z to 2026-12-02T00:00:00Z: release feed 202611200000 is not in the file",
		"feeds: release feed 202611200000, which 2 report(s) were judged by, is not in the file",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}
