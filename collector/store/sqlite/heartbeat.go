package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
)

// Heartbeats: a report whose facts (less their collected_at) and results
// equal its device's newest report's is stored with only its own
// collected_at as facts, empty results, and a reference to the report
// that holds the rest (migrationHeartbeat). Every read of facts or
// results goes through factsOf and resultsOf.

// factsOf is the SQL expression for the facts of the reports row aliased
// p: its own, or for a heartbeat its own leading field (see splitLead)
// followed by the rest of the holder's facts.
func factsOf(p string) string {
	h := `(SELECT h.facts FROM reports h WHERE h.device_id = ` + p + `.device_id AND h.epoch = ` + p + `.facts_epoch AND h.sequence = ` + p + `.facts_sequence)`
	// The holder's facts past its leading field, as splitLead cuts it:
	// instr in the 256-byte blob of every byte value is a byte's value+1.
	rest := `CASE WHEN substr(` + h + `, 1, 1) = x'0a' AND instr(` + byteValues + `, substr(` + h + `, 2, 1)) <= 128
		THEN substr(` + h + `, 2 + instr(` + byteValues + `, substr(` + h + `, 2, 1))) ELSE ` + h + ` END`
	return `CASE WHEN ` + p + `.facts_epoch IS NULL THEN ` + p + `.facts ELSE CAST(` + p + `.facts || coalesce(` + rest + `, x'') AS BLOB) END`
}

// byteValues is the blob of the bytes 0 to 255, in order.
const byteValues = "X'000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF'"

// splitLead cuts facts (wardv1.Facts, deterministic wire format) after
// their leading field when it is field 1, collected_at, with a one-byte
// length: what differs between otherwise unchanged reports.
func splitLead(facts []byte) (lead, rest []byte) {
	if len(facts) == 0 || facts[0] != 0x0a {
		return nil, facts
	}
	n := 2
	if len(facts) >= 2 {
		if facts[1] >= 0x80 {
			return nil, facts
		}
		n += int(facts[1])
	}
	n = min(n, len(facts))
	return facts[:n], facts[n:]
}

// resultsOf is factsOf for the results.
func resultsOf(p string) string {
	return `CASE WHEN ` + p + `.facts_epoch IS NULL THEN ` + p + `.results ELSE coalesce((SELECT h.results FROM reports h WHERE h.device_id = ` + p +
		`.device_id AND h.epoch = ` + p + `.facts_epoch AND h.sequence = ` + p + `.facts_sequence), 'null') END`
}

// qSameAsNewest reads the facts and results of a report, through the
// reference of a heartbeat.
const qSameAsNewest = `SELECT h.epoch, h.sequence, h.facts, h.results FROM reports p
	JOIN reports h ON h.device_id = p.device_id AND h.epoch = coalesce(p.facts_epoch, p.epoch) AND h.sequence = coalesce(p.facts_sequence, p.sequence)
	WHERE p.device_id = ? AND p.epoch = ? AND p.sequence = ?`

// sameAsNewest reports whether facts (less their collected_at, see
// splitLead) and results equal those of the device's newest report
// (epoch, sequence), and which report holds them.
func sameAsNewest(ctx context.Context, tx ptx, deviceID string, epoch, sequence int64, facts []byte, results string) (sql.NullInt64, sql.NullInt64, bool, error) {
	var he, hs int64
	var hf []byte
	var hr string
	err := tx.QueryRowContext(ctx, qSameAsNewest, deviceID, epoch, sequence).Scan(&he, &hs, &hf, &hr)
	if errors.Is(err, sql.ErrNoRows) {
		return sql.NullInt64{}, sql.NullInt64{}, false, nil
	}
	if err != nil {
		return sql.NullInt64{}, sql.NullInt64{}, false, err
	}
	_, hrest := splitLead(hf)
	_, rest := splitLead(facts)
	if hr != results || !bytes.Equal(hrest, rest) {
		return sql.NullInt64{}, sql.NullInt64{}, false, nil
	}
	return sql.NullInt64{Int64: he, Valid: true}, sql.NullInt64{Int64: hs, Valid: true}, true, nil
}
