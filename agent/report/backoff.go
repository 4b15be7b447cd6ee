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
