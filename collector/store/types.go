package store

import "time"

// Token is an enrolment token as stored: its SHA-256 hash, never the token.
type Token struct {
	ID        string     `json:"id"`
	Hash      []byte     `json:"-"`
	Group     string     `json:"group"`
	Uses      int        `json:"uses"`
	UsesLeft  int        `json:"uses_left"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// RebindDevice, when set, makes this a re-bind token: it re-binds
	// exactly that device (see docs/enrolment.md) and enrols nothing else.
	RebindDevice string `json:"rebind_device,omitempty"`
}

// State says whether a token can still enrol a device at now.
func (t Token) State(now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case !now.Before(t.ExpiresAt):
		return "expired"
	case t.UsesLeft <= 0:
		return "used-up"
	}
	return "active"
}

// DeviceInfo is what the agent said about its machine at enrolment.
type DeviceInfo struct {
	Hostname     string `json:"hostname"`
	Platform     string `json:"platform"`
	OSName       string `json:"os_name"`
	OSVersion    string `json:"os_version"`
	Architecture string `json:"architecture"`
	MachineID    string `json:"machine_id,omitempty"`
	AgentVersion string `json:"agent_version"`
}

// Device is an enrolled device, with counts of its latest verdicts (the
// collector's, per rule).
type Device struct {
	ID string `json:"id"`
	DeviceInfo
	Group        string     `json:"group"`
	EnrolledAt   time.Time  `json:"enrolled_at"`
	LastSeen     *time.Time `json:"last_seen,omitempty"`
	CertSerial   string     `json:"cert_serial"`
	CertNotAfter time.Time  `json:"cert_not_after"`
	// NextCertSerial is a renewed certificate issued but not used yet.
	NextCertSerial string     `json:"next_cert_serial,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	LastSequence   uint64     `json:"last_sequence"`
	Pass           int        `json:"pass"`
	Fail           int        `json:"fail"`
	Unknown        int        `json:"unknown"`
}

// Revoked reports whether the device was revoked.
func (d Device) Revoked() bool { return d.RevokedAt != nil }

// DeviceStatus is a device's standing in the fleet.
type DeviceStatus string

// Device statuses. Each device has exactly one.
const (
	// StatusCompliant: seen recently, every rule passes.
	StatusCompliant DeviceStatus = "compliant"
	// StatusFailing: seen recently, at least one rule fails.
	StatusFailing DeviceStatus = "failing"
	// StatusUnknown: seen recently (or just enrolled), nothing fails but
	// something is unknown, or there is no report yet.
	StatusUnknown DeviceStatus = "unknown"
	// StatusStale: not seen for longer than the threshold; its last
	// verdicts are too old to count either way.
	StatusStale DeviceStatus = "stale"
	// StatusRevoked: revoked by an administrator.
	StatusRevoked DeviceStatus = "revoked"
)

// Status classifies the device at now. A device not seen (or, without a
// report, not enrolled) within staleAfter is stale whatever its last
// verdicts were: silence is never compliant nor failing.
func (d Device) Status(now time.Time, staleAfter time.Duration) DeviceStatus {
	seen := d.EnrolledAt
	if d.LastSeen != nil {
		seen = *d.LastSeen
	}
	switch {
	case d.Revoked():
		return StatusRevoked
	case now.Sub(seen) > staleAfter:
		return StatusStale
	case d.Fail > 0:
		return StatusFailing
	case d.Unknown > 0 || d.Pass == 0:
		return StatusUnknown
	}
	return StatusCompliant
}

// CertWarning is how long before its certificate expires a device is
// flagged: agents renew at 2/3 of the lifetime, so one this close to
// expiry has not managed to (offline, or failing to renew).
const CertWarning = 14 * 24 * time.Hour

// CertState is "expired", "expiring" (within CertWarning of now) or ""
// for a certificate that is fine or a device that is revoked.
func (d Device) CertState(now time.Time) string {
	switch {
	case d.Revoked() || d.CertNotAfter.IsZero():
		return ""
	case !now.Before(d.CertNotAfter):
		return "expired"
	case d.CertNotAfter.Sub(now) <= CertWarning:
		return "expiring"
	}
	return ""
}

// Issued is a certificate the CA signed for a device.
type Issued struct {
	Serial   string
	NotAfter time.Time
	DER      []byte
}

// EnrollParams is one enrolment request, token already hashed.
type EnrollParams struct {
	TokenHash []byte
	Info      DeviceInfo
	Now       time.Time
	// NewID is the id a new device gets; a re-bound device keeps its own.
	NewID string
	// ProvenDevice and ProvenSerial name the device certificate the agent
	// proved it holds the key of (the caller verified the proof and that
	// this collector's CA issued the certificate). Empty: no proof.
	ProvenDevice, ProvenSerial string
	// StartEpoch starts the device's next epoch at Now in the enrolment's
	// own transaction (Enrolment.Epoch), as StartEpoch would after it:
	// one write instead of two.
	StartEpoch bool
}

// Enrolment is the outcome of Enroll.
type Enrolment struct {
	Device  Device
	Issued  Issued
	Rebound bool
	// RebindBy says what re-bound the device: RebindByProof or
	// RebindByToken; empty for a new device.
	RebindBy string
	// Duplicates are the other non-revoked devices of a new device's group
	// with its machine id: likely the same machine enrolled again.
	Duplicates []string
	// Epoch is the epoch started with EnrollParams.StartEpoch (0 without).
	Epoch uint64
}

