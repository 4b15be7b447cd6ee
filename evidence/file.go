package evidence

import "time"

// Format names the evidence file format this package writes and reads.
const Format = "ward-evidence/1"

// File is an evidence file (docs/evidence.md, "The file"): JSON, one
// document, self-contained. Byte fields are base64 (encoding/json's
// []byte). Everything in it is either signed by a device key (report
// statements, key handovers, re-bind proofs), signed by the collector CA
// (certificates), fixed by a hash a signed statement names (facts), or
// an assertion of the collector that ward-verify reports as such
// (received_at, gaps the agent explained, token re-binds).
type File struct {
	Format      string    `json:"format"`
	GeneratedAt time.Time `json:"generated_at"`
	// GeneratedBy is the collector's name and version.
	GeneratedBy string `json:"generated_by"`
	// From and To bound the period (collected time) the file covers.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// CA is the collector CA chain, DER: the current CA, earlier CAs and
	// cross-signed certificates. Device certificates must chain to the
	// first CA the verifier is told to trust (--ca) or, without it, to
	// one of these.
	CA [][]byte `json:"ca"`
	// Policies are the policy documents the reports were evaluated with
	// (each report names its policy by name and version).
	Policies []Policy `json:"policies"`
	// Feeds are the release feeds (docs/feed.md, "Evidence") the
	// collector judged the reports by: one per serial a report's
	// FeedSerial names, each the feed's canonical encoding. Absent from
	// files older than the release feed (their reports name none).
	Feeds   []Feed   `json:"feeds,omitempty"`
	Devices []Device `json:"devices"`
	// Summary is what the collector computed; ward-verify recomputes it
	// from the facts and must find the same (Summarize).
	Summary Summary `json:"summary"`
	// Log, when the collector keeps a Merkle log of its reports, proves
	// every report in the file a leaf of a signed checkpoint.
	Log *Log `json:"log,omitempty"`
}

// Policy is a policy document in force during the period.
type Policy struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// SHA256 is the hex SHA-256 of Document.
	SHA256   string `json:"sha256"`
	Document string `json:"document"`
}

// Feed is a release feed (ward-release-feed/1) a report of the file was
// judged by.
type Feed struct {
	Serial uint64 `json:"serial"`
	// BuiltIn says it is the snapshot built into the collector
	// (feed/snapshot), not an imported feed.
	BuiltIn bool `json:"built_in,omitempty"`
	// SHA256 is the hex SHA-256 of Document.
	SHA256 string `json:"sha256"`
	// Document is the feed's canonical encoding (feed.Canonical), the
	// bytes a feed signature signs.
	Document string `json:"document"`
}

// Device is one device's evidence.
type Device struct {
	DeviceID string `json:"device_id"`
	// Hostname is what the device said at enrolment (an assertion).
	Hostname string `json:"hostname,omitempty"`
	// Certificates are every certificate the collector issued to the
	// device that a report in the file names (DER), with the key
	// handovers of renewals.
	Certificates []Certificate `json:"certificates"`
	// Enrolments are the records the epochs in the file start from.
	Enrolments []Enrolment `json:"enrolments"`
	// Reports are the device's reports, in (epoch, sequence) order: the
	// last one collected before From (the state the period starts in),
	// those collected in [From, To), and the first one after To (it
	// closes the chain), each when there is one.
	Reports []Report `json:"reports"`
	// Gaps and Forks are those the collector recorded in the chains of
	// the epochs in the file; ward-verify finds every gap between two
	// reports in the file itself and fails on one not listed.
	Gaps  []Gap  `json:"gaps"`
	Forks []Fork `json:"forks"`
}

// Certificate is a device certificate.
type Certificate struct {
	DER []byte `json:"der"`
	// Kind is how it was issued: "enrol", "renew" or "rebind".
	Kind  string `json:"kind"`
	Epoch uint64 `json:"epoch"`
	// Handover is, for a renewal, the wire-format wardv1.KeyHandover by
	// the key it replaced (absent from agents older than evidence).
	Handover []byte `json:"handover,omitempty"`
}

// Enrolment is the record an epoch's chain starts from: its genesis is
// Genesis(device, epoch, certificate).
type Enrolment struct {
	Epoch uint64    `json:"epoch"`
	At    time.Time `json:"at"`
	// Kind is "enrol", "rebind-key" (the device proved its previous key)
	// or "rebind-token" (an administrator's re-bind token).
	Kind        string `json:"kind"`
	Certificate []byte `json:"certificate"`
	// For "rebind-key": the previous certificate, the request the new one
	// was issued for and the previous key's signature over it.
	PreviousCertificate []byte `json:"previous_certificate,omitempty"`
	CSR                 []byte `json:"csr,omitempty"`
	RebindProof         []byte `json:"rebind_proof,omitempty"`
	// For "rebind-token": who created the token, as the collector's audit
	// log records it (an assertion).
	TokenRecord string `json:"token_record,omitempty"`
}

// Report is one sealed report.
type Report struct {
	// Statement is the encoded ReportStatement its seal signs.
	Statement []byte `json:"statement"`
	Signature []byte `json:"signature"`
	// Facts is the wire-format wardv1.Facts whose FactsDigest the
	// statement names.
	Facts []byte `json:"facts"`
	// ReceivedAt is when the collector stored it; ObservedAt the time it
	// vouched for (the statement's collected_at, or its own estimate when
	// the agent's clock was implausible: ClockSuspect). Assertions.
	ReceivedAt   time.Time `json:"received_at"`
	ObservedAt   time.Time `json:"observed_at"`
	ClockSuspect bool      `json:"clock_suspect,omitempty"`
	// FeedSerial is the serial of the release feed the collector judged
	// the report by (0: none; the file's Feeds carry it). An assertion:
	// the statement does not sign it.
	FeedSerial uint64 `json:"feed_serial,omitempty"`
}

// Gap is a run of sequences missing from a chain.
type Gap struct {
	Epoch uint64 `json:"epoch"`
	// After and Before are the sequences around the gap: the missing
	// ones are After+1 … Before-1.
	After  uint64 `json:"after"`
	Before uint64 `json:"before"`
	// Dropped is how many of them the agent said it dropped (its outbox
	// full, an entry corrupt); the rest are missing unexplained.
	Dropped uint64 `json:"dropped"`
}

// Fork is a report whose predecessor is already another report's.
type Fork struct {
	Epoch    uint64 `json:"epoch"`
	Sequence uint64 `json:"sequence"`
	// PrevHash is the predecessor both claim; Hash this report's
	// statement hash; Other the statement hash of the report that
	// claimed it first (sequence OtherSequence).
	PrevHash      []byte    `json:"prev_hash"`
	Hash          []byte    `json:"hash"`
	Other         []byte    `json:"other"`
	OtherSequence uint64    `json:"other_sequence"`
	RecordedAt    time.Time `json:"recorded_at"`
}
