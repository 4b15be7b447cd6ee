package dashboard

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store/memshared"
)

// TestSharedThrottleIsOneThrottle: attempts spread over two collectors
// sharing the store are throttled exactly as the same attempts on one
// collector's in-memory throttle.
func TestSharedThrottleIsOneThrottle(t *testing.T) {
	ctx := context.Background()
	st := memshared.New(0)
	collectors := []signIns{sharedSignIns{st: st, maxFree: 5}, sharedSignIns{st: st, maxFree: 5}}
	local := localSignIns{newThrottle(5, throttleEntries)}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		user, addr string
		succeed    bool
		after      time.Duration
	}
	var steps []step
	for i := range 30 { // one address guessing, then many addresses against one user
		steps = append(steps, step{user: "amina", addr: "203.0.113.5", after: 10 * time.Second})
		steps = append(steps, step{user: "amina", addr: fmt.Sprintf("198.51.100.%d", i)})
	}
	steps = append(steps, step{user: "amina", addr: "192.0.2.1", succeed: true}, step{user: "amina", addr: "192.0.2.1"})
	throttled := 0
	for i, s := range steps {
		now = now.Add(s.after)
		c := collectors[i%2]
		if s.succeed {
			if err := c.succeed(ctx, now, s.user, s.addr); err != nil {
				t.Fatal(err)
			}
			local.succeed(ctx, now, s.user, s.addr)
			continue
		}
		got, err := c.admit(ctx, now, s.user, s.addr)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := local.admit(ctx, now, s.user, s.addr)
		if got != want {
			t.Fatalf("step %d (%s from %s): shared throttle waits %s, one collector's %s", i, s.user, s.addr, got, want)
		}
		if got > 0 {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("nothing was throttled: the test exercises nothing")
	}
}

func TestSharedThrottleRecordIsBounded(t *testing.T) {
	ctx := context.Background()
	st := memshared.New(0)
	c := sharedSignIns{st: st, maxFree: 5}
	now := time.Now()
	for i := range 300 {
		now = now.Add(time.Minute) // the user bucket refills
		if _, err := c.admit(ctx, now, "amina", fmt.Sprintf("10.0.%d.%d", i/256, i%256)); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	st.UpdateState(ctx, "signin:amina", now, func(cur []byte) ([]byte, time.Time, error) {
		n = len(cur)
		return cur, now.Add(time.Hour), nil
	})
	if n == 0 || n > 64<<10 {
		t.Fatalf("the record of one user is %d bytes after 300 addresses, want some and at most 64 KiB", n)
	}
}
