package service

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/report/reporttest"
)

// step is one round the supervisor asked for, and when.
type step struct {
	at time.Duration // since the start
	o  RoundOptions
}

// The supervisor fetches the policy in the first round only, collects
// every interval, retries a failed delivery with delivery-only rounds and
// backoff, reruns a round that reported nothing, and stops when ctx ends.
func TestSupervisorSchedule(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []step
	// What each round reports, in order.
	results := []func() (RoundResult, error){
		func() (RoundResult, error) { // collected, collector down
			return RoundResult{Sequence: 1, Waiting: 1, Retry: true, Delivery: &Delivery{Waiting: 1, Detail: "down"}}, nil
		},
		func() (RoundResult, error) { return RoundResult{}, errors.New("child crashed") },
		func() (RoundResult, error) { // delivered the backlog
			return RoundResult{Delivered: 1, Delivery: &Delivery{Delivered: 1}}, nil
		},
		func() (RoundResult, error) { // the next collection
			return RoundResult{Sequence: 2, Delivered: 1, Delivery: &Delivery{Delivered: 1}}, nil
		},
	}
	var done []RoundResult
	sv := Supervisor{
		Interval: time.Hour, RetryBase: time.Second, RetryMax: time.Minute,
		Now: clk.Now, Rand: func() float64 { return 0.5 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			clk.Add(d)
			return ctx.Err()
		},
		Run: func(ctx context.Context, o RoundOptions) (RoundResult, error) {
			got = append(got, step{clk.Now().Sub(start), o})
			if len(got) > len(results) {
				cancel()
				return RoundResult{}, ctx.Err()
			}
			return results[len(got)-1]()
		},
		Done: func(r RoundResult) { done = append(done, r) },
	}
	if err := sv.Loop(ctx); err != nil {
		t.Fatalf("Loop: %v", err)
	}
	// Backoff with Rand 0.5: half of 1 s, then half of 2 s; the interval
	// 1 h ±10 % at 0.5 is 1 h, from the end of the collecting round.
	want := []step{
		{0, RoundOptions{RefreshPolicy: true, Collect: true}},
		{500 * time.Millisecond, RoundOptions{}},
		{1500 * time.Millisecond, RoundOptions{}},
		{time.Hour, RoundOptions{Collect: true}},
		{2 * time.Hour, RoundOptions{Collect: true}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("rounds:\n got %v\nwant %v", got, want)
	}
	if len(done) != 3 || done[0].Sequence != 1 || done[1].Delivered != 1 || done[2].Sequence != 2 {
		t.Errorf("Done told %+v; want the three rounds that reported", done)
	}
}

// A round that reports nothing while it was to collect collects again
// when it is rerun, and an unenrolled device is looked at every
// EnrolmentPoll without running a round.
func TestSupervisorRerunsAFailedCollection(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enrolled := false
	var got []step
	sv := Supervisor{
		Interval: time.Hour, RetryBase: time.Second, RetryMax: time.Minute, EnrolmentPoll: 30 * time.Second,
		Now: clk.Now, Rand: func() float64 { return 0 },
		Enrolled: func() bool {
			was := enrolled
			enrolled = true // enrolled from the second look on
			return was
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			clk.Add(d)
			return ctx.Err()
		},
		Run: func(ctx context.Context, o RoundOptions) (RoundResult, error) {
			got = append(got, step{clk.Now().Sub(start), o})
			if len(got) == 3 {
				cancel()
			}
			return RoundResult{}, errors.New("child crashed")
		},
	}
	if err := sv.Loop(ctx); err != nil {
		t.Fatalf("Loop: %v", err)
	}
	want := []step{
		{30 * time.Second, RoundOptions{RefreshPolicy: true, Collect: true}},
		{30 * time.Second, RoundOptions{RefreshPolicy: true, Collect: true}}, // Rand 0: no wait
		{30 * time.Second, RoundOptions{RefreshPolicy: true, Collect: true}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("rounds:\n got %v\nwant %v", got, want)
	}
}

// Round reports the queued report and the delivery to the caller; with
// the collector gone it says to retry, and the report stays queued.
func TestRoundReportsDelivery(t *testing.T) {
	ctx := context.Background()
	c := fastCollector(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	s, err := New(Config{StateDir: dir, Source: bundle(t, "linux-debian12-sandbox"), AgentVersion: "1.0.0", CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res := s.Round(ctx, RoundOptions{RefreshPolicy: true, Collect: true})
	if res.Sequence != 1 || res.Delivered != 1 || res.Waiting != 0 || res.Retry || res.Error != "" || res.Delivery == nil || res.Delivery.Delivered != 1 {
		t.Fatalf("first round = %+v", res)
	}
	if n := len(c.Reports(id.DeviceID)); n != 1 {
		t.Fatalf("collector holds %d reports, want 1", n)
	}
	c.Stop()
	res = s.Round(ctx, RoundOptions{Collect: true})
	if res.Sequence != 2 || res.Delivered != 0 || res.Waiting != 1 || !res.Retry || res.Permanent || res.Delivery == nil || res.Delivery.Problem == "" {
		t.Fatalf("round with the collector down = %+v", res)
	}
	res = s.Round(ctx, RoundOptions{})
	if res.Sequence != 0 || res.Waiting != 1 || !res.Retry {
		t.Fatalf("delivery-only round with the collector down = %+v", res)
	}
}
