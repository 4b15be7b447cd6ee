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
// /proc/PID/status; the daemon between rounds is VmRSS of `ward-agent
// daemon --state S --status-dir D --interval 1h` once `status --service
// --state S` says "last delivery: delivered" (a collector from
// `ward-collector serve`, the device enrolled with `ward-agent enroll`).
//
// Most of it is the binary's own pages: every package linked is
// initialised and paged in at start, whichever command runs, and the
// kernel maps a file page's neighbours with it, so RSS follows how much
// of the binary a process touches, not the heap (which peaks at 4 MiB with
// under 1 MiB live). No command links grpc-go (TestAgentLinksNoGRPC): the
// agent calls the collector through agent/rpc. So the daemon runs each
// round (collection, evaluation, delivery) in a child process, `ward-agent
// round` (docs/lifecycle.md): the long-lived process never touches that
// code, and holds about what an idle daemon does. check (and a round)
// compile the policy with the GC at a quarter of its target and collect
// its garbage before collecting facts (compactLoad). Measured 2026-12-01
// on the sandbox (2 cores, heavily loaded; a child's VmHWM sampled every
// 20 ms), five or more runs each, grpc-go -> without grpc-go -> rounds in
// a child:
//
//	version                          16.2-16.5 -> 13.4-13.8 -> 13.5-13.8 MiB
//	check --replay (sandbox bundle)  24.0-24.7 -> 21.1-21.5 -> 19.8-20.2 MiB
//	check, live (own VmHWM)                    -> 21.3-21.5 -> 19.8-21.1 MiB
//	enroll                           18.9      -> 15.5-15.8 MiB
//	daemon between rounds (VmRSS)    27.6-27.8 -> 22.9-23.1 -> 15.6-15.7 MiB
//	  of which file pages (RssFile)  19.4-20.0 -> 15.7-15.9 -> 12.5 MiB
//	  the daemon's peak (VmHWM)                             -> 15.6-15.8 MiB
//	daemon not enrolled, idle                  -> 14.6-14.8 -> 14.8 MiB
//	a round's child (VmHWM)                               -> 21.8-22.5 MiB
//
// The binary went from 22.0 to 17.5 MiB. The daemon gives what a round
// cost it (the child's output, the status it publishes) back to the OS
// after each round (serve).
package cli
