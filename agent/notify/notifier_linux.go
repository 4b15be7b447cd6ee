package notify

import "context"

// Show sends the notice to the desktop's notification server over D-Bus
// with notify-send, under AppName (a discreet notice under none).
func (n native) Show(ctx context.Context, nt Notice) error {
	return n.run(ctx, "notify-send", notifySendArgs(nt)...)
}
