package dashboard_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/dashboard"
)

// TestExportOverHTTP: the dashboard's /export is the CLI's export: the
// dated file name, the metadata, the JSON object, and a 400 (not an empty
// file) for an as_of before the first report or in the future.
func TestExportOverHTTP(t *testing.T) {
	before := time.Now().UTC().Add(-time.Hour)
	f := startFleetServer(t, nil, func(c *dashboard.Config) {
		c.Collector = dashboard.ExportCollector{Host: "ward.example.org", Version: "9.9.9"}
	})
	viewer := newClient(t, f.base)
	if code, _ := viewer.login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	today := time.Now().UTC().Format("2006-01-02")

	// Without a format: the form.
	if resp, body := viewer.do("GET", "/export", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="export"`) || !strings.Contains(body, `name="as_of"`) {
		t.Errorf("GET /export: %d\n%.300s", resp.StatusCode, body)
	}

	resp, body := viewer.do("GET", "/export?format=json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export json: %d %s", resp.StatusCode, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="ward-export-`+today+`.json"` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	var e dashboard.Export
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("export json: %v\n%s", err, body)
	}
	if e.Metadata.Collector.Host != "ward.example.org" || e.Metadata.Rows != len(e.Rows) || e.Metadata.Devices != len(seed) || !e.Metadata.AsOf.Equal(e.Metadata.GeneratedAt) {
		t.Errorf("metadata = %+v (%d rows)", e.Metadata, len(e.Rows))
	}
	for _, r := range e.Rows {
		if r.PolicyName != "baseline" || r.PolicyVersion != 1 || r.Severity == "" || r.DeviceStatus != dashboard.ExportFresh || r.Verdict == "" || r.Overdue == nil {
			t.Errorf("row %+v does not stand alone", r)
		}
	}

	asOf := time.Now().UTC().Format(time.RFC3339Nano)
	resp, body = viewer.do("GET", "/export?format=csv&as_of="+asOf, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "# "+dashboard.ExportFormat) {
		t.Fatalf("export csv as of %s: %d %.200s", asOf, resp.StatusCode, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="ward-export-` + today + `-as-of-\d{4}-\d\d-\d\dT\d{6}Z\.csv"$`).MatchString(cd) {
		t.Errorf("as-of Content-Disposition = %q", cd)
	}

	for _, q := range []string{"as_of=" + before.Format(time.RFC3339), "as_of=2001-01-01", "as_of=2999-01-01", "as_of=yesterday"} {
		resp, body := viewer.do("GET", "/export?format=csv&"+q, nil)
		if resp.StatusCode != http.StatusBadRequest || strings.HasPrefix(body, "#") {
			t.Errorf("export ?%s: %d %q, want 400 with a reason", q, resp.StatusCode, body)
		}
	}
	if _, body := viewer.do("GET", "/export?format=csv&as_of=2001-01-01", nil); !strings.Contains(body, "no report had been collected") {
		t.Errorf("before the first report, the reason: %q", body)
	}
}
