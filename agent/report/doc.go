// Package report is the enrolled agent's client of the collector's
// AgentService (gRPC, called through agent/rpc): it delivers queued reports
// to the collector over mutual TLS, in sequence order, deleting each from
// the outbox when the collector acknowledges it, and keeps the device's
// policy in step with the collector's.
//
// Failed calls are classified: a report the collector refuses as invalid
// (InvalidArgument), or as too large, is quarantined so that it never
// blocks the queue; everything else (Unavailable, DeadlineExceeded, rate
// limiting, a revoked certificate) leaves the report queued and the caller
// waits Backoff before trying again. A report the collector answers
// AlreadyExists (another report holds its (epoch, sequence), as after a
// state directory was restored) is renumbered after the collector's last
// sequence and sent again; see docs/outbox.md, "Report identity".
//
// Logs: info = a policy was adopted; warn = a report was quarantined or a
// policy from the collector was refused, or a report was renumbered.
package report
