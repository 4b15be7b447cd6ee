package report

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/agent/outbox"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// lastSequenceTrailer is the collector's trailer naming the highest
// sequence it holds for this device in the report's epoch
// (server.LastSequenceTrailer).
const lastSequenceTrailer = "ward-last-sequence"

// lastSequenceError is a refused call that came with the collector's
// last sequence. It keeps the call's error (and so its code).
type lastSequenceError struct {
	err  error
	last uint64
}

func (e *lastSequenceError) Error() string { return e.err.Error() }
func (e *lastSequenceError) Unwrap() error { return e.err }

// reportCall calls Report: a failed call whose trailer names the
// collector's last sequence returns a *lastSequenceError.
func (c *Client) reportCall(ctx context.Context, req *wardv1.ReportRequest, compress bool) (*wardv1.ReportResponse, error) {
	resp, _, err := c.agent.report.Call(ctx, req, compress)
	if err == nil {
		return resp, nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil, err
	}
	if v := ce.Meta().Values(lastSequenceTrailer); len(v) == 1 {
		if last, perr := strconv.ParseUint(v[0], 10, 64); perr == nil {
			return nil, &lastSequenceError{err: err, last: last}
		}
	}
	return nil, err
}

// renumber recovers from the collector's AlreadyExists: it holds another
// report under e's (epoch, sequence), as after a state directory was
// restored from a backup. The outbox skips past the collector's last
// sequence and e is queued again under a new sequence, then removed
// (a crash in between sends it twice under two sequences; it never loses
// it). It reports whether it renumbered e.
func (c *Client) renumber(ob *outbox.Outbox, e outbox.Entry, err error) (bool, error) {
	if connect.CodeOf(err) != connect.CodeAlreadyExists {
		return false, nil
	}
	var le *lastSequenceError
	if !errors.As(err, &le) {
		return false, nil // no number to skip to: retry later
	}
	old := e.Sequence()
	if err := ob.SkipTo(max(le.last, old) + 1); err != nil {
		return false, fmt.Errorf("renumber report %d: %w", old, err)
	}
	again := proto.Clone(e.Report).(*wardv1.Report)
	seq, err := ob.Append(again)
	if err != nil {
		return false, fmt.Errorf("renumber report %d: %w", old, err)
	}
	if err := ob.Ack(e); err != nil {
		return false, fmt.Errorf("renumber report %d: %w", old, err)
	}
	c.log.Warn("collector holds another report under this sequence; renumbered", "sequence", old, "new_sequence", seq,
		"collector_last_sequence", le.last)
	return true, nil
}
