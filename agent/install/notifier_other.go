//go:build !linux && !darwin && !windows

package install

// RegisterNotifier returns ErrUnsupported on this OS.
func RegisterNotifier(string) error { return ErrUnsupported }

// UnregisterNotifier returns ErrUnsupported on this OS.
func UnregisterNotifier() error { return ErrUnsupported }
