package notify

import "context"

// Show posts the notice with osascript. The texts go in as argv, never
// into the script, so no quoting can break out.
func (n native) Show(ctx context.Context, nt Notice) error {
	return n.run(ctx, "osascript", osascriptArgs(nt)...)
}
