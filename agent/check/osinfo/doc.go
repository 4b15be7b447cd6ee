// Package osinfo collects the operating system's identity: platform, name,
// version, build, kernel and architecture.
package osinfo
