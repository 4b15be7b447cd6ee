// Package cli implements ward-agent's commands (cobra): check, bundle and
// version. It only wires collectors, the policy engine and output; the
// checks themselves live in agent/check.
//
// Exit codes of `ward-agent check`: 0 every applicable rule passed, 1 at
// least one rule failed, 2 nothing failed but some rules are unknown, 3 a
// usage or input error (bad flag, unreadable policy or bundle), 4 an
// internal error.
//
// Memory. Peak RSS is measured on the release build (CGO_ENABLED=0 go
// build -trimpath -ldflags="-s -w" ./agent/cmd/ward-agent) with
// /usr/bin/time -v, "Maximum resident set size". That figure is the
// largest of the process and the programs it ran (apt-get alone is 80
// MiB), so the agent's own peak is read from a replayed bundle (check
// --replay agent/testdata/bundles/linux-debian12-sandbox) or as VmHWM in
// /proc/PID/status. Most of it is the binary's own pages (the heap peaks
// at 4 MiB with 2 MiB live): every package linked is initialised at
// start, and gRPC, which proto/ward/v1 imports for its service stubs,
// is loaded by every command; the same check built without gRPC peaks
// about 5 MiB lower. The daemon gives each round's memory back to the OS
// after the round's delivery attempt (serve).
package cli
