package store

import (
	"context"
	"time"
)

// Evidence (docs/evidence.md): sealed reports, the chains they form, the
// certificates and enrolment records they verify against and the policy
// documents they were evaluated with.

// ReportSeal is a report's seal, verified on receipt.
type ReportSeal struct {
	// Statement is the encoded wardv1.ReportStatement the seal signs,
	// Hash its evidence.StatementHash.
	Statement []byte
	Hash      []byte
	PrevHash  []byte
	KeyID     []byte
	Signature []byte
}

// ChainGap is a run of sequences missing between two stored sealed
// reports of an epoch: After+1 … Before-1. Dropped is how many the agent
// accounted for as dropped (the growth of its dropped_total across the
// gap, at most the gap's size).
type ChainGap struct {
	DeviceID   string    `json:"device_id"`
	Epoch      uint64    `json:"epoch"`
	After      uint64    `json:"after"`
	Before     uint64    `json:"before"`
	Dropped    uint64    `json:"dropped"`
	RecordedAt time.Time `json:"recorded_at"`
}

// Missing is the number of sequences in the gap.
func (g ChainGap) Missing() uint64 { return g.Before - g.After - 1 }

// ChainFork is a sealed report whose predecessor (PrevHash) another
// stored report of the epoch already claims, or whose predecessor is not
// the stored report before it.
type ChainFork struct {
	DeviceID string `json:"device_id"`
	Epoch    uint64 `json:"epoch"`
	Sequence uint64 `json:"sequence"`
	PrevHash []byte `json:"prev_hash"`
	Hash     []byte `json:"hash"`
	// Other and OtherSequence are the report that claimed PrevHash first
	// (or the stored predecessor whose hash PrevHash is not).
	Other         []byte    `json:"other"`
	OtherSequence uint64    `json:"other_sequence"`
	RecordedAt    time.Time `json:"recorded_at"`
}

// DeviceCertificate is a certificate the collector issued to a device.
type DeviceCertificate struct {
	DeviceID string
	Epoch    uint64
	// KeyID is evidence.CertKeyID of the certificate.
	KeyID []byte
	DER   []byte
	// Kind is "enrol", "renew" or "rebind".
	Kind     string
	IssuedAt time.Time
	// Handover is, for a renewal, the wire-format wardv1.KeyHandover the
	// agent sent (nil from older agents).
	Handover []byte
}

// EnrolmentRecord is the record an epoch's chain starts from.
type EnrolmentRecord struct {
	DeviceID string
	Epoch    uint64
	At       time.Time
	// Kind is "enrol", "rebind-key" or "rebind-token".
	Kind        string
	Certificate []byte
	// Genesis is evidence.Genesis(DeviceID, Epoch, Certificate).
	Genesis []byte
	// For "rebind-key": the previous certificate, the request and the
	// previous key's signature over it.
	PreviousCertificate []byte
	CSR                 []byte
	RebindProof         []byte
	// For "rebind-token": the token's creator and creation time, as text.
	TokenRecord string
}

// PolicyDocument is a policy document the collector served, by name and
// version.
type PolicyDocument struct {
	Name      string
	Version   int
	Document  []byte
	FirstSeen time.Time
}

// EvidenceStore is what evidence reads and writes; both backends
// implement it (storetest.Evidence).
type EvidenceStore interface {
	// AddDeviceCertificate records an issued certificate; recording the
	// same key id again changes nothing.
	AddDeviceCertificate(ctx context.Context, c DeviceCertificate) error
	// DeviceCertificates lists a device's certificates, oldest first.
	DeviceCertificates(ctx context.Context, deviceID string) ([]DeviceCertificate, error)
	// AddEnrolmentRecord records an epoch's enrolment record (once per
	// device and epoch; again changes nothing).
	AddEnrolmentRecord(ctx context.Context, r EnrolmentRecord) error
	// EnrolmentRecords lists a device's records, by epoch.
	EnrolmentRecords(ctx context.Context, deviceID string) ([]EnrolmentRecord, error)
	// RecordPolicyDocument keeps a document by name and version (the
	// first one seen for them stays).
	RecordPolicyDocument(ctx context.Context, d PolicyDocument) error
	// PolicyDocument returns the document of name and version
	// (ErrNotFound if none was recorded).
	PolicyDocument(ctx context.Context, name string, version int) (PolicyDocument, error)
	// EvidenceReports returns the device's reports whose ObservedAt is in
	// [from, to), with the last one before from and the first one at or
	// after to when there are such, in (epoch, sequence) order, with
	// facts and seals.
	EvidenceReports(ctx context.Context, deviceID string, from, to time.Time) ([]Report, error)
	// ChainGaps and ChainForks list what SaveReport recorded for the
	// device, by epoch and sequence.
	ChainGaps(ctx context.Context, deviceID string) ([]ChainGap, error)
	ChainForks(ctx context.Context, deviceID string) ([]ChainFork, error)
}
