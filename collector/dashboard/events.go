package dashboard

import (
	"context"
	"net/http"
	"time"

	"github.com/wardhq/ward/collector/events"
	"github.com/wardhq/ward/collector/store"
)

// recordRevoke records a device's revocation (or retirement) by user for
// webhooks and the SIEM stream (package events). The revocation is done
// and audited; a failure to record it is logged, not shown as a failure.
func (h *handler) recordRevoke(ctx context.Context, id, user string, retired bool) {
	if err := events.RecordRevoke(ctx, h.st, id, user, retired, h.now()); err != nil {
		h.log.Error("record revocation event", "device_id", id, "err", err)
	}
}

// webhooksData is the delivery log page's.
type webhooksData struct {
	// Available is false when the store keeps no delivery log.
	Available  bool
	Deliveries []store.Delivery
	// Counts are the shown attempts by outcome.
	Delivered, Retried, Failed int
}

// maxDeliveriesShown bounds the delivery log page; the CLI lists more.
const maxDeliveriesShown = 200

// webhooks shows the newest webhook delivery attempts (admins only: the
// log names the receiver and its errors).
func (h *handler) webhooks(w http.ResponseWriter, r *http.Request) {
	var d webhooksData
	if el, ok := h.st.(store.EventLog); ok {
		ds, err := el.Deliveries(r.Context(), maxDeliveriesShown)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		for i := range ds {
			ds[i].Duration = ds[i].Duration.Round(time.Millisecond)
		}
		d.Available, d.Deliveries = true, ds
		for _, x := range ds {
			switch x.Outcome {
			case store.DeliveryDelivered:
				d.Delivered++
			case store.DeliveryRetry:
				d.Retried++
			case store.DeliveryFailed:
				d.Failed++
			}
		}
	}
	h.render(w, r, "webhooks", page{Title: "Webhook deliveries", Nav: "webhooks", Data: d})
}
