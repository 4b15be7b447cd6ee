package cli

import "golang.org/x/sys/windows"

// processElevated reports whether this process runs with an elevated
// (administrator) token.
func processElevated() bool { return windows.GetCurrentProcessToken().IsElevated() }
