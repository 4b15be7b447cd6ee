package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/connectivity"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Defaults for Config.
const (
	DefaultInterval = time.Hour
	// jitter spreads each interval by ±10 %.
	jitter = 0.10
)

// State directory entries owned by the service.
const (
	OutboxDir        = "outbox"
	FailingSinceFile = "failing_since.json"
)

// Config configures a Service. Zero fields take the defaults.
type Config struct {
	// StateDir holds the identity, outbox and caches (default
	// enroll.DefaultStateDir()).
	StateDir string
	// Source is what checks read (the live Source in production).
	Source check.Source
	// AgentVersion goes into every report.
	AgentVersion string
	// Lang is the language of result texts (default English).
	Lang string
	// Interval between collections (default DefaultInterval).
	Interval time.Duration
	// RetryBase and RetryMax bound delivery backoff (default
	// report.BackoffBase and report.BackoffMax).
	RetryBase, RetryMax time.Duration
	// CallTimeout bounds each call to the collector, including the wait
	// for a connection (default report.DefaultCallTimeout).
	CallTimeout time.Duration
	// Outbox bounds the queue.
	Outbox outbox.Options
	// Status, if set, receives each round's results and queued report, for
	// the local status endpoint and ward-agent privacy (agent/notify.Server).
	Status StatusPublisher
	// Delivered, if set, is told the outcome of each delivery attempt.
	Delivered func(Delivery)
	// Prober probes the update source each round (docs/connectivity.md);
	// nil means Source, when it is a connectivity.Prober (the live Source
	// is). NoUpdateProbe turns the probe off, as a discreet policy or the
	// agent settings file (SettingsFile: "update_probe": false) do.
	Prober        connectivity.Prober
	NoUpdateProbe bool
	// Log receives what happened (default: discard).
	Log *slog.Logger
	// Now, Rand and Sleep are the clock, the jitter source (in [0, 1)) and
	// the wait; tests replace them. Sleep returns early with ctx's error.
	Now   func() time.Time
	Rand  func() float64
	Sleep func(ctx context.Context, d time.Duration) error
}

// StatusPublisher shows a round's results to the device's users. sent
// is r in the form it would be sent to the collector now (for ward-agent
// privacy).
type StatusPublisher interface {
	Publish(pol *policies.Policy, results []policies.Result, r, sent *wardv1.Report, waivers []notify.Waiver)
}

// Service is an enrolled agent's collect-evaluate-report loop.
type Service struct {
	cfg      Config
	log      *slog.Logger
	id       *enroll.Identity
	ob       *outbox.Outbox
	client   *report.Client
	policy   *report.Policy
	feed     *report.Feed
	baseline *policies.Policy
	// last is the latest delivery attempt (Round reports it).
	last *Delivery
	// ledgerMu guards ledger, what the agent remembers about its
	// connection (the delivery loop records its attempts in it).
	ledgerMu sync.Mutex
	ledger   *Ledger
}

