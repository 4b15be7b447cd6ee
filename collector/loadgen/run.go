package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// Mode is how devices arrive.
type Mode string

// Arrival modes.
const (
	// Kept: each device on its own mTLS connection, made before the clock
	// starts and kept, as a daemon between rounds.
	Kept Mode = "kept"
	// Fresh: a new connection per report, TLS handshake included, as
	// agents that report hourly arrive.
	Fresh Mode = "fresh"
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Kept, Fresh:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want kept or fresh", s)
}

// Call limits, as agent/report sets them.
const (
	maxSend = 1 << 20
	maxRecv = 2 << 20
)

// Target is a server devices report to: the collector, or the no-op
// ceiling.
type Target struct {
	// Name labels the results ("ward", "ceiling").
	Name string
	// Addr is HOST:PORT; the server certificate must name HOST.
	Addr string
	// Roots verify the server: the pinned collector CA.
	Roots *x509.CertPool
	// Compact says the server announced the compact report forms before
	// the first report (GetPolicyResponse.compact_reports); each answer
	// says it again.
	Compact bool
	// cert is a device's client certificate for this target (DER).
	cert func(*Device) []byte
}

// WardTarget is the collector at addr, verified against ca, devices
// presenting the certificates it issued them.
func WardTarget(addr string, ca *x509.Certificate) Target {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return Target{Name: "ward", Addr: addr, Roots: pool, cert: func(d *Device) []byte { return d.cert }}
}

// tlsConfig is device d's mutual-TLS configuration for t, as the agent's
// (enroll.Identity.TLSConfig): TLS 1.3, the pinned CA as the only root.
func tlsConfig(t Target, d *Device) *tls.Config {
	host, _, _ := net.SplitHostPort(t.Addr)
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: t.Roots, ServerName: host,
		Certificates: []tls.Certificate{d.clientCert(t.cert(d))}}
}

// RunConfig is one measured run.
type RunConfig struct {
	Mode Mode
	// Rate is the target of reports per second in total; 0 sends flat
	// out, bounded by Concurrency.
	Rate float64
	// Concurrency is how many reports are in flight at most.
	Concurrency int
	// Duration is how long reports are started; calls in flight at its
	// end are waited for and counted.
	Duration time.Duration
	// Warmup sends every device's first report before the clock starts.
	Warmup bool
	// Rounds, instead of Duration, runs until every device had this many
	// reports acknowledged (flat out only), so that a test's counts do
	// not depend on the machine's speed.
	Rounds int
	// Timeout bounds each call (agent/report's DefaultCallTimeout, 15 s,
	// if 0).
	Timeout time.Duration
	// Unsealed sends reports without a seal, as agents before evidence
	// did, to compare with sealed ones (the default: each report sealed
	// by its device's key, chained per epoch, as the agent's outbox
	// seals it).
	Unsealed bool
}