// What re-bound a device (Enrolment.RebindBy).
const (
	RebindByProof = "proof"
	RebindByToken = "token"
)

// DuplicateSet is a group's non-revoked devices that share a machine id:
// likely one machine enrolled more than once. Devices are oldest first.
type DuplicateSet struct {
	Group     string   `json:"group"`
	MachineID string   `json:"machine_id"`
	Devices   []Device `json:"devices"`
}

// Verdict is a rule's status, as stored.
type Verdict string

// Verdicts. Empty means no verdict (e.g. the agent sent none for a rule).
const (
	Pass    Verdict = "PASS"
	Fail    Verdict = "FAIL"
	Unknown Verdict = "UNKNOWN"
)

// RuleResult is one rule's outcome in one report: the collector's own
// verdict and the agent's, side by side.
type RuleResult struct {
	RuleID    string  `json:"rule_id"`
	Title     string  `json:"title"`
	Family    string  `json:"family"`
	Severity  string  `json:"severity"`
	Collector Verdict `json:"collector"`
	Agent     Verdict `json:"agent,omitempty"`
	Observed  string  `json:"observed"`
	Expected  string  `json:"expected"`
	Reason    string  `json:"reason,omitempty"`
	// GraceConnected says the rule's grace counts connected time only
	// (`grace: 72h connected`, docs/connectivity.md); GraceUsed is the
	// connected time the agent counted since failing_since, and
	// DeadlinePaused says the round found no connection, so the deadline
	// is not running (ConnectedDeadline).
	GraceConnected bool          `json:"grace_connected,omitempty"`
	GraceUsed      time.Duration `json:"grace_used,omitempty"`
	DeadlinePaused bool          `json:"deadline_paused,omitempty"`
}

// Report is one stored report.
type Report struct {
	DeviceID string `json:"device_id"`
	// Epoch and Sequence identify the report on its device.
	Epoch      uint64    `json:"epoch"`
	Sequence   uint64    `json:"sequence"`
	ReceivedAt time.Time `json:"received_at"`
	// CollectedAt is the agent's time, kept as sent (any year 1 to 9999).
	CollectedAt time.Time `json:"collected_at"`
	// ObservedAt is the time the collector vouches for: CollectedAt when
	// it is plausible, else its own estimate, receipt minus the time the
	// report waited (see docs/enrolment.md). failing_since and
	// transitions use it.
	ObservedAt time.Time `json:"observed_at"`
	// ClockSuspect says CollectedAt was implausible, so not trusted.
	ClockSuspect bool `json:"clock_suspect,omitempty"`
	// ContentHash is a hash of what the agent sent, less its identity and
	// drop counters: a redelivery has the same, a different report under a
	// used sequence has another.
	ContentHash    []byte `json:"-"`
	AgentVersion   string `json:"agent_version"`
	PolicyName     string `json:"policy_name"`
	PolicyVersion  int    `json:"policy_version"`
	DroppedReports uint64 `json:"dropped_reports"`
	// DroppedTotal is the agent's cumulative count of reports it dropped
	// or quarantined in this epoch (the collector keeps the largest).
	DroppedTotal uint64       `json:"dropped_total"`
	Facts        []byte       `json:"-"` // wardv1.Facts, protobuf wire format
	Results      []RuleResult `json:"results"`
	// Connectivity is what the agent found it could reach this round
	// (nil: an older agent said nothing).
	Connectivity *Connectivity `json:"connectivity,omitempty"`
	// FeedSerial is the serial of the collector's release feed Results
	// were evaluated with (0: it had none).
	FeedSerial uint64 `json:"feed_serial,omitempty"`
	// Seal is the report's seal, verified on receipt (nil: the agent
	// predates evidence). SaveReport records the gaps and forks it
	// makes in the epoch's chain (ChainGap, ChainFork).
	Seal *ReportSeal `json:"-"`
}

// RuleState is the latest outcome of a rule on a device.
type RuleState struct {
	RuleResult
	FailingSince *time.Time `json:"failing_since,omitempty"`
	UpdatedAt    time.Time  `json:"updated_at"`
	Sequence     uint64     `json:"sequence"`
}

// Transition is a change of the collector's verdict for a rule on a device.
// From is empty for the first verdict.
type Transition struct {
	DeviceID string    `json:"device_id"`
	RuleID   string    `json:"rule_id"`
	From     Verdict   `json:"from"`
	To       Verdict   `json:"to"`
	At       time.Time `json:"at"`
	Sequence uint64    `json:"sequence"`
	// ReceivedAt is when the report that made the change arrived (At is
	// its observed time, when it was collected); nil for a transition
	// recorded before collectors kept it.
	ReceivedAt *time.Time `json:"received_at,omitempty"`
}

// LateReceipt is how much later than collected a report must have
// arrived for the device's history to say when it was received (a report
// queued offline); a report sent at once arrives within it.
const LateReceipt = time.Minute

// ReceivedLate is when t's report was received, if it arrived LateReceipt
// or more after it was collected (t.At); nil otherwise or when not known.
func ReceivedLate(t Transition) *time.Time {
	if t.ReceivedAt == nil || t.ReceivedAt.Sub(t.At) < LateReceipt {
		return nil
	}
	return t.ReceivedAt
}

// GroupPolicy is the policy document a group's devices are held to.
type GroupPolicy struct {
	Group     string    `json:"group"`
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Document  []byte    `json:"-"`
	UpdatedAt time.Time `json:"updated_at"`
}
