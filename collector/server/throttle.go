package server

import (
	"context"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardhq/ward/collector/store"
)

// maxEnrollSources bounds the per-source enrolment buckets.
const maxEnrollSources = 10_000

// enrollThrottle bounds enrolment attempts per source address (an IPv4
// address, an IPv6 /64) and in total, before the request is read, at two
// levels: *refused* attempts (a wrong, expired or used-up token, a bad
// request) tightly, since they are what guessing and flooding are made of,
// and all attempts loosely, as a bound on the work, so that a whole office
// enrolling at once behind one address (a rollout) is not refused.
//
// The refusals are counted in store.RateLimits, which several collectors
// on one database share: a guesser spreading its attempts over the
// collectors behind a load balancer gets no more than from one. The work
// bound stays in this process's memory, since what it protects is this
// process (each collector bounds its own work; docs/multi-collector.md).
type enrollThrottle struct {
	sources *limiters
	total   *rate.Limiter
	// refused are charged after a refusal; an attempt is admitted only
	// while its source, and the collectors as a whole, have a refusal left.
	shared                store.RateLimits
	refused, refusedTotal store.Rate
	refusedLimit          rate.Limit // for the retry hint
	unlimited             bool       // EnrollRefusedRate is rate.Inf
	now                   func() time.Time
	log                   *slog.Logger
}

// sharedTimeout bounds each look at the shared refusal counts, made before
// the request is read.
const sharedTimeout = 2 * time.Second

func newEnrollThrottle(o *GRPCOptions, shared store.RateLimits, now func() time.Time, log *slog.Logger) *enrollThrottle {
	l := newLimiters(o.EnrollRate, o.EnrollBurst)
	l.max = maxEnrollSources
	t := &enrollThrottle{sources: l, total: rate.NewLimiter(o.EnrollTotalRate, o.EnrollTotalBurst),
		shared: shared, refusedLimit: o.EnrollRefusedRate, unlimited: math.IsInf(float64(o.EnrollRefusedRate), 1), now: now, log: log}
	if !t.unlimited {
		every := time.Duration(float64(time.Second) / float64(o.EnrollRefusedRate))
		t.refused = store.Rate{Every: every, Burst: o.EnrollRefusedBurst}
		t.refusedTotal = store.Rate{Every: every / 10, Burst: 10 * o.EnrollRefusedBurst}
	}
	return t
}

// Keys of the shared refusal buckets.
const (
	refusedKeyPrefix = "enroll-refused:"
	refusedTotalKey  = "enroll-refused-total"
)

// allow returns nil, or a RESOURCE_EXHAUSTED status saying when to retry
// (UNAVAILABLE when the shared counts cannot be read). A source over its
// own limit does not use up the total.
func (t *enrollThrottle) allow(ctx context.Context) error {
	key := sourceKey(ctx)
	if !t.unlimited {
		ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
		defer cancel()
		now := t.now()
		ok, _, err := t.shared.TakeTokens(ctx, refusedKeyPrefix+key, t.refused, 0, now)
		if err == nil && !ok {
			return retryLater("too many refused enrolment attempts from this address", t.refusedLimit)
		}
		if err == nil {
			ok, _, err = t.shared.TakeTokens(ctx, refusedTotalKey, t.refusedTotal, 0, now)
			if err == nil && !ok {
				return retryLater("too many refused enrolment attempts at this collector", 10*t.refusedLimit)
			}
		}
		if err != nil {
			// Unknown is not admitted: without the counts a guesser
			// would be unbounded.
			t.log.Error("read the enrolment refusal counts", "err", err)
			return status.Error(codes.Unavailable, "enrolment is unavailable for a moment: retry")
		}
	}
	if !t.sources.allow(key) {
		return retryLater("too many enrolment attempts from this address", t.sources.limit)
	}
	if !t.total.Allow() {
		return retryLater("too many enrolment attempts at this collector", t.total.Limit())
	}
	return nil
}

// refusedOne charges a refused attempt to its source and the total.
func (t *enrollThrottle) refusedOne(ctx context.Context) {
	if t.unlimited {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedTimeout)
	defer cancel()
	now := t.now()
	for key, r := range map[string]store.Rate{refusedKeyPrefix + sourceKey(ctx): t.refused, refusedTotalKey: t.refusedTotal} {
		if _, _, err := t.shared.TakeTokens(ctx, key, r, 1, now); err != nil {
			t.log.Error("count a refused enrolment attempt", "err", err)
		}
	}
}

// retryLater is RESOURCE_EXHAUSTED with a retry hint (in the message and
// as a google.rpc.RetryInfo detail): the time one token takes to refill,
// at least a second.
func retryLater(what string, r rate.Limit) error {
	after := time.Second
	if r > 0 && !math.IsInf(float64(r), 0) {
		after = max(after, time.Duration(float64(time.Second)/float64(r)).Round(time.Second))
	}
	st := status.Newf(codes.ResourceExhausted, "%s: retry in %s", what, after)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)}); err == nil {
		st = d
	}
	return st.Err()
}

// sourceKey is the throttling key of the caller: its IPv4 address or its
// IPv6 /64 ("" when there is no IP peer).
func sourceKey(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	var ip netip.Addr
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(a.IP)
	} else if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return ip.String()
	case ip.Is6():
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return p.Addr.String()
}

// sampler logs the first few events per reason in each window and then
// one summary line with how many it left out.
type sampler struct {
	logger *slog.Logger
	window time.Duration
	first  int

	mu      sync.Mutex
	reasons map[string]*sampled
}

type sampled struct {
	start   time.Time
	n       int
	summary *time.Timer
	msg     string
}

func newSampler(log *slog.Logger, window time.Duration, first int) *sampler {
	return &sampler{logger: log, window: window, first: first, reasons: map[string]*sampled{}}
}

// log logs msg at Warn with reason and attrs, unless reason had its
// first few lines this window; what it leaves out is counted in one line
// at the window's end.
func (s *sampler) log(msg, reason string, attrs ...any) {
	now := time.Now()
	s.mu.Lock()
	r, ok := s.reasons[reason]
	if !ok || now.Sub(r.start) >= s.window {
		if ok && r.summary != nil {
			// The summary of the window before is still due; log it now.
			if r.summary.Stop() {
				s.summarize(reason, r)
			}
		}
		r = &sampled{start: now, msg: msg}
		s.reasons[reason] = r
	}
	r.n++
	n := r.n
	if n == s.first+1 {
		r.summary = time.AfterFunc(s.window-now.Sub(r.start), func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.summarize(reason, r)
		})
	}
	s.mu.Unlock()
	if n > s.first {
		return
	}
	attrs = append([]any{"reason", reason}, attrs...)
	if n == s.first {
		attrs = append(attrs, "sampling", "further lines of this reason are counted until the minute is over")
	}
	s.logger.Warn(msg, attrs...)
}

// summarize logs how many events of r went unlogged; s.mu is held.
func (s *sampler) summarize(reason string, r *sampled) {
	if left := r.n - s.first; left > 0 {
		s.logger.Warn(r.msg+" (summary)", "reason", reason, "not_logged", left, "since", r.start.UTC().Format(time.RFC3339))
		r.n = s.first
	}
}

// peerAttr is the "peer" log attribute of the call's peer, if any.
func peerAttr(ctx context.Context) []any {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return []any{"peer", p.Addr.String()}
	}
	return nil
}