// RunResult is what one run measured. Latency is from the moment a
// report was due (at a target rate: its scheduled time, so a queue shows)
// to its acknowledgement.
type RunResult struct {
	Target string `json:"target"`
	Mode   Mode   `json:"mode"`
	// Sealed says the reports carried seals (RunConfig.Unsealed false).
	Sealed      bool    `json:"sealed"`
	Rate        float64 `json:"target_rate"`
	Devices     int     `json:"devices"`
	Concurrency int     `json:"concurrency"`
	// Seconds is the run's wall time: Duration and the wait for the
	// calls in flight at its end.
	Seconds float64 `json:"seconds"`
	// Acknowledged counts reports the server acknowledged (their
	// sequence), calls still in flight at the end of Duration included.
	// PerSec is those acknowledged within Duration, per second of it: the
	// wait for the last calls is not part of the rate.
	Acknowledged int64   `json:"acknowledged"`
	PerSec       float64 `json:"reports_per_second"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	// Errors counts failed calls by gRPC code.
	Errors map[string]int64 `json:"errors,omitempty"`
	// Bytes sent and received on the wire below TLS in the measured part
	// (fresh mode: handshakes included), and their sum per acknowledged
	// report.
	BytesSent      int64   `json:"bytes_sent"`
	BytesReceived  int64   `json:"bytes_received"`
	BytesPerReport float64 `json:"bytes_per_report"`
	SentPerReport  float64 `json:"sent_per_report"`
	// Connections counts TCP connections opened in the measured part.
	Connections int64 `json:"connections"`
	// Warmup counts the first reports acknowledged before the clock
	// started (RunConfig.Warmup), not in the figures above.
	Warmup int64 `json:"warmup_acknowledged"`
	// Unchanged counts reports sent as unchanged rounds (by their facts'
	// digest), Resent those the server then asked for in full.
	Unchanged int64 `json:"unchanged"`
	Resent    int64 `json:"resent_in_full"`
	// SealMicros is the load generator's own time to seal a report
	// (statement, ECDSA signature), microseconds on average: work a
	// real fleet does on its own machines, done here on the
	// collector's cores.
	SealMicros float64 `json:"seal_us_per_report,omitempty"`

	// devices is each device's outcome, for Verify.
	devices []deviceRun
}

// deviceRun is a device's state in a run: the next sequence, the last
// acknowledged one, and the report it is trying to deliver.
type deviceRun struct {
	next, acked uint64
	// compact: the server takes compact forms; base is the variant of
	// the report it acknowledged last in compact form (-1: none), what an
	// Unchanged report names.
	compact bool
	base    int8
	// pending is the collected_at of the report being delivered (zero:
	// none); unsure says its last attempt failed in a way that may have
	// stored it.
	pending time.Time
	unsure  bool
	// seal is the pending report's seal, made once when it became
	// pending and sent with every attempt; head is the statement hash
	// of the device's last sealed report in the run (nil: none yet, the
	// next chains to the epoch's genesis).
	seal *wardv1.ReportSeal
	head []byte
}

// Run sends reports of devs to t for cfg.Duration and measures them. Each
// device numbers its reports 1, 2, … in its epoch, one in flight at a
// time, and delivers a failed one again, unchanged, before the next, as
// the agent's outbox does.
func Run(ctx context.Context, t Target, devs []*Device, p *Payloads, cfg RunConfig) (*RunResult, error) {
	if len(devs) == 0 {
		return nil, errors.New("no devices")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	switch {
	case cfg.Rounds > 0 && cfg.Rate > 0:
		return nil, errors.New("rounds are run flat out, not at a rate")
	case cfg.Rounds <= 0 && cfg.Duration <= 0:
		return nil, errors.New("a run needs a duration or rounds")
	}
	if _, _, err := net.SplitHostPort(t.Addr); err != nil {
		return nil, fmt.Errorf("address %q: want HOST:PORT", t.Addr)
	}
	w := &wire{}
	tlsFor := func(d *Device) *tls.Config { return tlsConfig(t, d) }
	var err error
	opts := []grpc.DialOption{
		grpc.WithContextDialer(w.dial),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxSend), grpc.MaxCallRecvMsgSize(maxRecv), grpc.WaitForReady(true)),
	}
	var conns []*grpc.ClientConn
	if cfg.Mode == Kept {
		conns, err = connectAll(ctx, t.Addr, devs, tlsFor, opts, cfg)
		defer func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}()
		if err != nil {
			return nil, err
		}
	}
	runs := make([]deviceRun, len(devs))
	for i := range runs {
		runs[i].next, runs[i].compact, runs[i].base = 1, t.Compact, -1
	}
	var unchanged, resent, sealed, sealNanos atomic.Int64
	send := func(i int) error {
		d, r := devs[i], &runs[i]
		if r.pending.IsZero() {
			at := time.Now()
			if !cfg.Unsealed {
				// Sealed once, when the report is made, as the agent's
				// outbox seals it on Append: a retry sends the same seal.
				prev := r.head
				if prev == nil {
					prev = evidence.Genesis(d.ID, d.Epoch, t.cert(d))
				}
				seal, hash, err := p.Seal(d.key, d.ID, i, d.Epoch, r.next, at, prev)
				if err != nil {
					return err
				}
				sealNanos.Add(int64(time.Since(at)))
				sealed.Add(1)
				r.seal, r.head = seal, hash
			}
			r.pending = at
		}
		seq := r.next
		conn := (*grpc.ClientConn)(nil)
		if conns != nil {
			conn = conns[i]
		} else {
			c, err := dialDevice(t.Addr, opts, tlsFor(d))
			if err != nil {
				return err
			}
			defer c.Close()
			conn = c
		}
		client := wardv1grpc.NewAgentServiceClient(conn)
		form := Legacy
		if r.compact {
			form = Full
			if p.sameFacts(i, seq, r.base) {
				form = Unchanged
			}
		}
		callCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		request := func(form Form) *wardv1.ReportRequest {
			req := p.Request(i, d.Epoch, seq, r.pending, form)
			req.Report.Seal = r.seal
			return req
		}
		resp, err := report(callCtx, client, request(form), r.compact)
		if form == Unchanged {
			unchanged.Add(1)
		}
		if form == Unchanged && status.Code(err) == codes.FailedPrecondition {
			// The collector no longer holds those facts as the newest:
			// the agent sends the report in full at once.
			resent.Add(1)
			r.base, form = -1, Full
			resp, err = report(callCtx, client, request(form), r.compact)
		}
		if err == nil && (resp.AckedSequence != seq || (resp.AckedEpoch != 0 && resp.AckedEpoch != d.Epoch)) {
			err = fmt.Errorf("%w: sent epoch %d sequence %d, acknowledged epoch %d sequence %d",
				errWrongAck, d.Epoch, seq, resp.AckedEpoch, resp.AckedSequence)
		}
		if err != nil {
			r.unsure = r.unsure || mayBeStored(err)
			return err
		}
		r.acked, r.next, r.pending, r.unsure, r.seal = seq, seq+1, time.Time{}, false, nil
		r.compact, r.base = resp.CompactReports, -1
		if form != Legacy && r.compact {
			r.base = variantOf(i, seq)
		}
		return nil
	}

	var warmed atomic.Int64
	if cfg.Warmup {
		// Every device's first report, before the clock: a fleet in
		// steady state sends rounds whose base the collector holds, and
		// the faster target must not get more of those cheaper rounds
		// only because it got more rounds per device.
		var next atomic.Int64
		var wg sync.WaitGroup
		for range cfg.Concurrency {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(devs) || ctx.Err() != nil {
						return
					}
					if send(i) == nil {
						warmed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		unchanged.Store(0)
		resent.Store(0)
	}
	sent0, received0 := w.snapshot()
	dials0 := w.dials.Load()
	idle := make(chan int, len(devs))
	for i := range devs {
		idle <- i
	}
	start := time.Now()
	end := start.Add(cfg.Duration)
	var left atomic.Int64 // devices yet to make their Rounds
	if cfg.Rounds > 0 {
		end = start.Add(100 * 365 * 24 * time.Hour)
		left.Store(int64(len(devs)))
	}
	var jobs chan time.Time
	if cfg.Rate > 0 {
		jobs = make(chan time.Time, cfg.Concurrency)
		go schedule(ctx, jobs, start, end, cfg.Rate)
	}
	lat := make([][]time.Duration, cfg.Concurrency)
	errs := make([]map[string]int64, cfg.Concurrency)
	var acked, inWindow atomic.Int64
	var wg sync.WaitGroup
	for wi := range cfg.Concurrency {
		errs[wi] = map[string]int64{}
		wg.Go(func() {
			for {
				var due time.Time
				if jobs != nil {
					at, ok := <-jobs
					if !ok {
						return
					}
					due = at
				} else {
					due = time.Now()
					if !due.Before(end) || ctx.Err() != nil {
						return
					}
				}
				i, ok := <-idle
				if !ok {
					return // every device made its rounds
				}
				err := send(i)
				if cfg.Rounds > 0 && runs[i].acked >= uint64(cfg.Rounds) {
					if left.Add(-1) == 0 {
						close(idle)
					}
				} else {
					idle <- i
				}
				if err != nil {
					errs[wi][errorName(err)]++
					continue
				}
				acked.Add(1)
				done := time.Now()
				if !done.After(end) {
					inWindow.Add(1)
				}
				lat[wi] = append(lat[wi], done.Sub(due))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	window := cfg.Duration
	if cfg.Rounds > 0 {
		window = elapsed
	}
	// Kept connections are closed after the counters are read: closing
	// is not part of a report.
	sent, received := w.snapshot()
	res := &RunResult{
		Target: t.Name, Mode: cfg.Mode, Sealed: !cfg.Unsealed, Rate: cfg.Rate, Devices: len(devs), Concurrency: cfg.Concurrency,
		Seconds: elapsed.Seconds(), Acknowledged: acked.Load(), PerSec: float64(inWindow.Load()) / window.Seconds(),
		BytesSent: sent - sent0, BytesReceived: received - received0, Connections: w.dials.Load() - dials0,
		Unchanged: unchanged.Load(), Resent: resent.Load(), Warmup: warmed.Load(),
		devices: runs,
	}
	if n := sealed.Load(); n > 0 {
		res.SealMicros = float64(sealNanos.Load()) / float64(n) / 1e3
	}
	if res.Acknowledged > 0 {
		res.BytesPerReport = float64(res.BytesSent+res.BytesReceived) / float64(res.Acknowledged)
		res.SentPerReport = float64(res.BytesSent) / float64(res.Acknowledged)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.P50ms, res.P99ms, res.MaxMs = ms(quantile(all, 0.50)), ms(quantile(all, 0.99)), ms(quantile(all, 1))
	for _, m := range errs {
		for k, v := range m {
			if res.Errors == nil {
				res.Errors = map[string]int64{}
			}
			res.Errors[k] += v
		}
	}
	return res, ctx.Err()
}

// gzipAbove is the encoded size above which a report to a server that
// takes compact forms is compressed, as agent/report compresses it.
const gzipAbove = 512

func init() {
	// agent/report's level: the collector's CPU per report matters more
	// than the last bytes.
	if err := gzip.SetLevel(1); err != nil {
		panic(err)
	}
}

// report makes the call as agent/report does: compressed when compact
// and large.
func report(ctx context.Context, c wardv1grpc.AgentServiceClient, req *wardv1.ReportRequest, compact bool) (*wardv1.ReportResponse, error) {
	if compact && proto.Size(req) > gzipAbove {
		return c.Report(ctx, req, grpc.UseCompressor(gzip.Name))
	}
	return c.Report(ctx, req)
}

// errWrongAck: the server acknowledged another report than the one sent.
var errWrongAck = errors.New("wrong acknowledgement")

// errorName is how a failed call is counted: its gRPC code, or WrongAck.
func errorName(err error) string {
	if errors.Is(err, errWrongAck) {
		return "WrongAck"
	}
	return codeName(err)
}

// mayBeStored reports whether a failed call may have been stored all the
// same (the answer was lost, or the server failed after storing): only
// refusals before anything is written are known not to be.
func mayBeStored(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.ResourceExhausted, codes.Unauthenticated, codes.PermissionDenied,
		codes.AlreadyExists, codes.FailedPrecondition, codes.Unimplemented:
		return false
	}
	return true
}

// connectAll opens a connection per device, cfg.Concurrency at a time,
// and waits until each is ready (handshake done).
func connectAll(ctx context.Context, addr string, devs []*Device, tlsFor func(*Device) *tls.Config, opts []grpc.DialOption, cfg RunConfig) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, len(devs))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, cfg.Concurrency)
	for w := range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(devs) || errs[w] != nil {
					return
				}
				c, err := dialDevice(addr, opts, tlsFor(devs[i]))
				if err != nil {
					errs[w] = err
					return
				}
				conns[i] = c
				if err := ready(ctx, c, cfg.Timeout); err != nil {
					errs[w] = fmt.Errorf("connect device %s: %w", devs[i].ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return conns, errors.Join(errs...)
}

// dialDevice prepares a connection to addr with opts and a device's TLS
// configuration.
func dialDevice(addr string, opts []grpc.DialOption, cfg *tls.Config) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, slices.Concat(opts, []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))})...)
}

// ready connects c and waits until it is ready, for at most timeout.
func ready(ctx context.Context, c *grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.Connect()
	for s := c.GetState(); s != connectivity.Ready; s = c.GetState() {
		if !c.WaitForStateChange(ctx, s) {
			return fmt.Errorf("not ready within %s (%s)", timeout, s)
		}
	}
	return nil
}

// schedule sends on jobs the times reports are due at rate per second
// from start until end, and closes it. When the workers fall behind, due
// times pile up in the past rather than being skipped, so latency counts
// the wait.
func schedule(ctx context.Context, jobs chan<- time.Time, start, end time.Time, rate float64) {
	defer close(jobs)
	every := time.Duration(float64(time.Second) / rate)
	for n := int64(0); ; n++ {
		at := start.Add(time.Duration(n) * every)
		if !at.Before(end) {
			return
		}
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		select {
		case jobs <- at:
		case <-ctx.Done():
			return
		}
	}
}

// quantile is the q-quantile of sorted (nearest rank), 0 if empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
