//go:build !linux

package daemon

// zombie is false where there is no /proc to tell.
func zombie(int) bool { return false }

// runsDaemon is false where there is no /proc to tell: a daemon that does
// not answer on its socket is then not signalled.
func runsDaemon(int, string) bool { return false }
