package dashboard_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wardhq/ward/collector/token"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func TestLikelyDuplicateRetire(t *testing.T) {
	ctx := context.Background()
	f := startFleet(t)
	old := f.devices["win-bad"]
	// The same machine enrolled again without a proof (a re-install that
	// lost its state): a new device with the same machine id and group.
	dup, _ := f.c.Enroll(ctx, f.c.Token("field", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: "win-bad", Platform: "windows", OsName: "Windows 11 Pro", OsVersion: "1", Architecture: "amd64", AgentVersion: "test", MachineId: "win-bad",
	})
	if dup == old {
		t.Fatal("enrolment by machine id re-bound the device")
	}
	before, err := f.st.FleetCounts(ctx, time.Now(), staleAfter)
	if err != nil {
		t.Fatal(err)
	}

	viewer := newClient(t, f.base)
	_, vcsrf := viewer.login("victor", "victor-correct-horse")
	_, page := viewer.do("GET", "/devices/"+dup, nil)
	if !strings.Contains(page, "Likely duplicate") || !strings.Contains(page, old) {
		t.Errorf("viewer's device page lacks the likely-duplicate note naming %s", old)
	}
	if strings.Contains(page, "/retire") {
		t.Error("viewer sees a retire button")
	}
	if resp, _ := viewer.do("POST", "/devices/"+old+"/retire", url.Values{"csrf": {vcsrf}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer POST retire: %d, want 403", resp.StatusCode)
	}

	admin := newClient(t, f.base)
	_, csrf := admin.login("amina", "amina-correct-horse")
	_, page = admin.do("GET", "/devices/"+dup, nil)
	if !strings.Contains(page, `action="/devices/`+old+`/retire"`) || !strings.Contains(page, `action="/devices/`+dup+`/retire"`) {
		t.Fatalf("admin's device page lacks the retire buttons:\n%s", page)
	}
	if _, page := admin.do("GET", "/devices/"+f.devices["win-ok"], nil); strings.Contains(page, "Likely duplicate") {
		t.Error("a device without duplicates shows the note")
	}
	if resp, _ := admin.do("POST", "/devices/"+old+"/retire", url.Values{"from": {dup}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("retire without CSRF token: %d, want 403", resp.StatusCode)
	}
	if d, _ := f.st.Device(ctx, old); d.Revoked() {
		t.Fatal("a POST without CSRF token retired the device")
	}
	resp, _ := admin.do("POST", "/devices/"+old+"/retire", url.Values{"csrf": {csrf}, "from": {dup}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/devices/"+dup+"?retired="+old {
		t.Fatalf("retire: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	d, err := f.st.Device(ctx, old)
	if err != nil || !d.Revoked() {
		t.Fatalf("retired device = %+v, %v", d, err)
	}
	if r, _ := f.st.SerialRevoked(ctx, d.CertSerial); !r {
		t.Error("retired device's certificate not revoked")
	}
	if len(f.c.Reports(old)) != 1 {
		t.Error("retiring lost the device's history")
	}
	after, _ := f.st.FleetCounts(ctx, time.Now(), staleAfter)
	if after.Devices != before.Devices-1 {
		t.Errorf("fleet devices %d → %d, want one fewer", before.Devices, after.Devices)
	}
	_, page = admin.do("GET", "/devices/"+dup+"?retired="+old, nil)
	if strings.Contains(page, "Likely duplicate") || !strings.Contains(page, "Retired device "+old) {
		t.Errorf("page after retiring: note still shown or no notice")
	}
	if sets, _ := f.st.Duplicates(ctx); len(sets) != 0 {
		t.Errorf("duplicates after retiring = %+v", sets)
	}
	if es, _ := f.st.Audit(ctx, 50); !hasAction(es, "device.retire") || !hasAction(es, "device.duplicate") {
		t.Errorf("audit lacks device.retire or device.duplicate: %+v", es)
	}
	if _, _, err := token.CreateRebind(ctx, f.c.Store(), dup, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, page := admin.do("GET", "/tokens", nil); !strings.Contains(page, "re-binds <a href=\"/devices/"+dup+"\">") {
		t.Error("tokens page does not say which device a re-bind token is for")
	}
	if resp, _ := admin.do("POST", "/devices/dev_nope/retire", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("retire unknown device: %d, want 404", resp.StatusCode)
	}
}

func TestRetireDuplicateInBrowser(t *testing.T) {
	ctx := browser(t)
	f := startFleet(t)
	old := f.devices["mac-ok"]
	dup, _ := f.c.Enroll(context.Background(), f.c.Token("field", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: "mac-ok", Platform: "darwin", OsName: "macOS", OsVersion: "1", Architecture: "arm64", AgentVersion: "test", MachineId: "mac-ok",
	})
	run(t, ctx, "sign in and retire the older device",
		chromedp.Navigate(f.base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "amina"),
		chromedp.SendKeys(chromedp.CSS("#password"), "amina-correct-horse"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#counts")),
		chromedp.Navigate(f.base+"/devices/"+dup),
		chromedp.WaitVisible(chromedp.CSS("#duplicates")),
		chromedp.Click(chromedp.CSS("#retire-"+old)),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	if s := text(t, ctx, "#notice"); !strings.Contains(s, "Retired device "+old) {
		t.Errorf("notice = %q", s)
	}
	if d, err := f.st.Device(context.Background(), old); err != nil || !d.Revoked() {
		t.Errorf("device after clicking Retire = %+v, %v", d, err)
	}
}
