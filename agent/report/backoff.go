package report

import "time"

// Backoff bounds.
const (
	BackoffBase = time.Second
	BackoffMax  = 5 * time.Minute
)

// Backoff is the wait before retry number attempt (0 for the first
// retry): exponential with full jitter, uniform in [0, min(max,
// base·2^attempt)). r is a random number in [0, 1); passing it in keeps
// the schedule a pure function.
func Backoff(attempt int, base, maxDelay time.Duration, r float64) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	ceiling := maxDelay
	if attempt < 62 && base<<attempt > 0 && base<<attempt < maxDelay {
		ceiling = base << attempt
	}
	if r < 0 || r >= 1 {
		r = 0
	}
	return time.Duration(r * float64(ceiling))
}

// Retry schedules the retries of a delivery loop: after each failed
// attempt it waits Backoff, growing with the failures in a row, and a
// delivery that made progress (acknowledged reports) starts the count
// again, so a backlog drained in bursts between refusals never waits
// minutes. The zero Retry is not usable: set Base, Max and Rand.
type Retry struct {
	Base, Max time.Duration
	// Rand returns a number in [0, 1) for the jitter.
	Rand func() float64

	failures int
}

// Wait returns how long to wait after an attempt that failed after
// delivering delivered reports.
func (r *Retry) Wait(delivered int) time.Duration {
	if delivered > 0 {
		r.failures = 0
	}
	d := Backoff(r.failures, r.Base, r.Max, r.Rand())
	r.failures++
	return d
}

// Failures is how many attempts in a row have failed without progress.
func (r *Retry) Failures() int { return r.failures }
