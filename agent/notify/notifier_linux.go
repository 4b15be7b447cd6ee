package notify

import "context"

// Show sends the notice to the desktop's notification server over D-Bus
// with notify-send.
func (n native) Show(ctx context.Context, nt Notice) error {
	return n.run(ctx, "notify-send", "--app-name=Ward", "--urgency=normal", "--", nt.Summary, nt.Body)
}
