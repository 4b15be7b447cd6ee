// Package service is the agent's main loop: collect the device's facts,
// evaluate them against the cached policy (the embedded baseline until the
// collector has sent one), queue the report in the durable outbox, and
// deliver the queue to the collector.
//
// Run collects every Interval (±10 % jitter, so a fleet does not report in
// step) and, between collections, retries delivery with report.Backoff
// while reports are waiting. It ends when its context is cancelled.
//
// The daemon runs the same loop as a Supervisor: each round (Round) in a
// child process that exits after it, the schedule (collection every
// Interval, delivery retries with backoff) in the daemon, so the
// long-lived process never runs collection, evaluation or delivery and
// keeps none of their code pages or memory between rounds.
//
// Deadlines count from a device's first observed failure of a rule: the
// failure times are kept in failing_since.json in the state directory.
//
// Logs: info = a round's outcome; warn = delivery failed and will be
// retried; error = a report could not be queued, or the collector refuses
// this device (enrol again).
package service
