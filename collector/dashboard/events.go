package dashboard

import (
	"context"

	"github.com/wardhq/ward/collector/events"
)

// recordRevoke records a device's revocation (or retirement) by user for
// webhooks and the SIEM stream (package events). The revocation is done
// and audited; a failure to record it is logged, not shown as a failure.
func (h *handler) recordRevoke(ctx context.Context, id, user string, retired bool) {
	if err := events.RecordRevoke(ctx, h.st, id, user, retired, h.now()); err != nil {
		h.log.Error("record revocation event", "device_id", id, "err", err)
	}
}
