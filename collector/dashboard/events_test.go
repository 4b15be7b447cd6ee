package dashboard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

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
