package events

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Record appends e to st's outbox. A store without one (not a
// store.EventLog) records nothing.
func Record(ctx context.Context, st store.Store, e store.Event) error {
	el, ok := st.(store.EventLog)
	if !ok {
		return nil
	}
	if _, err := el.AddEvent(ctx, e); err != nil {
		return fmt.Errorf("record %s event: %w", e.Type, err)
	}
	return nil
}

// RecordRevoke records that actor revoked (retired, when retired is
// set) the device id at at; the caller has revoked it already.
func RecordRevoke(ctx context.Context, st store.Store, id, actor string, retired bool, at time.Time) error {
	d, err := st.Device(ctx, id)
	if err != nil {
		return fmt.Errorf("record revocation of %s: %w", id, err)
	}
	return Record(ctx, st, Revoked(d, actor, retired, at))
}

// Recorder records the server's events (server.Config.Events), logging
// what it cannot record: the enrolment it is told of has happened and
// is answered either way.
type Recorder struct {
	Log *slog.Logger
}

// Record appends e to st's outbox.
func (r Recorder) Record(ctx context.Context, st store.Store, e store.Event) {
	if err := Record(ctx, st, e); err != nil {
		log := r.Log
		if log == nil {
			log = slog.Default()
		}
		log.Error("record event", "type", e.Type, "device_id", e.DeviceID, "err", err)
	}
}
