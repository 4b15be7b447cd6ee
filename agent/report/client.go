package report

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/rpc"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Call limits.
const (
	// DefaultCallTimeout bounds each call, including the wait for a
	// connection.
	DefaultCallTimeout = 15 * time.Second
	maxSend            = outbox.MaxReportSize + 1024
	maxRecv            = 2 << 20
	// maxExhausted is how many ResourceExhausted answers in a row one
	// report may get before it is quarantined: rate limiting passes, a
	// report the collector finds too big does not.
	maxExhausted = 8
)

// Client talks to the collector as the enrolled device.
type Client struct {
	conn  *rpc.Conn
	agent agentService
	log   *slog.Logger
	epoch uint64 // the enrolment's (identity.go)
	// CallTimeout bounds each call (default DefaultCallTimeout).
	CallTimeout time.Duration

	// Now is the clock renewal follows (default time.Now).
	Now func() time.Time

	idMu sync.Mutex       // guards id's replacement (Identity reads it from other goroutines)
	id   *enroll.Identity // renew.go

	exhaustedSeq   uint64
	exhaustedCount int
	pace           pacer     // the collector's allowed rate (drain.go)
	wire           wireState // the report forms it takes (compact.go)
}

// Dial prepares a client for the identity's collector. It does not
// connect until the first call.
func Dial(id *enroll.Identity, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if id.Collector == "" {
		return nil, errors.New("identity names no collector")
	}
	conn, agent := dialConn(id)
	return &Client{conn: conn, agent: agent, log: log, epoch: id.Epoch,
		CallTimeout: DefaultCallTimeout, Now: time.Now, id: id}, nil
}

// agentService is AgentService's methods.
type agentService struct {
	report    *rpc.Unary[wardv1.ReportRequest, wardv1.ReportResponse]
	getPolicy *rpc.Unary[wardv1.GetPolicyRequest, wardv1.GetPolicyResponse]
	renew     *rpc.Unary[wardv1.RenewRequest, wardv1.RenewResponse]
}

// dialConn prepares calls to the identity's collector over mutual TLS.
// HTTP/2's stream windows stay at their static 64 KiB, as gRPC starts
// with: no bandwidth-delay pings after each answer (39 to 52 bytes a
// round on the wire, docs/enrolment.md "Report size") for messages this
// small.
func dialConn(id *enroll.Identity) (*rpc.Conn, agentService) {
	conn := rpc.Dial(id.Collector, id.TLSConfig())
	l := rpc.Limits{MaxSend: maxSend, MaxRecv: maxRecv}
	return conn, agentService{
		report:    rpc.NewUnary[wardv1.ReportRequest, wardv1.ReportResponse](conn, rpc.MethodReport, rpc.Limits{MaxSend: maxSend, MaxRecv: maxRecv, GzipAbove: gzipAbove}),
		getPolicy: rpc.NewUnary[wardv1.GetPolicyRequest, wardv1.GetPolicyResponse](conn, rpc.MethodGetPolicy, l),
		renew:     rpc.NewUnary[wardv1.RenewRequest, wardv1.RenewResponse](conn, rpc.MethodRenew, l),
	}
}

// Close closes the idle connections.
func (c *Client) Close() error {
	c.conn.Close()
	return nil
}

// Report sends one report, uncompressed.
func (c *Client) Report(ctx context.Context, r *wardv1.Report) (*wardv1.ReportResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.CallTimeout)
	defer cancel()
	return c.reportCall(ctx, &wardv1.ReportRequest{Report: r}, false)
}

// GetPolicy asks for the device's policy and waivers, which come back
// only when they differ from hash (or, with no hash, name and version),
// and the release feed, which comes only when its serial is not
// feedSerial (the held one, 0 for none).
func (c *Client) GetPolicy(ctx context.Context, name string, version int, hash string, feedSerial uint64) (*wardv1.GetPolicyResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.CallTimeout)
	defer cancel()
	resp, _, err := c.agent.getPolicy.Call(ctx, &wardv1.GetPolicyRequest{CurrentName: name, CurrentVersion: int32(version), CurrentHash: hash, CurrentFeedSerial: feedSerial}, false)
	if err == nil {
		if resp.Changed {
			name, version = resp.Name, int(resp.Version)
		}
		c.wire.learn(resp.CompactReports, name, int32(version))
	}
	return resp, err
}

// Deliver sends the queued reports oldest first until the queue is empty
// (nil error), a call fails in a way worth retrying later (the error), or
// ctx ends. Each acknowledged report is deleted from the outbox, and
// onAck, when not nil, sees each response. It returns how many reports
// the collector acknowledged.
func (c *Client) Deliver(ctx context.Context, ob *outbox.Outbox, onAck func(*wardv1.ReportResponse)) (int, error) {
	sent := 0
	c.renewIfDue(ctx)
	for {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		e, ok, err := ob.Next()
		if err != nil {
			return sent, err
		}
		if !ok {
			return sent, nil
		}
		if e.Report.Epoch == 0 && e.Report.Seal == nil {
			// A sealed report keeps the epoch it was sealed in.
			e.Report.Epoch = c.epoch
		}
		seq := e.Sequence()
		resp, err := c.send(ctx, e)
		if err != nil {
			if renumbered, rerr := c.renumber(ob, e, err); renumbered || rerr != nil {
				if rerr != nil {
					return sent, rerr
				}
				continue
			}
			if c.refused(seq, e.Report, err) {
				c.log.Warn("collector refused a report; quarantined", "sequence", seq, "err", err)
				ob.Quarantine(seq, err)
				continue
			}
			return sent, fmt.Errorf("deliver report %d: %w", seq, err)
		}
		c.exhaustedSeq, c.exhaustedCount = 0, 0
		if resp.AckedSequence != seq {
			return sent, fmt.Errorf("deliver report %d: collector acknowledged %d", seq, resp.AckedSequence)
		}
		if err := ob.Ack(e); err != nil {
			return sent, err
		}
		sent++
		if onAck != nil {
			onAck(resp)
		}
	}
}

// refused reports whether err means the collector will never take this
// report, so that retrying it would block the queue forever.
func (c *Client) refused(seq uint64, r *wardv1.Report, err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument:
		return true
	case connect.CodeResourceExhausted:
		if proto.Size(r) > maxSend {
			return true
		}
		if c.exhaustedSeq != seq {
			c.exhaustedSeq, c.exhaustedCount = seq, 0
		}
		c.exhaustedCount++
		return c.exhaustedCount >= maxExhausted
	}
	return false
}

// Permanent reports whether a delivery error needs a person (a revoked
// or expired certificate: enrol again) rather than time.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code() {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return true
	}
	return false
}
