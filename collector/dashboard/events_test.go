package dashboard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wardhq/ward/collector/events"
	"github.com/wardhq/ward/collector/store"
)

// TestRetireRecordsAnEvent: a device retired from the dashboard is in
// the events outbox, with the admin as actor, for webhooks and the SIEM
// stream; a viewer's refused attempt records nothing.
func TestRetireRecordsAnEvent(t *testing.T) {
	ctx := context.Background()
	f := startFleet(t)
	el := f.st.(store.EventLog)
	id := f.devices["lin-bad"]
	viewer := newClient(t, f.base)
	_, vcsrf := viewer.login("victor", "victor-correct-horse")
	if resp, _ := viewer.do("POST", "/devices/"+id+"/retire", url.Values{"csrf": {vcsrf}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer retire: %d", resp.StatusCode)
	}
	if evs, err := el.EventsAfter(ctx, 0, 100); err != nil || len(evs) != 0 {
		t.Fatalf("events after a refused retire: %+v, %v", evs, err)
	}
	admin := newClient(t, f.base)
	_, csrf := admin.login("amina", "amina-correct-horse")
	if resp, _ := admin.do("POST", "/devices/"+id+"/retire", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin retire: %d", resp.StatusCode)
	}
	evs, err := el.EventsAfter(ctx, 0, 100)
	if err != nil || len(evs) != 1 || evs[0].Type != events.TypeRevoked || evs[0].DeviceID != id {
		t.Fatalf("events after retire: %+v, %v", evs, err)
	}
	var data events.RevokedData
	if err := json.Unmarshal(evs[0].Payload, &data); err != nil {
		t.Fatal(err)
	}
	if data != (events.RevokedData{Device: events.DeviceRef{ID: id, Hostname: "lin-bad", Group: "hq"}, Actor: "amina", Retired: true}) {
		t.Errorf("event data = %+v", data)
	}
}

// TestWebhookDeliveriesInBrowser: the admin sees the delivery log with
// the store's values, at phone width without the page overflowing; a
// viewer is refused it. The screenshots are test artefacts (-artifacts).
func TestWebhookDeliveriesInBrowser(t *testing.T) {
	ctx := browser(t)
	f := startFleet(t)
	el := f.st.(store.EventLog)
	at := time.Date(2026, 12, 1, 9, 14, 0, 0, time.UTC)
	url := "https://siem.example.org/hooks/a-rather-long-path/that/goes/on/for-a-while/ward"
	for _, d := range []store.Delivery{
		{EventID: 41, EventType: "device.revoked", Sink: "webhook", URL: url, Attempt: 1, At: at, Status: 503, Error: "receiver answered 503 Service Unavailable", Outcome: store.DeliveryRetry, Duration: 9 * time.Millisecond},
		{EventID: 41, EventType: "device.revoked", Sink: "webhook", URL: url, Attempt: 2, At: at.Add(time.Second), Status: 204, Outcome: store.DeliveryDelivered, Duration: 12*time.Millisecond + 345*time.Microsecond},
		{EventID: 42, EventType: "rule.overdue", Sink: "webhook", URL: url, Attempt: 1, At: at.Add(2 * time.Second), Status: 400, Error: "receiver answered 400 Bad Request", Outcome: store.DeliveryFailed, Duration: 3 * time.Millisecond},
	} {
		if err := el.AddDelivery(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	viewer := newClient(t, f.base)
	viewer.login("victor", "victor-correct-horse")
	if resp, _ := viewer.do("GET", "/webhooks", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer GET /webhooks: %d, want 403", resp.StatusCode)
	}
	run(t, ctx, "sign in and open the delivery log",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(f.base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "amina"),
		chromedp.SendKeys(chromedp.CSS("#password"), "amina-correct-horse"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#counts")),
		chromedp.Click(chromedp.CSS(`nav a[href="/webhooks"]`)),
		chromedp.WaitVisible(chromedp.CSS("#deliveries")),
	)
	if d, r, fl := number(t, ctx, "#n-delivered"), number(t, ctx, "#n-retry"), number(t, ctx, "#n-failed"); d != 1 || r != 1 || fl != 1 {
		t.Errorf("summary: %d delivered, %d retry, %d failed; want 1 each", d, r, fl)
	}
	rows := text(t, ctx, "#deliveries tbody")
	for _, want := range []string{"2026-12-01 09:14 UTC", "rule.overdue", "400", "failed", "receiver answered 400 Bad Request", "204", "delivered", "12ms", url} {
		if !strings.Contains(rows, want) {
			t.Errorf("delivery log lacks %q:\n%s", want, rows)
		}
	}
	if first := text(t, ctx, "#deliveries tbody tr:first-child"); !strings.Contains(first, "42") || !strings.Contains(first, "failed") {
		t.Errorf("newest first: the first row is %q", first)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if width > 390 {
		t.Errorf("the page is %d px wide at a 390 px viewport", width)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artefacts(t), "webhooks-390.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}