// New opens the enrolled state in cfg.StateDir. It fails with an error
// wrapping enroll.ErrNotEnrolled when the device is not enrolled.
func New(cfg Config) (*Service, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = enroll.DefaultStateDir()
	}
	if cfg.Source == nil {
		return nil, errors.New("service: no source to collect from")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = report.BackoffBase
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = report.BackoffMax
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Outbox.Log == nil {
		cfg.Outbox.Log = cfg.Log
	}
	if cfg.Prober == nil {
		cfg.Prober, _ = cfg.Source.(connectivity.Prober)
	}
	if !loadSettings(cfg.StateDir, cfg.Log).probeOn() {
		cfg.NoUpdateProbe = true
	}
	id, err := enroll.Load(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	log := cfg.Log.With("device_id", id.DeviceID)
	baseline, err := policies.Embedded("baseline")
	if err != nil {
		return nil, fmt.Errorf("embedded baseline policy: %w", err)
	}
	client, err := report.Dial(id, log)
	if err != nil {
		return nil, err
	}
	// Every report is sealed with the key the client calls with, so a
	// renewal changes the key of the next report (docs/outbox.md,
	// "Sealed reports").
	if cfg.Outbox.Sealer == nil {
		cfg.Outbox.Sealer = client.Sealer()
	}
	ob, err := outbox.Open(filepath.Join(cfg.StateDir, OutboxDir), cfg.Outbox)
	if err != nil {
		client.Close()
		return nil, err
	}
	if cfg.CallTimeout > 0 {
		client.CallTimeout = cfg.CallTimeout
	}
	return &Service{cfg: cfg, log: log, id: id, ob: ob, client: client,
		policy: report.LoadPolicy(cfg.StateDir, log), feed: report.LoadFeed(id, log), baseline: baseline,
		ledger: LoadLedger(filepath.Join(cfg.StateDir, LedgerFile), log)}, nil
}

// Close releases the connection to the collector.
func (s *Service) Close() error { return s.client.Close() }

// Outcome is what one round did.
type Outcome struct {
	// Sequence is the report queued this round (0 if none).
	Sequence uint64
	// Delivered counts reports the collector acknowledged; Waiting the
	// reports still queued.
	Delivered, Waiting int
	// DeliveryErr is why delivery stopped early, if it did.
	DeliveryErr error
}

// Once refreshes the policy, runs one round and tries one delivery. An
// error means the report could not be queued; a delivery failure is only
// in the Outcome, since the report is safe in the outbox. When the policy
// fetch finds the collector unreachable, delivery is not tried again.
func (s *Service) Once(ctx context.Context) (Outcome, error) {
	perr := s.refreshPolicy(ctx)
	seq, err := s.collect(ctx)
	if err != nil {
		return Outcome{}, err
	}
	if unreachable(perr) {
		s.delivered(ctx, 0, perr)
		return Outcome{Sequence: seq, Waiting: s.ob.Len(), DeliveryErr: perr}, nil
	}
	n, derr := s.deliver(ctx)
	return Outcome{Sequence: seq, Delivered: n, Waiting: s.ob.Len(), DeliveryErr: derr}, nil
}

// unreachable reports whether err says the collector could not be reached.
func unreachable(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		return true
	}
	return false
}

// Run collects every interval and delivers the outbox in a second
// goroutine, so an unreachable collector never delays collection: after a
// failed delivery it waits report.Backoff and tries again, and each new
// report wakes it. Run fetches the policy first. It returns nil when ctx
// is cancelled, after both goroutines have stopped; it does not stop on
// errors, which it logs.
func (s *Service) Run(ctx context.Context) error {
	s.refreshPolicy(ctx)
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { s.deliverLoop(ctx, kick) })
	defer wg.Wait()
	for {
		if _, err := s.collect(ctx); err != nil {
			s.log.Error("cannot queue report", "err", err)
		}
		select {
		case kick <- struct{}{}:
		default: // a delivery is already due
		}
		if err := s.cfg.Sleep(ctx, s.nextInterval()); err != nil {
			return nil
		}
	}
}

// deliverLoop delivers the outbox each time it is kicked, retrying with
// backoff (reset by each delivery that makes progress) until the queue
// is empty. It ends when ctx is cancelled.
func (s *Service) deliverLoop(ctx context.Context, kick <-chan struct{}) {
	for {
		select {
		case <-kick:
		case <-ctx.Done():
			return
		}
		retry := report.Retry{Base: s.cfg.RetryBase, Max: s.cfg.RetryMax, Rand: s.cfg.Rand}
		for {
			n, err := s.deliver(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				break
			}
			wait := retry.Wait(n) // progress starts the backoff again
			if report.Permanent(err) {
				wait = s.cfg.RetryMax
				s.log.Error("collector refuses this device; enrol it again", "err", err, "retry_in", wait)
			} else {
				s.log.Warn("delivery failed; will retry", "err", err, "retry_in", wait, "waiting", s.ob.Len())
			}
			if s.cfg.Sleep(ctx, wait) != nil {
				return
			}
		}
	}
}

