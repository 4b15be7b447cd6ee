// Package source provides Ward's check.Source implementations: the live
// Source of each operating system (the only code in Ward that runs
// programs), the Recorded Source that replays a support bundle, and the
// Recorder that captures every read into one.
//
// Live sources run only allow-listed tools by absolute path, with argv, a
// context timeout and capped output. On a platform without an interface
// (the registry on Linux) they return check.ErrUnsupported.
package source
