package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Event types.
const (
	// TypeComplianceChanged: the collector's verdict of a rule on a device
	// changed (or a device's first verdict of a rule is not PASS).
	TypeComplianceChanged = "compliance.changed"
	// TypeOverdue: a failing rule passed its deadline (failing_since plus
	// the rule's grace) without a waiver.
	TypeOverdue = "rule.overdue"
	// TypeEnrolled: a new device enrolled.
	TypeEnrolled = "device.enrolled"
	// TypeRevoked: an administrator revoked (or retired) a device.
	TypeRevoked = "device.revoked"
)

// Types lists every event type, for flags and documentation.
var Types = []string{TypeComplianceChanged, TypeOverdue, TypeEnrolled, TypeRevoked}

// Envelope is what a webhook POSTs and a stream line holds: the event's
// id in the store (a receiver drops a repeat by it), its type, when it
// happened and its data, one of the *Data types below.
type Envelope struct {
	ID   int64           `json:"id"`
	Type string          `json:"type"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
}

// Encode is the envelope of a stored event as one line of JSON (no
// newline).
func Encode(e store.Event) ([]byte, error) {
	data := json.RawMessage(e.Payload)
	if !json.Valid(data) {
		return nil, fmt.Errorf("event %d: payload is not JSON", e.ID)
	}
	return json.Marshal(Envelope{ID: e.ID, Type: e.Type, At: e.At.UTC(), Data: data})
}

// DeviceRef names a device in an event.
type DeviceRef struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Group    string `json:"group"`
}

// PolicyRef names the policy a verdict was judged by: the group's.
type PolicyRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// RuleRef names a rule.
type RuleRef struct {
	ID       string `json:"id"`
	Title    string `json:"title,omitempty"`
	Severity string `json:"severity,omitempty"`
}

// ComplianceData is a compliance.changed event's data. From is empty for
// a device's first verdict of the rule.
type ComplianceData struct {
	Device DeviceRef     `json:"device"`
	Policy PolicyRef     `json:"policy"`
	Rule   RuleRef       `json:"rule"`
	From   store.Verdict `json:"from"`
	To     store.Verdict `json:"to"`
	// Sequence is the report's; ObservedAt the time the collector vouches
	// for (the event's at).
	Sequence uint64 `json:"sequence"`
	// Observed and Expected are the rule's state as the report that made
	// the change left it, when it is still the latest.
	Observed string `json:"observed,omitempty"`
	Expected string `json:"expected,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// OverdueData is a rule.overdue event's data.
type OverdueData struct {
	Device       DeviceRef `json:"device"`
	Policy       PolicyRef `json:"policy"`
	Rule         RuleRef   `json:"rule"`
	FailingSince time.Time `json:"failing_since"`
	Deadline     time.Time `json:"deadline"`
	// GraceSeconds is the rule's grace, deadline minus failing_since.
	GraceSeconds int64 `json:"grace_seconds"`
}

// EnrolledData is a device.enrolled event's data.
type EnrolledData struct {
	Device       DeviceRef `json:"device"`
	Platform     string    `json:"platform"`
	OSName       string    `json:"os_name"`
	OSVersion    string    `json:"os_version"`
	AgentVersion string    `json:"agent_version"`
	CertSerial   string    `json:"cert_serial"`
	// Duplicates are other devices of the group with its machine id:
	// likely the same machine enrolled again.
	Duplicates []string `json:"duplicates,omitempty"`
}

// RevokedData is a device.revoked event's data.
type RevokedData struct {
	Device DeviceRef `json:"device"`
	// Actor is who revoked it: a dashboard user or "cli:<os user>".
	Actor   string `json:"actor"`
	Retired bool   `json:"retired,omitempty"`
}

func refOf(d store.Device) DeviceRef {
	return DeviceRef{ID: d.ID, Hostname: d.Hostname, Group: d.Group}
}

func newEvent(typ string, at time.Time, deviceID string, data any) store.Event {
	b, err := json.Marshal(data)
	if err != nil {
		// The data types above always marshal.
		panic(err)
	}
	return store.Event{At: at.UTC(), Type: typ, DeviceID: deviceID, Payload: b}
}

// Enrolled is the event of a new enrolment.
func Enrolled(e store.Enrolment, at time.Time) store.Event {
	d := e.Device
	return newEvent(TypeEnrolled, at, d.ID, EnrolledData{
		Device: refOf(d), Platform: d.Platform, OSName: d.OSName, OSVersion: d.OSVersion, AgentVersion: d.AgentVersion,
		CertSerial: e.Issued.Serial, Duplicates: e.Duplicates,
	})
}

// Revoked is the event of a device's revocation by actor.
func Revoked(d store.Device, actor string, retired bool, at time.Time) store.Event {
	return newEvent(TypeRevoked, at, d.ID, RevokedData{Device: refOf(d), Actor: actor, Retired: retired})
}