// nextInterval is Interval ±10 %.
func (s *Service) nextInterval() time.Duration {
	f := 1 + jitter*(2*s.cfg.Rand()-1)
	return time.Duration(float64(s.cfg.Interval) * f)
}

// current is the policy in force.
func (s *Service) current() *policies.Policy {
	if p := s.policy.Current(); p != nil {
		return p
	}
	return s.baseline
}

// collect runs one collection and evaluation and queues the report.
func (s *Service) collect(ctx context.Context) (uint64, error) {
	now := s.cfg.Now().UTC()
	facts := collect.All(ctx, s.cfg.Source, now)
	pol := s.current()
	since, err := s.loadFailingSince()
	if err != nil {
		s.log.Warn("failing-since record unreadable; deadlines restart from now", "err", err)
		since = map[string]time.Time{}
	}
	conn := s.probe(ctx, pol)
	s.ledgerMu.Lock()
	before := *s.ledger
	conn.Collector = s.ledger.CollectorReach()
	grace := s.ledger.Begin(pol, since, now, 2*s.cfg.Interval, conn)
	s.ledgerMu.Unlock()
	feedIn := s.feed.Input()
	results := policies.Evaluate(ctx, pol, facts, policies.Options{Now: now, Lang: s.cfg.Lang, FailingSince: since,
		GraceUsed: grace.Used, Paused: grace.Paused, Feed: feedIn})
	if err := ctx.Err(); err != nil {
		// Stopped mid-round (the service is stopping): the rules left were
		// not evaluated, so this round is neither queued nor shown, nor
		// counted.
		s.ledgerMu.Lock()
		*s.ledger = before
		s.ledgerMu.Unlock()
		return 0, err
	}
	s.ledgerMu.Lock()
	s.ledger.End(results, grace)
	s.saveLedger()
	s.ledgerMu.Unlock()
	if p := facts.GetPatchLevel(); p != nil && !pol.ReadsFact(policies.PendingNames) {
		// The policy reads no name of a pending update: they may stay
		// on the device, only their digest goes (docs/enrolment.md,
		// "Report size").
		p.PendingDigest = policies.PendingDigest(p.Pending)
	}
	if next := nextFailingSince(since, results); !maps.Equal(next, since) {
		if err := s.saveFailingSince(next); err != nil {
			s.log.Warn("cannot record failing-since", "err", err)
		}
	}
	r := &wardv1.Report{
		// The epoch goes in before the outbox sees the report, so its
		// per-epoch drop count restarts with a new enrolment.
		Epoch:         s.id.Epoch,
		CollectedAt:   timestamppb.New(now),
		AgentVersion:  s.cfg.AgentVersion,
		PolicyName:    pol.Name,
		PolicyVersion: int32(pol.Version),
		Facts:         facts,
		Results:       ruleResults(results),
		Connectivity:  conn,
	}
	if feedIn.Feed != nil {
		r.FeedSerial = feedIn.Feed.Serial
	}
	seq, err := s.ob.Append(r)
	if err != nil {
		return 0, err
	}
	if s.cfg.Status != nil {
		var ws []notify.Waiver
		if pol == s.policy.Current() {
			// Waivers came with the cached policy; none with the baseline
			// the agent falls back to.
			for _, w := range s.policy.Waivers() {
				ws = append(ws, notify.Waiver{RuleID: w.RuleID, Reason: w.Reason, ExpiresAt: w.ExpiresAt})
			}
		}
		s.cfg.Status.Publish(pol, results, r, s.client.Wire(r), ws)
	}
	s.log.Info("report queued", "sequence", seq, "policy", pol.Name, "policy_version", pol.Version, "waiting", s.ob.Len())
	return seq, nil
}

