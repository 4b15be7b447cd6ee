package service

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/wardhq/ward/agent/report"
)

// RoundOptions says what one Round does besides delivering the outbox.
type RoundOptions struct {
	// RefreshPolicy fetches the policy first (the daemon's first round;
	// later rounds follow the changes the collector announces).
	RefreshPolicy bool `json:"refresh_policy,omitempty"`
	// Collect collects, evaluates and queues a report; without it the
	// round only retries delivery.
	Collect bool `json:"collect,omitempty"`
}

// RoundResult is what one round did, in the form a round's child process
// reports it to the daemon (ward-agent round prints it as JSON).
type RoundResult struct {
	// NotEnrolled means the state directory holds no identity: nothing
	// ran.
	NotEnrolled bool `json:"not_enrolled,omitempty"`
	// Sequence is the report queued (0 if none).
	Sequence uint64 `json:"sequence,omitempty"`
	// Delivered counts the reports acknowledged, Waiting those still
	// queued.
	Delivered int `json:"delivered"`
	Waiting   int `json:"waiting"`
	// Delivery is the round's delivery attempt, nil if it made none
	// (stopped first).
	Delivery *Delivery `json:"delivery,omitempty"`
	// Retry says delivery failed and is to be tried again; Permanent that
	// the collector refuses this device, so retrying soon is pointless.
	Retry     bool `json:"retry,omitempty"`
	Permanent bool `json:"permanent,omitempty"`
	// Error is why the round's report could not be queued.
	Error string `json:"error,omitempty"`
}

// Round does what o asks and then tries one delivery of the outbox, like
// Once; a collector found unreachable by the policy fetch is not tried
// again. A failure to queue the report is in the result: the delivery of
// what is queued is still tried.
func (s *Service) Round(ctx context.Context, o RoundOptions) RoundResult {
	var res RoundResult
	var perr error
	if o.RefreshPolicy {
		perr = s.refreshPolicy(ctx)
	}
	if o.Collect {
		seq, err := s.collect(ctx)
		if err != nil {
			s.log.Error("cannot queue report", "err", err)
			res.Error = err.Error()
		}
		res.Sequence = seq
	}
	s.last = nil
	var derr error
	if unreachable(perr) {
		derr = perr
		s.delivered(ctx, 0, perr)
	} else {
		res.Delivered, derr = s.deliver(ctx)
	}
	res.Delivery, res.Waiting = s.last, s.ob.Len()
	if derr != nil && ctx.Err() == nil {
		res.Retry, res.Permanent = true, report.Permanent(derr)
	}
	return res
}

// DefaultEnrolmentPoll is how often a Supervisor looks for an identity
// while the device is not enrolled.
const DefaultEnrolmentPoll = 30 * time.Second

// Supervisor is the daemon's loop when every round runs in a child
// process: it decides when to collect and when to retry a delivery, and
// leaves the work to Run, so the long-lived daemon never runs the
// collection, the policy engine or the calls to the collector, and keeps
// none of their memory (code pages included) between rounds.
type Supervisor struct {
	// Run runs one round (in a child process, in production) and returns
	// its result; an error means the round did not report one.
	Run func(ctx context.Context, o RoundOptions) (RoundResult, error)
	// Done, if set, is told each round's result.
	Done func(RoundResult)
	// Enrolled, if set, says cheaply whether an identity is there; while
	// it says no, no round runs.
	Enrolled func() bool
	// Interval between collections (DefaultInterval), ±10 %.
	Interval time.Duration
	// RetryBase and RetryMax bound delivery backoff (report.BackoffBase
	// and report.BackoffMax); EnrolmentPoll is how often an unenrolled
	// device is looked at again (DefaultEnrolmentPoll).
	RetryBase, RetryMax, EnrolmentPoll time.Duration
	// Log receives what happened (default: discard).
	Log *slog.Logger
	// Now, Rand and Sleep as in Config.
	Now   func() time.Time
	Rand  func() float64
	Sleep func(ctx context.Context, d time.Duration) error
}

