// Package loadgen is ward-loadgen's engine: it enrols simulated devices
// through a running collector's EnrollmentService, sends reports built
// from the agent's replay bundles (agent/testdata/bundles, through
// agent/collect, so the facts are the ones real machines produced) and
// measures throughput, latency, errors and bytes on the wire, then checks
// the collector's store against what was acknowledged.
//
// A device is a key, two certificates and a few counters (Device,
// deviceRun): thousands fit in one process. Payloads are shared: per
// bundle the captured facts and a flipped variant (firewall and patch
// state reversed), evaluated once against the group's policy as the agent
// evaluates before reporting. One device in four flips every FlipEvery
// reports, so verdicts change and the collector records transitions.
//
// Reports go in the forms the agent sends (agent/report's compact.go) to
// a collector that announces compact_reports: results without texts, the
// pending updates as a digest where the policy reads no names, an
// unchanged round by its facts' digest, gzip above 512 bytes; so bytes
// per report are the agent's.
//
// Each device numbers its reports 1, 2, … in its enrolment epoch with one
// in flight, and after a failure delivers the same report again before
// the next, as the agent's outbox does; so every report is new to the
// collector, and after a run "stored = acknowledged" is exact: Verify
// allows only the one report per device whose answer was lost.
//
// Reports are sealed as the agent seals them (docs/evidence.md): when a
// report is made, evidence.Seal signs its statement with the device's
// key, chained to the device's previous report of the run, the first to
// evidence.Genesis of the device's certificate from its enrolment; every
// attempt and form (full, compact, unchanged) carries that one seal,
// which is over the full report. RunConfig.Unsealed (ward-loadgen
// --seal=false) sends them unsealed, to measure what sealing costs.
// Since a device never skips a sequence nor seals one twice, Verify also
// requires that the store recorded no chain gap or fork in its epoch.
//
// The yardstick is the Ceiling: the same client loop, payloads and mode
// against a gRPC server with the collector's mTLS setup whose Report
// acknowledges at once (in a process of its own under ward-loadgen). Figures are quoted as a share of it,
// measured in the same run, because the machine's speed is not constant
// (other processes share its cores).
package loadgen