// deliver drains the outbox and follows a policy or release feed change
// the collector announces.
func (s *Service) deliver(ctx context.Context) (int, error) {
	stale := false
	n, err := s.client.Deliver(ctx, s.ob, func(resp *wardv1.ReportResponse) {
		stale = stale || s.policy.Differs(resp.PolicyName, int(resp.PolicyVersion), resp.PolicyHash) ||
			s.feed.Differs(resp.FeedSerial)
	})
	if stale {
		s.refreshPolicy(ctx)
	}
	s.delivered(ctx, n, err)
	return n, err
}

// delivered tells Config.Delivered how an attempt that delivered n
// reports ended; an attempt cut short by ctx is not one.
func (s *Service) delivered(ctx context.Context, n int, err error) {
	if ctx.Err() != nil {
		return
	}
	d := Delivery{At: s.cfg.Now().UTC(), Delivered: n, Waiting: s.ob.Len()}
	s.reached(d.At, n > 0, err)
	if err != nil {
		d.Problem, d.Detail = Explain(err, s.id.Collector), err.Error()
	}
	s.last = &d
	if s.cfg.Delivered != nil {
		s.cfg.Delivered(d)
	}
}

func (s *Service) refreshPolicy(ctx context.Context) error {
	_, err := s.policy.Refresh(ctx, s.client, s.feed)
	if ctx.Err() == nil {
		s.reached(s.cfg.Now().UTC(), err == nil, err)
	}
	if err != nil {
		s.log.Warn("cannot fetch policy; keeping the cached one", "err", err, "policy", s.current().Name)
	}
	return err
}

// nextFailingSince keeps, per rule, when it was first seen failing: a
// FAIL keeps (or starts) it, a PASS clears it, an UNKNOWN keeps it (not
// knowing is no fix), and a rule no longer evaluated is forgotten.
func nextFailingSince(prev map[string]time.Time, results []policies.Result) map[string]time.Time {
	next := map[string]time.Time{}
	for _, r := range results {
		switch r.Status {
		case policies.StatusFail:
			if r.FailingSince != nil {
				next[r.RuleID] = r.FailingSince.UTC()
			}
		case policies.StatusUnknown:
			if t, ok := prev[r.RuleID]; ok {
				next[r.RuleID] = t
			}
		}
	}
	return next
}

func (s *Service) loadFailingSince() (map[string]time.Time, error) {
	data, err := os.ReadFile(filepath.Join(s.cfg.StateDir, FailingSinceFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]time.Time{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]time.Time{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", FailingSinceFile, err)
	}
	return m, nil
}

func (s *Service) saveFailingSince(m map[string]time.Time) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return outbox.WriteFile(filepath.Join(s.cfg.StateDir, FailingSinceFile), data, 0o600)
}

// ruleResults converts verdicts to their wire form.
func ruleResults(results []policies.Result) []*wardv1.RuleResult {
	out := make([]*wardv1.RuleResult, 0, len(results))
	for _, r := range results {
		rr := &wardv1.RuleResult{
			RuleId: r.RuleID, Title: r.Title, Family: r.Family, Status: wireStatus(r.Status),
			Severity: r.Severity, Observed: r.Observed, Expected: r.Expected, Reason: r.Reason,
			ObservedText: texts.ToProto(r.ObservedText), ReasonText: texts.ToProto(r.ReasonText),
		}
		if r.FailingSince != nil {
			rr.FailingSince = timestamppb.New(*r.FailingSince)
		}
		if r.Deadline != nil {
			rr.Deadline = timestamppb.New(*r.Deadline)
		}
		rr.GraceConnected, rr.DeadlinePaused = r.GraceConnected, r.DeadlinePaused
		if r.GraceConnected && r.Status == policies.StatusFail {
			rr.GraceUsed = durationpb.New(r.GraceUsed)
		}
		out = append(out, rr)
	}
	return out
}

func wireStatus(s policies.Status) wardv1.ResultStatus {
	switch s {
	case policies.StatusPass:
		return wardv1.ResultStatus_RESULT_STATUS_PASS
	case policies.StatusFail:
		return wardv1.ResultStatus_RESULT_STATUS_FAIL
	}
	return wardv1.ResultStatus_RESULT_STATUS_UNKNOWN
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
