package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunEventsConformance runs the suite of store.EventLog and
// store.GroupCounter (the events outbox and /metrics' group counts) on
// stores made by newStore, which must implement both.
func RunEventsConformance(t *testing.T, newStore func() store.Dashboard) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Dashboard, store.EventLog)
	}{
		{"EventsInOrderAfterACursor", testEventsOrder},
		{"CursorsMoveOnlyFromWhereTheyAre", testEventCursors},
		{"DeliveryLogNewestFirst", testDeliveries},
		{"TransitionsAfterAnID", testTransitionsAfter},
		{"PassedDeadlinesInAWindow", testPassedDeadlines},
		{"GroupCountsAddUpToFleetCounts", testGroupCounts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			ev, ok := s.(store.EventLog)
			if !ok {
				t.Fatalf("%T does not implement store.EventLog", s)
			}
			tc.fn(t, s, ev)
		})
	}
}

func testEventsOrder(t *testing.T, _ store.Dashboard, ev store.EventLog) {
	ctx := context.Background()
	if n, err := ev.LastEventID(ctx); err != nil || n != 0 {
		t.Fatalf("LastEventID of an empty store = %d, %v; want 0", n, err)
	}
	var ids []int64
	for i := range 5 {
		id, err := ev.AddEvent(ctx, store.Event{At: t0.Add(time.Duration(i) * time.Minute), Type: "device.enrolled", DeviceID: fmt.Sprintf("dev_%d", i), Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			t.Fatalf("event id %d after %d: ids must increase", id, ids[len(ids)-1])
		}
		ids = append(ids, id)
	}
	if n, err := ev.LastEventID(ctx); err != nil || n != ids[4] {
		t.Fatalf("LastEventID = %d, %v; want %d", n, err, ids[4])
	}
	got, err := ev.EventsAfter(ctx, ids[1], 2)
	if err != nil || len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[3] {
		t.Fatalf("EventsAfter(%d, 2) = %+v, %v; want ids %v", ids[1], got, err, ids[2:4])
	}
	if g := got[0]; g.Type != "device.enrolled" || g.DeviceID != "dev_2" || string(g.Payload) != `{"n":2}` || !g.At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("event read back = %+v (payload %s)", g, g.Payload)
	}
	// Pruning goes by when an event was recorded, not when it happened.
	late, err := ev.AddEvent(ctx, store.Event{At: t0.Add(-24 * time.Hour), RecordedAt: t0.Add(time.Hour), Type: "compliance.changed", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ev.EventsAfter(ctx, late-1, 1); len(got) != 1 || !got[0].RecordedAt.Equal(t0.Add(time.Hour)) || !got[0].At.Equal(t0.Add(-24*time.Hour)) {
		t.Errorf("late event read back = %+v", got)
	}
	// Pruning takes the old ones and never gives an id out again.
	n, err := ev.PruneEvents(ctx, t0.Add(10*time.Minute))
	if err != nil || n != 5 {
		t.Fatalf("PruneEvents = %d, %v; want 5 (the late one stays)", n, err)
	}
	if _, err := ev.PruneEvents(ctx, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	id, err := ev.AddEvent(ctx, store.Event{At: t0.Add(time.Hour), Type: "device.revoked", Payload: []byte(`{}`)})
	if err != nil || id <= late {
		t.Fatalf("AddEvent after pruning = %d, %v; want an id above %d", id, err, late)
	}
	if got, err := ev.EventsAfter(ctx, 0, 10); err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("EventsAfter(0) after pruning = %+v, %v", got, err)
	}
}

func testEventCursors(t *testing.T, _ store.Dashboard, ev store.EventLog) {
	ctx := context.Background()
	if _, ok, err := ev.Cursor(ctx, "webhook"); err != nil || ok {
		t.Fatalf("Cursor of an unset name: ok=%v, %v", ok, err)
	}
	if moved, err := ev.MoveCursor(ctx, "webhook", -1, 7); err != nil || !moved {
		t.Fatalf("create cursor: %v, %v", moved, err)
	}
	if moved, err := ev.MoveCursor(ctx, "webhook", -1, 9); err != nil || moved {
		t.Fatalf("create an existing cursor: moved=%v, %v; want false", moved, err)
	}
	if moved, err := ev.MoveCursor(ctx, "webhook", 6, 9); err != nil || moved {
		t.Fatalf("move from the wrong value: moved=%v, %v; want false", moved, err)
	}
	if moved, err := ev.MoveCursor(ctx, "webhook", 7, 9); err != nil || !moved {
		t.Fatalf("move: %v, %v", moved, err)
	}
	if v, ok, err := ev.Cursor(ctx, "webhook"); err != nil || !ok || v != 9 {
		t.Fatalf("Cursor = %d, %v, %v; want 9", v, ok, err)
	}
	batch := []store.Event{{At: t0, Type: "compliance.changed", DeviceID: "d1", Payload: []byte(`{"a":1}`)}, {At: t0, Type: "compliance.changed", DeviceID: "d2", Payload: []byte(`{"a":2}`)}}
	if moved, err := ev.AddEvents(ctx, batch, "transitions", -1, 40); err != nil || !moved {
		t.Fatalf("AddEvents creating its cursor: %v, %v", moved, err)
	}
	if moved, err := ev.AddEvents(ctx, batch, "transitions", 39, 41); err != nil || moved {
		t.Fatalf("AddEvents from the wrong cursor: moved=%v, %v; want false", moved, err)
	}
	got, err := ev.EventsAfter(ctx, 0, 10)
	if err != nil || len(got) != 2 || got[1].DeviceID != "d2" {
		t.Fatalf("events after AddEvents = %+v, %v; want exactly the first batch", got, err)
	}
	if v, _, _ := ev.Cursor(ctx, "transitions"); v != 40 {
		t.Errorf("cursor after the refused batch = %d, want 40", v)
	}
}

func testDeliveries(t *testing.T, _ store.Dashboard, ev store.EventLog) {
	ctx := context.Background()
	for i, o := range []string{store.DeliveryRetry, store.DeliveryRetry, store.DeliveryDelivered} {
		d := store.Delivery{EventID: 3, EventType: "device.revoked", Sink: "webhook", URL: "https://siem.example/hook", Attempt: i + 1,
			At: t0.Add(time.Duration(i) * time.Second), Status: []int{503, 0, 204}[i], Error: []string{"503 Service Unavailable", "connection refused", ""}[i],
			Outcome: o, Duration: time.Duration(i+1) * time.Millisecond}
		if err := ev.AddDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ev.Deliveries(ctx, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("Deliveries(2) = %+v, %v", got, err)
	}
	if d := got[0]; d.Attempt != 3 || d.Status != 204 || d.Outcome != store.DeliveryDelivered || d.Duration != 3*time.Millisecond ||
		d.EventID != 3 || d.URL != "https://siem.example/hook" || !d.At.Equal(t0.Add(2*time.Second)) {
		t.Errorf("newest delivery = %+v", d)
	}
	if d := got[1]; d.Attempt != 2 || d.Status != 0 || d.Error != "connection refused" || d.Outcome != store.DeliveryRetry {
		t.Errorf("second newest delivery = %+v", d)
	}
	if all, err := ev.Deliveries(ctx, 0); err != nil || len(all) != 3 {
		t.Errorf("Deliveries(0) = %d, %v; want 3", len(all), err)
	}
}

func testTransitionsAfter(t *testing.T, s store.Dashboard, ev store.EventLog) {
	ctx := context.Background()
	if n, err := ev.LastTransitionID(ctx); err != nil || n != 0 {
		t.Fatalf("LastTransitionID of an empty store = %d, %v", n, err)
	}
	mkToken(t, s, "tk", "secret", "field", 5, 24*time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	at := t0.Add(time.Hour)
	for _, r := range []store.Report{
		withObserved(report("dev_1", 1, at, store.Pass, store.Fail)),
		withObserved(report("dev_1", 2, at.Add(time.Hour), store.Fail, store.Fail)),
	} {
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all, err := ev.TransitionsAfter(ctx, 0, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("TransitionsAfter(0) = %+v, %v; want 3 (two first verdicts, one change)", all, err)
	}
	last := all[2]
	if last.DeviceID != "dev_1" || last.RuleID != "rule-0" || last.From != store.Pass || last.To != store.Fail || last.Sequence != 2 || !last.At.Equal(at.Add(time.Hour)) {
		t.Errorf("last transition = %+v", last)
	}
	if n, _ := ev.LastTransitionID(ctx); n != last.ID {
		t.Errorf("LastTransitionID = %d, want %d", n, last.ID)
	}
	if got, err := ev.TransitionsAfter(ctx, all[0].ID, 1); err != nil || len(got) != 1 || got[0].ID != all[1].ID {
		t.Errorf("TransitionsAfter(first, 1) = %+v, %v; want the second", got, err)
	}
}

// withObserved sets a report's ObservedAt to its receipt.
func withObserved(r store.Report) store.Report {
	r.ObservedAt = r.ReceivedAt
	return r
}

func testPassedDeadlines(t *testing.T, s store.Dashboard, ev store.EventLog) {
	ctx := context.Background()
	mkToken(t, s, "tk", "secret", "field", 5, 24*time.Hour)
	for _, id := range []string{"dev_a", "dev_b", "dev_r"} {
		mustEnroll(t, s, "secret", id, "")
	}
	failA, failB := t0.Add(time.Hour), t0.Add(3*time.Hour)
	for _, r := range []store.Report{
		withObserved(report("dev_a", 1, failA, store.Fail, store.Pass)),
		withObserved(report("dev_b", 1, failB, store.Fail, store.Fail)),
		withObserved(report("dev_r", 1, failA, store.Fail, store.Fail)),
	} {
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeDevice(ctx, "dev_r", failB); err != nil {
		t.Fatal(err)
	}
	rules := []store.DeadlineRule{{Group: "field", RuleID: "rule-0", Grace: 24 * time.Hour}, {Group: "field", RuleID: "rule-1", Grace: 2 * time.Hour}}
	// rule-0: deadlines a +25h, b +27h; rule-1: b +5h. Revoked r never.
	got, err := ev.PassedDeadlines(ctx, rules, t0, t0.Add(26*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range got {
		keys = append(keys, o.DeviceID+"/"+o.RuleID+"@"+o.Deadline.Sub(t0).String())
	}
	if want := []string{"dev_b/rule-1@5h0m0s", "dev_a/rule-0@25h0m0s"}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("PassedDeadlines(t0, +26h) = %v, want %v", keys, want)
	}
	if o := got[1]; o.Hostname != "h-dev_a" || o.Group != "field" || o.Title != "t" || !o.FailingSince.Equal(failA) {
		t.Errorf("overdue row = %+v", o)
	}
	// The window is open at its start: a deadline at from is not in it.
	got, err = ev.PassedDeadlines(ctx, rules, t0.Add(25*time.Hour), t0.Add(27*time.Hour), 0)
	if err != nil || len(got) != 1 || got[0].DeviceID != "dev_b" || got[0].RuleID != "rule-0" {
		t.Fatalf("PassedDeadlines(+25h, +27h] = %+v, %v; want dev_b/rule-0 only", got, err)
	}
	if got, err := ev.PassedDeadlines(ctx, rules, t0, t0.Add(48*time.Hour), 1); err != nil || len(got) != 1 || got[0].DeviceID != "dev_b" {
		t.Errorf("PassedDeadlines with limit 1 = %+v, %v; want the earliest deadline", got, err)
	}
}

func testGroupCounts(t *testing.T, s store.Dashboard, _ store.EventLog) {
	ctx := context.Background()
	gc, ok := s.(store.GroupCounter)
	if !ok {
		t.Fatalf("%T does not implement store.GroupCounter", s)
	}
	fleet(t, s) // group field: compliant, failing, unknown, silent, revoked
	mkToken(t, s, "tk2", "secret2", "office", 5, 24*time.Hour)
	if _, err := enroll(t, s, "secret2", "f-ok", "", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveReport(ctx, report("f-ok", 1, t0.Add(26*time.Hour), store.Pass)); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(26 * time.Hour)
	for _, staleAfter := range []time.Duration{3 * time.Hour, 48 * time.Hour} {
		got, err := gc.GroupCounts(ctx, now, staleAfter)
		if err != nil {
			t.Fatal(err)
		}
		fc, err := s.FleetCounts(ctx, now, staleAfter)
		if err != nil {
			t.Fatal(err)
		}
		var sum store.FleetCounts
		for _, c := range got {
			sum.Devices += c.Devices
			sum.Compliant += c.Compliant
			sum.Failing += c.Failing
			sum.Unknown += c.Unknown
			sum.Stale += c.Stale
			sum.Revoked += c.Revoked
		}
		if len(got) != 2 || sum != fc {
			t.Errorf("stale after %v: GroupCounts = %+v; sums to %+v, FleetCounts %+v", staleAfter, got, sum, fc)
		}
		if o := got["office"]; o != (store.FleetCounts{Devices: 1, Compliant: 1}) {
			t.Errorf("stale after %v: office = %+v, want one compliant device", staleAfter, o)
		}
	}
	got, _ := gc.GroupCounts(ctx, now, 3*time.Hour)
	// At +26h with 3h: only b-fail (seen at +24h2m) is fresh in field.
	if f := got["field"]; f != (store.FleetCounts{Devices: 4, Failing: 1, Stale: 3, Revoked: 1}) {
		t.Errorf("field = %+v", f)
	}
}
