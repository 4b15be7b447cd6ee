package store

import (
	"context"
	"errors"
	"fmt"
)

// EvidenceRecords is the part of EvidenceStore that keeps what reports
// verify against: the certificates, enrolment records and policy
// documents. The collector's server records them through it (both
// backends implement all of EvidenceStore).
type EvidenceRecords interface {
	AddDeviceCertificate(ctx context.Context, c DeviceCertificate) error
	DeviceCertificates(ctx context.Context, deviceID string) ([]DeviceCertificate, error)
	AddEnrolmentRecord(ctx context.Context, r EnrolmentRecord) error
	EnrolmentRecords(ctx context.Context, deviceID string) ([]EnrolmentRecord, error)
	RecordPolicyDocument(ctx context.Context, d PolicyDocument) error
	PolicyDocument(ctx context.Context, name string, version int) (PolicyDocument, error)
}

// Kinds of DeviceCertificate.
const (
	CertEnrol  = "enrol"
	CertRenew  = "renew"
	CertRebind = "rebind"
)

// Kinds of EnrolmentRecord.
const (
	EnrolNew         = "enrol"
	EnrolRebindKey   = "rebind-key"
	EnrolRebindToken = "rebind-token"
)

// CheckDeviceCertificate is what both backends refuse of a certificate
// to record: no device, key id or DER, or an unknown kind.
func CheckDeviceCertificate(c DeviceCertificate) error {
	switch {
	case c.DeviceID == "":
		return errors.New("device certificate: no device id")
	case len(c.KeyID) == 0:
		return errors.New("device certificate: no key id")
	case len(c.DER) == 0:
		return errors.New("device certificate: no certificate")
	case c.Kind != CertEnrol && c.Kind != CertRenew && c.Kind != CertRebind:
		return fmt.Errorf("device certificate: unknown kind %q", c.Kind)
	}
	return nil
}

// CheckEnrolmentRecord is what both backends refuse of an enrolment
// record: no device, certificate or genesis, or an unknown kind.
func CheckEnrolmentRecord(r EnrolmentRecord) error {
	switch {
	case r.DeviceID == "":
		return errors.New("enrolment record: no device id")
	case len(r.Certificate) == 0:
		return errors.New("enrolment record: no certificate")
	case len(r.Genesis) == 0:
		return errors.New("enrolment record: no genesis")
	case r.Kind != EnrolNew && r.Kind != EnrolRebindKey && r.Kind != EnrolRebindToken:
		return fmt.Errorf("enrolment record: unknown kind %q", r.Kind)
	}
	return nil
}

// CheckPolicyDocument is what both backends refuse of a policy document
// to record: no name or no document.
func CheckPolicyDocument(d PolicyDocument) error {
	switch {
	case d.Name == "":
		return errors.New("policy document: no name")
	case len(d.Document) == 0:
		return fmt.Errorf("policy document %s version %d: empty", d.Name, d.Version)
	}
	return nil
}
