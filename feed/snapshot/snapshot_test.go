package snapshot_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/snapshot"
)

// TestSnapshot: the embedded feed decodes strictly, validates, is serial
// 202608221855 (data/SOURCES.md) and holds the lines devices are judged
// by, with the dates endoflife.date and SOFA gave.
func TestSnapshot(t *testing.T) {
	b, err := snapshot.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := feed.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := feed.Validate(decoded); err != nil {
		t.Fatal(err)
	}
	f, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	if f.Serial != 202608221855 || decoded.Serial != f.Serial {
		t.Errorf("serial %d (decoded %d), want 202608221855", f.Serial, decoded.Serial)
	}
	if !f.GeneratedAt.Equal(time.Date(2026, 8, 22, 18, 55, 51, 0, time.UTC)) || !f.ExpiresAt.Equal(time.Date(2027, 2, 18, 18, 55, 51, 0, time.UTC)) {
		t.Errorf("generated %s, expires %s", f.GeneratedAt, f.ExpiresAt)
	}
	if len(f.Lines) != 179 || len(f.Sources) != 11 {
		t.Errorf("%d lines, %d sources; data/SOURCES.md says 179 and 11", len(f.Lines), len(f.Sources))
	}
	lines := map[string]feed.Line{}
	for _, l := range f.Lines {
		lines[l.ID] = l
	}
	date := func(s string) feed.Date {
		d, err := feed.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if l, ok := lines["macos-15"]; !ok || l.Latest != "15.7.9" || len(l.Releases) != 22 || !l.EOL.IsZero() || !l.Releases[21].Exploited || l.Releases[21].Released != date("2026-08-06") {
		t.Errorf("macos-15: %+v", l)
	}
	if l, ok := lines["windows-10-22h2-home-pro"]; !ok || l.Build != 19045 || l.Edition != feed.EditionHomePro || l.EOL != date("2025-10-14") {
		t.Errorf("windows-10-22h2-home-pro: %+v", l)
	}
	if l, ok := lines["ubuntu-22.04"]; !ok || l.EOL != date("2027-04-01") || l.ESMEOL != date("2032-04-09") {
		t.Errorf("ubuntu-22.04: %+v", l)
	}
	if l, ok := lines["rhel-9"]; !ok || l.Latest != "9.8" {
		t.Errorf("rhel-9: %+v", l)
	}
	// Feed returns the same, shared, value each time.
	again, _ := snapshot.Feed()
	if again != f {
		t.Error("Feed decoded the snapshot again")
	}
}
