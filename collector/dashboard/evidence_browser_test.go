package dashboard_test

import (
	"context"
	"crypto"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/store"
	ev "github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestEvidenceExportInBrowser: a viewer fills the device page's evidence
// form and the click downloads the device's file (ward-evidence/1, its
// sealed reports); the exports page's fleet form downloads the fleet's;
// both exports are in the audit log under the viewer's name; a reversed
// period comes back as the form with the reason.
func TestEvidenceExportInBrowser(t *testing.T) {
	ctx := browser(t)
	var f *fleet
	f = startFleet(t, func(dc *dashboard.Config) {
		dc.EvidenceCA = func() [][]byte { return evidence.CAChain(f.c.Server().CA()) }
	})
	id := sealedDevice(t, f, "lap-sealed", 2)
	dir := t.TempDir()
	downloads := watchDownloads(ctx)
	signIn(t, ctx, f.base, "victor")
	run(t, ctx, "allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		yes := true
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: &yes})
		return err
	}))
	from := time.Now().UTC().AddDate(0, 0, -2).Format("2006-01-02")
	run(t, ctx, "device page",
		chromedp.Navigate(f.base+"/devices/"+id),
		chromedp.WaitVisible(chromedp.CSS("#evidence")),
		chromedp.SetValue(chromedp.CSS("#ev-from"), from),
	)
	screenshot(t, ctx, "device-evidence")
	run(t, ctx, "download", chromedp.Click(chromedp.CSS("#ev-download")))
	name := waitDownload(t, downloads)
	if want := "ward-evidence-" + id + "-" + from + "T000000Z-to-"; !strings.HasPrefix(name, want) || !strings.HasSuffix(name, ".json") {
		t.Errorf("downloaded %s, want %s….json", name, want)
	}
	file := readFile(t, filepath.Join(dir, name))
	if file.Format != "ward-evidence/1" || len(file.Devices) != 1 || file.Devices[0].DeviceID != id || len(file.Devices[0].Reports) != 2 {
		t.Fatalf("device file: format %q, %d devices", file.Format, len(file.Devices))
	}

	run(t, ctx, "fleet form",
		chromedp.Click(chromedp.Search(`//nav/a[text()="Export"]`)),
		chromedp.WaitVisible(chromedp.CSS("#evidence")),
		chromedp.SetValue(chromedp.CSS("#ev-from"), from),
		chromedp.Click(chromedp.CSS("#ev-download")),
	)
	name = waitDownload(t, downloads)
	fleetFile := readFile(t, filepath.Join(dir, name))
	if fleetFile.Format != "ward-evidence/1" || !strings.Contains(name, "fleet") || len(fleetFile.Devices) < 2 {
		t.Errorf("fleet file %s: format %q, %d devices", name, fleetFile.Format, len(fleetFile.Devices))
	}

	run(t, ctx, "reversed period",
		chromedp.Navigate(f.base+"/export"),
		chromedp.WaitVisible(chromedp.CSS("#evidence")),
		chromedp.SetValue(chromedp.CSS("#ev-from"), "2026-03-02"),
		chromedp.SetValue(chromedp.CSS("#ev-to"), "2026-03-01"),
		clickLoads("#ev-download", "#error"),
	)
	if s := text(t, ctx, "#error"); !strings.Contains(s, "not before") {
		t.Errorf("error = %q", s)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#ev-from"))); err != nil || v != "2026-03-02" {
		t.Errorf("from after the refusal = %q (%v)", v, err)
	}

	es, err := f.st.AuditQuery(context.Background(), store.AuditFilter{Action: "evidence.export"})
	if err != nil || len(es) != 2 {
		t.Fatalf("audit: %d entries (%v), want 2", len(es), err)
	}
	// Newest first: the fleet's, then the device's.
	if es[0].Target != "fleet" || es[1].Target != id || es[0].Actor != "victor" || es[1].Actor != "victor" || !strings.Contains(es[1].Detail, "2 reports") {
		t.Errorf("audit = %+v", es)
	}
}

// download is a finished (or canceled) download.
type download struct {
	name string
	ok   bool
	err  error
}

// watchDownloads reports each download the browser finishes, with the
// file name the server suggested (the name it is saved under).
func watchDownloads(ctx context.Context) <-chan download {
	ch := make(chan download, 4)
	names := make(chan string, 4)
	go func() {
		for e, err := range chromedp.BrowserEvents(ctx, cdpbrowser.DownloadWillBegin) {
			if err != nil {
				return
			}
			names <- e.SuggestedFilename
		}
	}()
	go func() {
		for e, err := range chromedp.BrowserEvents(ctx, cdpbrowser.DownloadProgress) {
			if err != nil {
				ch <- download{err: err}
				return
			}
			switch e.State {
			case cdpbrowser.DownloadProgressStateCompleted:
				ch <- download{name: <-names, ok: true}
			case cdpbrowser.DownloadProgressStateCanceled:
				ch <- download{name: <-names}
			}
		}
	}()
	return ch
}

// waitDownload waits for the next download and returns its file name.
func waitDownload(t *testing.T, ch <-chan download) string {
	t.Helper()
	select {
	case d := <-ch:
		if d.err != nil || !d.ok {
			t.Fatalf("download %q: ok %v, %v", d.name, d.ok, d.err)
		}
		return d.name
	case <-time.After(30 * time.Second):
		t.Fatal("no download in 30s")
	}
	return ""
}

func readFile(t *testing.T, path string) *ev.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ev.File
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &f
}

// sealedDevice enrols a device in f and sends n reports sealed by its key,
// an hour apart ending now; it returns the device id.
func sealedDevice(t *testing.T, f *fleet, host string, n int) string {
	t.Helper()
	ctx := context.Background()
	c := f.c
	resp, tc, err := c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: host, Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: host,
	})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.DeviceId
	prev := ev.Genesis(id, resp.Epoch, tc.Certificate[0])
	client := wardv1grpc.NewAgentServiceClient(c.Dial(&tc))
	if _, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{}); err != nil {
		t.Fatal(err)
	}
	yes := true
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	for i := range n {
		at := time.Now().Add(-time.Duration(n-1-i) * time.Hour)
		r := &wardv1.Report{Epoch: resp.Epoch, Sequence: uint64(i + 1), CollectedAt: timestamppb.New(at), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 3, Facts: &wardv1.Facts{
			CollectedAt:    timestamppb.New(at),
			Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
			DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &yes}}},
		}}
		hash, err := ev.Seal(tc.PrivateKey.(crypto.Signer), id, r, prev, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Report(ctx, &wardv1.ReportRequest{Report: r}); err != nil {
			t.Fatalf("report %d: %v", i+1, err)
		}
		prev = hash
	}
	return id
}
