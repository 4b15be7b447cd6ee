package enroll_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
)

// TestEnrolmentWaitsOutTheThrottle: a whole office enrolling at once
// behind one address is throttled by the collector, and every agent
// still enrols, by waiting the delay the collector asks for; one whose
// retry time runs out fails with the collector's reason.
func TestEnrolmentWaitsOutTheThrottle(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.GRPC.EnrollRate, cfg.GRPC.EnrollBurst = 2, 1 // one at once, then one every 500 ms
	})
	tok := c.Token("office", 5, time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	ids := make([]string, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: tok, Fingerprint: c.Fingerprint,
				StateDir: filepath.Join(t.TempDir(), fmt.Sprint(i)), Source: fixtureSource(t), RetryFor: time.Minute})
			errs[i] = err
			if id != nil {
				ids[i] = id.DeviceID
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("agent %d: %v", i, err)
		}
		seen[ids[i]] = true
	}
	if len(seen) != 4 {
		t.Errorf("enrolled devices %v, want 4 distinct", ids)
	}
	// Out of retry time: the throttle's reason reaches the person.
	c2 := servertest.Start(t, func(cfg *server.Config) { cfg.GRPC.EnrollRate, cfg.GRPC.EnrollBurst = 0.01, 1 })
	tok2 := c2.Token("office", 5, time.Hour)
	opts := func(dir string) enroll.Options {
		return enroll.Options{Collector: c2.Addr, Token: tok2, Fingerprint: c2.Fingerprint, StateDir: filepath.Join(t.TempDir(), dir),
			Source: fixtureSource(t), RetryFor: 2 * time.Second}
	}
	if _, err := enroll.Enroll(ctx, opts("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := enroll.Enroll(ctx, opts("b")); err == nil || !strings.Contains(err.Error(), "too many enrolment attempts") {
		t.Errorf("throttled past the retry time: %v, want the collector's reason", err)
	}
}
