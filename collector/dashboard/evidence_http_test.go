package dashboard_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/store"
)

// TestEvidenceExportHTTP: the evidence downloads need a session; a bad
// period is 400 and an unknown device 404, each with the reason and
// nothing exported; a dashboard without the CA refuses (503) instead of
// writing a file nothing verifies.
func TestEvidenceExportHTTP(t *testing.T) {
	var f *fleet
	f = startFleet(t, func(dc *dashboard.Config) {
		dc.EvidenceCA = func() [][]byte { return evidence.CAChain(f.c.Server().CA()) }
	})
	id := f.devices["lin-bad"]
	anon := newClient(t, f.base)
	if resp, _ := anon.do("GET", "/devices/"+id+"/evidence?from=2026-01-01", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("signed out: %d %s, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := newClient(t, f.base)
	if code, _ := c.login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	for _, x := range []struct {
		path   string
		status int
		reason string
	}{
		{"/devices/" + id + "/evidence", http.StatusBadRequest, "first day"},
		{"/devices/" + id + "/evidence?from=2026-03-02&to=2026-03-01", http.StatusBadRequest, "not before"},
		{"/devices/" + id + "/evidence?from=2026-03-01&to=2999-01-01", http.StatusBadRequest, "in the future"},
		{"/devices/nope/evidence?from=2026-03-01", http.StatusNotFound, "device nope not found"},
		{"/export/evidence?from=March", http.StatusBadRequest, "want a date"},
	} {
		resp, body := c.do("GET", x.path, nil)
		if resp.StatusCode != x.status || !strings.Contains(body, x.reason) || resp.Header.Get("Content-Disposition") != "" {
			t.Errorf("%s: %d %q, want %d with %q and no file", x.path, resp.StatusCode, resp.Header.Get("Content-Disposition"), x.status, x.reason)
		}
	}
	if es, _ := f.st.AuditQuery(t.Context(), store.AuditFilter{Action: "evidence.export"}); len(es) != 0 {
		t.Errorf("refused exports were audited: %+v", es)
	}

	noCA := startFleet(t)
	c2 := newClient(t, noCA.base)
	if code, _ := c2.login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	if resp, body := c2.do("GET", "/export/evidence?from=2026-03-01", nil); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "collector CA") {
		t.Errorf("without the CA: %d, want 503 saying why", resp.StatusCode)
	}
}
