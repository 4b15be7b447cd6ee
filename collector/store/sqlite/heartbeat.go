package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
)

// Heartbeats: a report whose facts and results equal its device's newest
// report's is stored with empty facts and results and a reference to the
// report that holds them (migrationHeartbeat). Every read of facts or
// results goes through factsOf and resultsOf.

// factsOf is the SQL expression for the facts of the reports row aliased
// p, its own or those of the report it refers to.
func factsOf(p string) string {
	return `CASE WHEN ` + p + `.facts_epoch IS NULL THEN ` + p + `.facts ELSE coalesce((SELECT h.facts FROM reports h WHERE h.device_id = ` + p +
		`.device_id AND h.epoch = ` + p + `.facts_epoch AND h.sequence = ` + p + `.facts_sequence), x'') END`
}

// resultsOf is factsOf for the results.
func resultsOf(p string) string {
	return `CASE WHEN ` + p + `.facts_epoch IS NULL THEN ` + p + `.results ELSE coalesce((SELECT h.results FROM reports h WHERE h.device_id = ` + p +
		`.device_id AND h.epoch = ` + p + `.facts_epoch AND h.sequence = ` + p + `.facts_sequence), 'null') END`
}

// sameAsNewest reports whether facts and results equal those of the
// device's newest report (epoch, sequence), and which report holds them.
func sameAsNewest(ctx context.Context, tx *sql.Tx, deviceID string, epoch, sequence int64, facts []byte, results string) (sql.NullInt64, sql.NullInt64, bool, error) {
	var he, hs int64
	var hf []byte
	var hr string
	err := tx.QueryRowContext(ctx, `SELECT h.epoch, h.sequence, h.facts, h.results FROM reports p
		JOIN reports h ON h.device_id = p.device_id AND h.epoch = coalesce(p.facts_epoch, p.epoch) AND h.sequence = coalesce(p.facts_sequence, p.sequence)
		WHERE p.device_id = ? AND p.epoch = ? AND p.sequence = ?`, deviceID, epoch, sequence).Scan(&he, &hs, &hf, &hr)
	if errors.Is(err, sql.ErrNoRows) {
		return sql.NullInt64{}, sql.NullInt64{}, false, nil
	}
	if err != nil {
		return sql.NullInt64{}, sql.NullInt64{}, false, err
	}
	if hr != results || !bytes.Equal(hf, facts) {
		return sql.NullInt64{}, sql.NullInt64{}, false, nil
	}
	return sql.NullInt64{Int64: he, Valid: true}, sql.NullInt64{Int64: hs, Valid: true}, true, nil
}
