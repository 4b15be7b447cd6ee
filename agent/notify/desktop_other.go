//go:build !linux && !darwin

package notify

// DesktopUsers returns no one: Ward does not tell who is logged in at the
// computer on this OS. On Windows the status is not kept per user (see
// the package documentation); elsewhere only root may read it.
func DesktopUsers() ([]User, error) { return nil, nil }

// DesktopUsersRecorded reports false: on this OS Ward does not tell who
// is logged in at the computer.
func DesktopUsersRecorded() bool { return false }
