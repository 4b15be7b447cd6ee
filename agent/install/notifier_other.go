//go:build !linux && !darwin && !windows

package install

// RegisterNotifier returns ErrUnsupported on this OS.
func (Layout) RegisterNotifier() error { return ErrUnsupported }

// UnregisterNotifier returns ErrUnsupported on this OS.
func (Layout) UnregisterNotifier() (bool, error) { return false, ErrUnsupported }
