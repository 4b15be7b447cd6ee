package storetest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Benchmark fleets: BuildFleet fills a store through its own write paths
// (Enroll, SaveReport, RevokeDevice), as a collector would be filled, so
// a benchmark reads the aggregates and indexes that ingest keeps and
// nothing a bulk load or an ANALYZE would add.

// FleetRules are the rules of a benchmark fleet's reports.
var FleetRules = []string{"disk-encrypted", "firewall-on", "os-supported", "patches-recent", "screen-lock"}

// FleetGroups and FleetOSes are spread over a benchmark fleet's devices.
var (
	FleetGroups = []string{"field", "hq", "partners", "board"}
	FleetOSes   = []string{"Debian GNU/Linux", "Windows 11 Pro", "macOS"}
)

// FleetStaleAfter is the staleness a benchmark fleet is built for: most
// devices are seen within it of the build's now.
const FleetStaleAfter = 3 * time.Hour

// BuildFleet enrols n devices (dev_00000000 …, hostnames host-000000 …)
// and sends each one report, as of now: 90 % seen within the last two
// hours, 8 % stale (seen up to 30 days ago, so the trend has history),
// 1 % never reported, and about 1 % revoked. A rule fails on about one
// device in 17 and is unknown on one in 23. progress, if set, is called
// every 10,000 devices.
func BuildFleet(ctx context.Context, s store.Store, n int, now time.Time, progress func(done int)) error {
	return BuildFleetParallel(ctx, s, n, now, 1, progress)
}

// BuildFleetParallel is BuildFleet with workers goroutines, each building
// every workers-th device (its enrolment, report and revocation in that
// order, as one device would arrive): the same fleet, built as a
// collector serving many devices at once would fill it. progress is
// called, one call at a time, every 10,000 devices built.
func BuildFleetParallel(ctx context.Context, s store.Store, n int, now time.Time, workers int, progress func(done int)) error {
	for _, g := range FleetGroups {
		if err := s.CreateToken(ctx, store.Token{ID: "bench-" + g, Hash: hash("bench-" + g), Group: g, Uses: n, UsesLeft: n,
			CreatedAt: now.AddDate(0, 0, -100), ExpiresAt: now.AddDate(1, 0, 0)}); err != nil {
			return err
		}
	}
	workers = max(workers, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		done  int
		first error
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := buildDevice(ctx, s, i, now); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mu.Lock()
				done++
				if progress != nil && done%10_000 == 0 {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// buildDevice enrols device i of a benchmark fleet, sends its report and
// revokes it, as BuildFleet describes.
func buildDevice(ctx context.Context, s store.Store, i int, now time.Time) error {
	g := FleetGroups[i%len(FleetGroups)]
	id := fmt.Sprintf("dev_%08d", i)
	var seen time.Time
	switch {
	case i%100 < 90:
		seen = now.Add(-time.Duration(i%7200) * time.Second)
	case i%100 < 98:
		seen = now.Add(-FleetStaleAfter - time.Duration(i%(30*24*60))*time.Minute)
	}
	enrolled := now.AddDate(0, 0, -40).Add(time.Duration(i%(24*60)) * time.Minute)
	sign := func(string) (store.Issued, error) {
		return store.Issued{Serial: fmt.Sprintf("%x", 0x100000+i), NotAfter: now.AddDate(0, 0, 5+i%365), DER: []byte{0x30}}, nil
	}
	if _, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("bench-" + g), Now: enrolled, NewID: id,
		Info: store.DeviceInfo{Hostname: fmt.Sprintf("host-%06d", i), Platform: "linux", OSName: FleetOSes[i%len(FleetOSes)], OSVersion: "12", Architecture: "amd64", AgentVersion: "1.0"}}, sign); err != nil {
		return fmt.Errorf("enrol %s: %w", id, err)
	}
	if !seen.IsZero() {
		r := store.Report{DeviceID: id, Sequence: 1, ReceivedAt: seen, CollectedAt: seen.Add(-time.Second), AgentVersion: "1.0",
			PolicyName: "baseline", PolicyVersion: 1, Facts: []byte{0x0a, 0x00}, ContentHash: hash(id)}
		for j, rule := range FleetRules {
			v := store.Pass
			switch {
			case (i+j)%17 == 0:
				v = store.Fail
			case (i+j)%23 == 0:
				v = store.Unknown
			}
			r.Results = append(r.Results, store.RuleResult{RuleID: rule, Title: rule, Family: "os", Severity: "high", Collector: v, Agent: v, Observed: "observed", Expected: "expected"})
		}
		if _, err := s.SaveReport(ctx, r); err != nil {
			return fmt.Errorf("report of %s: %w", id, err)
		}
	}
	if i%97 == 13 {
		if err := s.RevokeDevice(ctx, id, now.Add(-time.Hour)); err != nil {
			return err
		}
	}
	return nil
}
