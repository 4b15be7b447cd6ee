package dashboard_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/store"
	ev "github.com/wardhq/ward/evidence"
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

// TestEvidenceExportHTTPLog: with the collector's evidence log, the
// dashboard's download carries its checkpoint and an inclusion proof of
// every report, and verifies.
func TestEvidenceExportHTTPLog(t *testing.T) {
	var f *fleet
	var log atomic.Pointer[evidence.Log]
	f = startFleet(t, func(dc *dashboard.Config) {
		dc.EvidenceCA = func() [][]byte { return evidence.CAChain(f.c.Server().CA()) }
		dc.EvidenceLog = log.Load
	})
	key, cert, err := f.c.Server().CA().LogKey(f.c.DataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	log.Store(evidence.LogFor(f.c.Store(), key, cert))
	id := sealedDevice(t, f, "lap-logged", 3)
	c := newClient(t, f.base)
	if code, _ := c.login("victor", "victor-correct-horse"); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	from := time.Now().UTC().Add(-48 * time.Hour).Format("2006-01-02")
	resp, body := c.do("GET", "/devices/"+id+"/evidence?from="+from, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %s", resp.StatusCode, body)
	}
	file, err := ev.Decode(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if file.Log == nil || file.Log.Checkpoint.Size != 3 || len(file.Log.Inclusions) != 3 {
		t.Fatalf("log = %+v, want a checkpoint of 3 and 3 inclusions", file.Log)
	}
	if res, err := ev.Verify(file, ev.VerifyOptions{}); err != nil {
		t.Errorf("the download does not verify: %v %v", err, res.Problems)
	}
}