func (sv *Supervisor) defaults() {
	if sv.Interval <= 0 {
		sv.Interval = DefaultInterval
	}
	if sv.RetryBase <= 0 {
		sv.RetryBase = report.BackoffBase
	}
	if sv.RetryMax <= 0 {
		sv.RetryMax = report.BackoffMax
	}
	if sv.EnrolmentPoll <= 0 {
		sv.EnrolmentPoll = DefaultEnrolmentPoll
	}
	if sv.Log == nil {
		sv.Log = slog.New(slog.DiscardHandler)
	}
	if sv.Now == nil {
		sv.Now = time.Now
	}
	if sv.Rand == nil {
		sv.Rand = rand.Float64
	}
	if sv.Sleep == nil {
		sv.Sleep = sleep
	}
}

// Loop runs rounds until ctx is cancelled, then returns nil. It collects
// every Interval, fetching the policy in the first round, and after a
// failed delivery runs delivery-only rounds with report.Backoff (reset
// by a delivery that makes progress) until the queue is empty or the next
// collection is due, whose round delivers too. A round that reports no
// result is retried like a failed delivery, collecting again if it was to
// collect. Loop does not stop on errors, which it logs.
func (sv Supervisor) Loop(ctx context.Context) error {
	sv.defaults()
	if sv.Run == nil {
		return errors.New("service: supervisor without a round runner")
	}
	refresh, waiting := true, false
	retry := report.Retry{Base: sv.RetryBase, Max: sv.RetryMax, Rand: sv.Rand}
	nextCollect, retryAt := sv.Now(), time.Time{}
	for {
		if sv.Enrolled != nil && !sv.Enrolled() {
			if !waiting {
				sv.Log.Warn("not enrolled yet; waiting for an identity", "retry", sv.EnrolmentPoll)
				waiting = true
			}
			if sv.Sleep(ctx, sv.EnrolmentPoll) != nil {
				return nil
			}
			continue
		}
		now := sv.Now()
		o := RoundOptions{RefreshPolicy: refresh, Collect: !now.Before(nextCollect)}
		res, err := sv.Run(ctx, o)
		if ctx.Err() != nil {
			return nil
		}
		now = sv.Now()
		switch {
		case err != nil:
			wait := retry.Wait(0)
			sv.Log.Error("round failed; will run it again", "err", err, "retry_in", wait)
			retryAt = now.Add(wait)
			if o.Collect {
				nextCollect = retryAt
			}
		case res.NotEnrolled:
			if !waiting {
				sv.Log.Warn("not enrolled yet; waiting for an identity", "retry", sv.EnrolmentPoll)
				waiting = true
			}
			retryAt = now.Add(sv.EnrolmentPoll)
			if o.Collect {
				nextCollect = retryAt
			}
		default:
			waiting, refresh = false, false
			if sv.Done != nil {
				sv.Done(res)
			}
			if o.Collect {
				nextCollect = now.Add(sv.nextInterval())
			}
			retryAt = time.Time{}
			if res.Retry {
				wait := retry.Wait(res.Delivered) // progress starts the backoff again
				if res.Permanent {
					wait = sv.RetryMax
					sv.Log.Error("collector refuses this device; enrol it again", "err", res.Delivery.detail(), "retry_in", wait)
				} else {
					sv.Log.Warn("delivery failed; will retry", "err", res.Delivery.detail(), "retry_in", wait, "waiting", res.Waiting)
				}
				retryAt = now.Add(wait)
			} else {
				retry = report.Retry{Base: sv.RetryBase, Max: sv.RetryMax, Rand: sv.Rand}
			}
		}
		next := nextCollect
		if !retryAt.IsZero() && retryAt.Before(next) {
			next = retryAt
		}
		if sv.Sleep(ctx, next.Sub(now)) != nil {
			return nil
		}
	}
}

// nextInterval is Interval ±10 %.
func (sv *Supervisor) nextInterval() time.Duration {
	f := 1 + jitter*(2*sv.Rand()-1)
	return time.Duration(float64(sv.Interval) * f)
}

// detail is the error of a delivery attempt, "" without one.
func (d *Delivery) detail() string {
	if d == nil {
		return ""
	}
	return d.Detail
}
