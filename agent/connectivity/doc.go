// Package connectivity is what the agent knows about its device's
// connection, for deadlines that count connected time only (policy
// "grace: 72h connected", docs/connectivity.md).
//
// UpdateSource reads, through a check.Source, which host the OS fetches
// its updates from (the configured apt, dnf/yum or zypper mirrors on
// Linux, the WSUS server or Windows Update on Windows, Apple's software
// update service on macOS): those hosts, and only those, may be probed.
// Probe asks a Prober (agent/source's Live: a TCP connect, no data sent)
// whether one answers. agent/service keeps, across rounds and restarts,
// the connected time each failing connected-grace rule has had (its
// Ledger).
package connectivity
