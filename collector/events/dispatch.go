package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
)

// Sink is where events go: a webhook, a file, syslog.
type Sink interface {
	// Name names the sink's cursor in the store ("webhook", "file",
	// "syslog"), so a restarted collector resumes where it was.
	Name() string
	// Send handles events, in order, and returns how many of the first
	// it handled: delivered, or given up and logged. It stops early, with
	// an error, only when ctx ends or it cannot go on; the rest are sent
	// again later.
	Send(ctx context.Context, events []store.Event) (int, error)
}

// Config configures a Dispatcher. Zero fields take the defaults.
type Config struct {
	// Store is the collector's store; it must implement store.EventLog.
	Store store.Dashboard
	Sinks []Sink
	// DefaultPolicy is the embedded policy of a group without one
	// (server.DefaultPolicy).
	DefaultPolicy string
	// Poll is how often the outbox and the transitions are looked at
	// (default 1 s).
	Poll time.Duration
	// OverdueEvery is how often passed deadlines are looked for (default
	// 1 min): a rule.overdue event comes at most that late.
	OverdueEvery time.Duration
	// Retain is how long events and the delivery log are kept (default
	// 30 days); pruned hourly.
	Retain time.Duration
	// GapWait is how long a reader waits at a gap in the ids before it
	// passes it (default 10 s): on PostgreSQL two collectors' inserts can
	// commit out of id order, and a rolled-back one leaves a gap for good.
	GapWait time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Cursor names in the store.
const (
	cursorTransitions = "producer:transitions"
	cursorOverdue     = "producer:overdue"
	sinkPrefix        = "sink:"
)

// batchSize bounds the events one read hands a sink, and transitions one
// production step turns into events.
const batchSize = 100

// Dispatcher produces events from the store's transitions and deadlines
// and delivers the outbox to its sinks.
type Dispatcher struct {
	cfg      Config
	st       store.Dashboard
	el       store.EventLog
	log      *slog.Logger
	policies *policyCache
	// wakes has one channel per loop (the producer's first), so a Wake
	// reaches every loop.
	wakes []chan struct{}
}

// New checks cfg and returns a Dispatcher; Run starts it.
func New(cfg Config) (*Dispatcher, error) {
	el, ok := cfg.Store.(store.EventLog)
	if !ok {
		return nil, fmt.Errorf("events: the store (%T) has no events outbox", cfg.Store)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.OverdueEvery <= 0 {
		cfg.OverdueEvery = time.Minute
	}
	if cfg.Retain <= 0 {
		cfg.Retain = 30 * 24 * time.Hour
	}
	if cfg.GapWait <= 0 {
		cfg.GapWait = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultPolicy == "" {
		cfg.DefaultPolicy = "baseline"
	}
	d := &Dispatcher{cfg: cfg, st: cfg.Store, el: el, log: cfg.Logger.With("component", "events"), policies: newPolicyCache(cfg.DefaultPolicy)}
	for range 1 + len(cfg.Sinks) {
		d.wakes = append(d.wakes, make(chan struct{}, 1))
	}
	return d, nil
}

// Wake has the loops look at the store now rather than at their next
// poll.
func (d *Dispatcher) Wake() {
	for _, w := range d.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Init sets the cursors a first start sets, if they are not set: every
// sink and the producers start from now, not from the whole history.
// Call it before the server records events, so that none recorded after
// the start is taken for history; Run calls it too.
func (d *Dispatcher) Init(ctx context.Context) error {
	for _, s := range d.cfg.Sinks {
		if _, err := d.cursor(ctx, sinkPrefix+s.Name(), d.el.LastEventID); err != nil {
			return err
		}
	}
	if _, err := d.cursor(ctx, cursorTransitions, d.el.LastTransitionID); err != nil {
		return err
	}
	now := d.cfg.Now()
	_, err := d.cursor(ctx, cursorOverdue, func(context.Context) (int64, error) { return now.UnixNano(), nil })
	return err
}

// Run produces and delivers events until ctx ends, then returns once
// every loop has stopped (a delivery in flight is abandoned and sent
// again by the next start).
func (d *Dispatcher) Run(ctx context.Context) {
	if err := d.Init(ctx); err != nil && ctx.Err() == nil {
		d.log.Error("set the events cursors", "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.produce(ctx, d.wakes[0]) })
	for i, s := range d.cfg.Sinks {
		wg.Go(func() { d.deliver(ctx, s, d.wakes[1+i]) })
	}
	wg.Wait()
}

// sleep waits for the poll interval, a Wake or the end of ctx, and
// reports whether ctx is still live.
func (d *Dispatcher) sleep(ctx context.Context, wake <-chan struct{}) bool {
	t := time.NewTimer(d.cfg.Poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// cursor reads a cursor, creating it at start() when it was never set:
// a new consumer starts from now, not from the whole history.
func (d *Dispatcher) cursor(ctx context.Context, name string, start func(context.Context) (int64, error)) (int64, error) {
	for {
		v, ok, err := d.el.Cursor(ctx, name)
		if err != nil || ok {
			return v, err
		}
		v, err = start(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := d.el.MoveCursor(ctx, name, -1, v); err != nil {
			return 0, err
		}
	}
}

// gaps tells how far a reader may go through ids: up to a gap it has
// seen for less than wait. It is timed by the wall clock, not Config.Now
// (the time deadlines are judged at, which tests move).
type gaps struct {
	wait time.Duration
	seen map[int64]time.Time // missing id → when first seen missing
}

// take returns how many of ids (ascending, after cursor) may be taken.
func (g *gaps) take(cursor int64, ids []int64, now time.Time) int {
	if g.seen == nil {
		g.seen = map[int64]time.Time{}
	}
	prev := cursor
	for i, id := range ids {
		if id != prev+1 {
			first, ok := g.seen[prev+1]
			if !ok {
				g.seen[prev+1] = now
				return i
			}
			if now.Sub(first) < g.wait {
				return i
			}
			delete(g.seen, prev+1)
		}
		prev = id
	}
	for k := range g.seen {
		if k <= prev {
			delete(g.seen, k)
		}
	}
	return len(ids)
}

// deliver runs one sink: the outbox after its cursor, in order.
func (d *Dispatcher) deliver(ctx context.Context, s Sink, wake <-chan struct{}) {
	name := sinkPrefix + s.Name()
	log := d.log.With("sink", s.Name())
	g := gaps{wait: d.cfg.GapWait}
	var cur int64
	var err error
	for {
		if cur, err = d.cursor(ctx, name, d.el.LastEventID); err == nil {
			break
		}
		log.Error("read the sink's cursor", "err", err)
		if !d.sleep(ctx, wake) {
			return
		}
	}
	for {
		// The cursor as stored: another collector, or webhook replay,
		// may have moved it.
		if v, ok, err := d.el.Cursor(ctx, name); err == nil && ok {
			cur = v
		}
		evs, err := d.el.EventsAfter(ctx, cur, batchSize)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("read events", "err", err)
			if !d.sleep(ctx, wake) {
				return
			}
			continue
		}
		ids := make([]int64, len(evs))
		for i, e := range evs {
			ids[i] = e.ID
		}
		evs = evs[:g.take(cur, ids, time.Now())]
		if len(evs) == 0 {
			if !d.sleep(ctx, wake) {
				return
			}
			continue
		}
		n, serr := s.Send(ctx, evs)
		if n > 0 {
			next := evs[n-1].ID
			moved, err := d.el.MoveCursor(context.WithoutCancel(ctx), name, cur, next)
			switch {
			case err != nil:
				log.Error("move the sink's cursor", "err", err)
			case moved:
				cur = next
			default:
				// Another collector on the store moved it: go on from there.
				if v, _, err := d.el.Cursor(ctx, name); err == nil {
					cur = v
				}
			}
		}
		if serr != nil && ctx.Err() == nil {
			log.Error("send events", "err", serr)
		}
		if ctx.Err() != nil {
			return
		}
		// A sink that handled some goes on at once (the webhook takes one
		// event per Send); one that handled none waits for the next poll.
		if serr != nil || n == 0 {
			if !d.sleep(ctx, wake) {
				return
			}
		}
	}
}

// produce turns transitions and passed deadlines into events, and prunes
// the outbox, until ctx ends.
func (d *Dispatcher) produce(ctx context.Context, wake <-chan struct{}) {
	g := gaps{wait: d.cfg.GapWait}
	var lastOverdue, lastPrune time.Time
	for {
		for {
			more, err := d.produceTransitions(ctx, &g)
			if err != nil && ctx.Err() == nil {
				d.log.Error("events from transitions", "err", err)
			}
			if !more || err != nil {
				break
			}
		}
		now := d.cfg.Now()
		if now.Sub(lastOverdue) >= d.cfg.OverdueEvery {
			lastOverdue = now
			if err := d.produceOverdue(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("events from passed deadlines", "err", err)
			}
		}
		if now.Sub(lastPrune) >= time.Hour {
			lastPrune = now
			if n, err := d.el.PruneEvents(ctx, now.Add(-d.cfg.Retain)); err != nil && ctx.Err() == nil {
				d.log.Error("prune events", "err", err)
			} else if n > 0 {
				d.log.Info("pruned events and deliveries", "rows", n, "before", now.Add(-d.cfg.Retain))
			}
		}
		if !d.sleep(ctx, wake) {
			return
		}
	}
}

// produceTransitions turns the next transitions into events and reports
// whether there may be more right away.
func (d *Dispatcher) produceTransitions(ctx context.Context, g *gaps) (bool, error) {
	cur, err := d.cursor(ctx, cursorTransitions, d.el.LastTransitionID)
	if err != nil {
		return false, err
	}
	ts, err := d.el.TransitionsAfter(ctx, cur, batchSize)
	if err != nil {
		return false, err
	}
	ids := make([]int64, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	n := g.take(cur, ids, time.Now())
	if n == 0 {
		return false, nil
	}
	evs, err := d.complianceEvents(ctx, ts[:n])
	if err != nil {
		return false, err
	}
	for i := range evs {
		// Pruned by when it was written, not when it happened: a report
		// delivered late must not make its event old on arrival.
		evs[i].RecordedAt = d.cfg.Now()
	}
	moved, err := d.el.AddEvents(ctx, evs, cursorTransitions, cur, ts[n-1].ID)
	if err != nil {
		return false, err
	}
	if moved && len(evs) > 0 {
		d.Wake()
	}
	return n == batchSize || !moved, nil
}

// complianceEvents is the compliance.changed events of transitions: all
// but a first verdict that passes (a new device's passing rules are no
// change to tell anyone about).
func (d *Dispatcher) complianceEvents(ctx context.Context, ts []store.TransitionEntry) ([]store.Event, error) {
	devices := map[string]*store.Device{}
	states := map[string]map[string]store.RuleState{}
	type groupPolicy struct {
		p   *policies.Policy
		ref PolicyRef
		err error
	}
	pols := map[string]groupPolicy{}
	var out []store.Event
	for _, t := range ts {
		if t.From == "" && t.To == store.Pass {
			continue
		}
		dev, ok := devices[t.DeviceID]
		if !ok {
			dv, err := d.st.Device(ctx, t.DeviceID)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return nil, err
			default:
				dev = &dv
			}
			devices[t.DeviceID] = dev
			rs, err := d.st.RuleStates(ctx, t.DeviceID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			m := map[string]store.RuleState{}
			for _, r := range rs {
				m[r.RuleID] = r
			}
			states[t.DeviceID] = m
		}
		data := ComplianceData{Device: DeviceRef{ID: t.DeviceID}, Rule: RuleRef{ID: t.RuleID}, From: t.From, To: t.To, Sequence: t.Sequence}
		if dev != nil {
			data.Device = refOf(*dev)
			gp, ok := pols[dev.Group]
			if !ok {
				gp.p, gp.ref, gp.err = d.policies.of(ctx, d.st, dev.Group)
				pols[dev.Group] = gp
				if gp.err != nil {
					d.log.Warn("policy of a transition's group", "group", dev.Group, "err", gp.err)
				}
			}
			if gp.err == nil {
				data.Policy = gp.ref
				if r := ruleOf(gp.p, t.RuleID); r != nil {
					data.Rule.Title, data.Rule.Severity = r.Title, r.Severity
				}
			}
		}
		if rs, ok := states[t.DeviceID][t.RuleID]; ok {
			if data.Rule.Title == "" {
				data.Rule.Title, data.Rule.Severity = rs.Title, rs.Severity
			}
			if rs.Sequence == t.Sequence && rs.Collector == t.To {
				data.Observed, data.Expected, data.Reason = rs.Observed, rs.Expected, rs.Reason
			}
		}
		out = append(out, newEvent(TypeComplianceChanged, t.At, t.DeviceID, data))
	}
	return out, nil
}

// maxOverdue bounds the overdue events of one step; more wait for the
// next.
const maxOverdue = 5000

// produceOverdue turns the deadlines passed since the last step into
// events, leaving out rules under an active waiver.
func (d *Dispatcher) produceOverdue(ctx context.Context) error {
	now := d.cfg.Now()
	cur, err := d.cursor(ctx, cursorOverdue, func(context.Context) (int64, error) { return now.UnixNano(), nil })
	if err != nil {
		return err
	}
	from := time.Unix(0, cur)
	if !now.After(from) {
		return nil
	}
	pols, refs, err := d.policies.groupRules(ctx, d.st)
	if err != nil {
		return err
	}
	var rules []store.DeadlineRule
	for g, p := range pols {
		for _, r := range p.Rules {
			if r.Grace > 0 {
				rules = append(rules, store.DeadlineRule{Group: g, RuleID: r.ID, Grace: r.Grace})
			}
		}
	}
	os, err := d.el.PassedDeadlines(ctx, rules, from, now, maxOverdue)
	if err != nil {
		return err
	}
	to := now
	if len(os) == maxOverdue {
		// The rest of the window is the next step's.
		to = os[len(os)-1].Deadline
	}
	ws, err := d.st.Waivers(ctx)
	if err != nil {
		return err
	}
	var evs []store.Event
	for _, o := range os {
		if o.Deadline.After(to) {
			break
		}
		if store.FindWaiver(ws, o.Deadline, o.DeviceID, o.Group, o.RuleID) != nil {
			continue
		}
		data := OverdueData{Device: DeviceRef{ID: o.DeviceID, Hostname: o.Hostname, Group: o.Group}, Policy: refs[o.Group],
			Rule: RuleRef{ID: o.RuleID, Title: o.Title}, FailingSince: o.FailingSince.UTC(), Deadline: o.Deadline.UTC(), GraceSeconds: int64(o.Deadline.Sub(o.FailingSince) / time.Second)}
		if r := ruleOf(pols[o.Group], o.RuleID); r != nil {
			data.Rule.Severity = r.Severity
		}
		e := newEvent(TypeOverdue, o.Deadline, o.DeviceID, data)
		e.RecordedAt = now
		evs = append(evs, e)
	}
	moved, err := d.el.AddEvents(ctx, evs, cursorOverdue, cur, to.UnixNano())
	if err == nil && moved && len(evs) > 0 {
		d.Wake()
	}
	return err
}
