// Package evidence builds the collector's evidence export: one
// self-contained file (the ward-evidence/1 format of package
// github.com/wardhq/ward/evidence) holding a device's sealed reports over
// a period, or every device's, with the certificates, enrolment records,
// CA chain, policy documents, gaps and forks an auditor needs to verify
// it offline with ward-verify (docs/evidence.md).
//
// It reads the store, and with a Log appends to the collector's Merkle
// log of sealed reports (Log.Sequence, run by serve every --log-interval
// and by Build first) so the file proves each report a leaf of a signed
// checkpoint. The CLI (ward-collector evidence export) and the
// dashboard's download both call Build.
package evidence
