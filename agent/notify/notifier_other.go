//go:build !linux && !darwin && !windows

package notify

import (
	"context"
	"fmt"
)

// Show has no desktop notification tool to use on this OS.
func (n native) Show(context.Context, Notice) error {
	return fmt.Errorf("notify: %w", ErrUnsupported)
}
