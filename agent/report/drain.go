package report

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wardhq/ward/agent/outbox"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// send delivers one queued report: it waits for the rate the collector
// allows this device, says how long the report has waited in the outbox,
// sends it in the form the collector takes (compact.go), and learns the
// allowed rate and the collector's forms from the answer.
func (c *Client) send(ctx context.Context, e outbox.Entry) (*wardv1.ReportResponse, error) {
	if err := c.pace.wait(ctx); err != nil {
		return nil, err
	}
	queued := queuedMillis(e.Queued, time.Now())
	sent := c.Wire(e.Report)
	resp, err := c.call(ctx, &wardv1.ReportRequest{Report: sent, QueuedMillis: queued})
	if err != nil && c.wire.refused(sent, e.Report, err) {
		c.log.Info("collector did not take the compact report; sending it in full", "sequence", e.Sequence(), "err", err)
		sent = c.Wire(e.Report)
		resp, err = c.call(ctx, &wardv1.ReportRequest{Report: sent, QueuedMillis: queued})
	}
	if err != nil {
		return nil, err
	}
	c.pace.follow(resp.GetRatePerSecond(), resp.GetBurst())
	c.wire.learn(resp.GetCompactReports(), resp.GetPolicyName(), resp.GetPolicyVersion())
	c.wire.acked(sent, e.Report, c.deviceID())
	return resp, nil
}

func (c *Client) call(ctx context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.CallTimeout)
	defer cancel()
	return c.reportCall(ctx, req, c.compress())
}

// queuedMillis is how long a report written at queued has waited by now;
// zero when the write time is unknown or the clock went back.
func queuedMillis(queued, now time.Time) uint64 {
	if queued.IsZero() || now.Before(queued) {
		return 0
	}
	return uint64(now.Sub(queued).Milliseconds())
}

// pacer spaces reports at the rate the collector last said it allows
// this device (ReportResponse.rate_per_second and burst). Until the
// collector names a rate, or when it names none (zero: unknown), sends
// are not paced and a refusal is left to Retry. The zero pacer is ready.
type pacer struct {
	mu  sync.Mutex
	lim *rate.Limiter
}

// wait blocks until the next send is within the allowed rate, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	lim := p.lim
	p.mu.Unlock()
	if lim == nil {
		return nil
	}
	return lim.Wait(ctx)
}

// follow adopts the rate the collector announced.
func (p *pacer) follow(perSecond float64, burst uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if perSecond <= 0 {
		p.lim = nil // unknown: Retry's backoff paces refusals
		return
	}
	b := max(int(burst), 1)
	if p.lim == nil {
		// The collector's bucket is already being spent by the sends
		// so far: start empty rather than with a full burst.
		p.lim = rate.NewLimiter(rate.Limit(perSecond), b)
		p.lim.AllowN(time.Now(), b)
		return
	}
	if p.lim.Limit() != rate.Limit(perSecond) {
		p.lim.SetLimit(rate.Limit(perSecond))
	}
	if p.lim.Burst() != b {
		p.lim.SetBurst(b)
	}
}
