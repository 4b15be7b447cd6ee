package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wardhq/ward/collector/store"
)

// Evidence records (docs/evidence.md): certificates, enrolment records
// and policy documents. The chain's methods of store.EvidenceStore are
// in chain.go.

// AddDeviceCertificate implements store.EvidenceStore.
func (s *Store) AddDeviceCertificate(ctx context.Context, c store.DeviceCertificate) error {
	if err := store.CheckDeviceCertificate(c); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO device_certificates (device_id, key_id, epoch, der, kind, issued_at, handover)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, key_id) DO NOTHING`,
		c.DeviceID, c.KeyID, int64(c.Epoch), c.DER, c.Kind, nanos(c.IssuedAt), optBlob(c.Handover))
	if err != nil {
		return fmt.Errorf("add device certificate: %w", err)
	}
	return nil
}

// DeviceCertificates implements store.EvidenceStore.
func (s *Store) DeviceCertificates(ctx context.Context, deviceID string) ([]store.DeviceCertificate, error) {
	rows, err := s.query(ctx, `SELECT key_id, epoch, der, kind, issued_at, handover FROM device_certificates
		WHERE device_id = ? ORDER BY issued_at, rowid`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("device certificates: %w", err)
	}
	defer rows.Close()
	var out []store.DeviceCertificate
	for rows.Next() {
		c := store.DeviceCertificate{DeviceID: deviceID}
		var epoch, issued int64
		if err := rows.Scan(&c.KeyID, &epoch, &c.DER, &c.Kind, &issued, &c.Handover); err != nil {
			return nil, fmt.Errorf("device certificates: %w", err)
		}
		c.Epoch, c.IssuedAt = uint64(epoch), fromNanos(issued)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("device certificates: %w", err)
	}
	return out, nil
}

// AddEnrolmentRecord implements store.EvidenceStore.
func (s *Store) AddEnrolmentRecord(ctx context.Context, r store.EnrolmentRecord) error {
	if err := store.CheckEnrolmentRecord(r); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO enrolment_records (device_id, epoch, at, kind, certificate, genesis, previous_certificate, csr, rebind_proof, token_record)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, epoch) DO NOTHING`,
		r.DeviceID, int64(r.Epoch), nanos(r.At), r.Kind, r.Certificate, r.Genesis,
		optBlob(r.PreviousCertificate), optBlob(r.CSR), optBlob(r.RebindProof), r.TokenRecord)
	if err != nil {
		return fmt.Errorf("add enrolment record: %w", err)
	}
	return nil
}

// EnrolmentRecords implements store.EvidenceStore.
func (s *Store) EnrolmentRecords(ctx context.Context, deviceID string) ([]store.EnrolmentRecord, error) {
	rows, err := s.query(ctx, `SELECT epoch, at, kind, certificate, genesis, previous_certificate, csr, rebind_proof, token_record
		FROM enrolment_records WHERE device_id = ? ORDER BY epoch`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("enrolment records: %w", err)
	}
	defer rows.Close()
	var out []store.EnrolmentRecord
	for rows.Next() {
		r := store.EnrolmentRecord{DeviceID: deviceID}
		var epoch, at int64
		if err := rows.Scan(&epoch, &at, &r.Kind, &r.Certificate, &r.Genesis, &r.PreviousCertificate, &r.CSR, &r.RebindProof, &r.TokenRecord); err != nil {
			return nil, fmt.Errorf("enrolment records: %w", err)
		}
		r.Epoch, r.At = uint64(epoch), fromNanos(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("enrolment records: %w", err)
	}
	return out, nil
}

// RecordPolicyDocument implements store.EvidenceStore.
func (s *Store) RecordPolicyDocument(ctx context.Context, d store.PolicyDocument) error {
	if err := store.CheckPolicyDocument(d); err != nil {
		return err
	}
	if _, err := s.exec(ctx, insertPolicyDocument, d.Name, d.Version, d.Document, nanos(d.FirstSeen)); err != nil {
		return fmt.Errorf("record policy document: %w", err)
	}
	return nil
}

// insertPolicyDocument keeps the first document recorded for a name and
// version.
const insertPolicyDocument = `INSERT INTO policy_documents (name, version, document, first_seen) VALUES (?, ?, ?, ?)
	ON CONFLICT (name, version) DO NOTHING`

// recordSetPolicy records the document of a group policy being set, in
// the transaction that sets it.
func recordSetPolicy(ctx context.Context, tx *sql.Tx, p store.GroupPolicy) error {
	d := store.PolicyDocument{Name: p.Name, Version: p.Version, Document: p.Document, FirstSeen: p.UpdatedAt}
	if store.CheckPolicyDocument(d) != nil {
		return nil // nothing an evidence file could use
	}
	_, err := tx.ExecContext(ctx, insertPolicyDocument, d.Name, d.Version, d.Document, nanos(d.FirstSeen))
	return err
}

// PolicyDocument implements store.EvidenceStore.
func (s *Store) PolicyDocument(ctx context.Context, name string, version int) (store.PolicyDocument, error) {
	d := store.PolicyDocument{Name: name, Version: version}
	var first int64
	err := s.queryRow(ctx, `SELECT document, first_seen FROM policy_documents WHERE name = ? AND version = ?`, name, version).Scan(&d.Document, &first)
	if errors.Is(err, sql.ErrNoRows) {
		return store.PolicyDocument{}, fmt.Errorf("policy document %s version %d: %w", name, version, store.ErrNotFound)
	}
	if err != nil {
		return store.PolicyDocument{}, fmt.Errorf("policy document %s version %d: %w", name, version, err)
	}
	d.FirstSeen = fromNanos(first)
	return d, nil
}

// optBlob is b, or NULL when it is empty.
func optBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
