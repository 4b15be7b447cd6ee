// Package evidence makes Ward's reports evidence an auditor can verify
// without trusting the collector (docs/evidence.md).
//
// The agent seals every report: it signs, with its device key, the
// report's statement (ReportStatement: identity, times, policy, the
// facts by digest, connectivity and the hash of the report before it in
// its epoch), so reports form one hash chain per epoch that starts at
// the epoch's genesis, the hash of its enrolment record. The collector
// verifies seals on receipt, records gaps and forks in the chains, and
// exports evidence files (collector/evidence); ward-verify (evidence/cmd/ward-verify) checks such
// a file offline with this package alone.
//
// seal.go is the seal itself: the one encoding agent, collector and
// verifier share. file.go and summary.go are the evidence file; Decode
// and Encode read and write it, Verify checks it (certificates, seals,
// chains, gaps, handovers, re-bind proofs, policy hashes, the summary)
// and Summarize computes its summary from its facts, policies and release
// feeds alone (feeds.go: the feeds the reports were judged by)
// (docs/evidence.md, "Verifying"). log.go is the collector's Merkle log
// as a file carries it: the checkpoint text, leaf hash, and the checks of
// its certificate, signature, inclusion and consistency proofs (RFC 6962,
// transparency-dev/merkle). Package evidencetest builds files for tests.
package evidence
