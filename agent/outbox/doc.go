// Package outbox is the agent's durable queue of reports waiting for the
// collector. Each report is one checksummed file named by its sequence
// number, written with temp file + fsync + rename + directory fsync; the
// next sequence number and the count of compacted reports live in
// meta.json, written the same way. See docs/outbox.md for the format and
// the crash guarantees.
//
// Logs: info = compaction; warn = an entry was quarantined; error = the
// sequence counters were lost.
package outbox
