package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// Reports, identified by (device, epoch, sequence): see
// docs/enrolment.md, "Report identity and clocks".

// StartEpoch implements store.Store.
func (s *Store) StartEpoch(ctx context.Context, deviceID string, now time.Time) (uint64, error) {
	var epoch int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE devices SET epoch = epoch + 1, epoch_started_at = ? WHERE id = ? RETURNING epoch`,
			nanos(now), deviceID).Scan(&epoch)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("start epoch: %w", err)
	}
	return uint64(epoch), nil
}

// qEpoch reads a device's epoch.
const qEpoch = `SELECT epoch, epoch_started_at, enrolled_at FROM devices WHERE id = ?`

// Epoch implements store.Store.
func (s *Store) Epoch(ctx context.Context, deviceID string) (store.Epoch, error) {
	var epoch, started, enrolled int64
	err := s.queryRow(ctx, qEpoch, deviceID).Scan(&epoch, &started, &enrolled)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Epoch{}, fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return store.Epoch{}, fmt.Errorf("epoch: %w", err)
	}
	return store.Epoch{Number: uint64(epoch), StartedAt: fromNanos(started), EnrolledAt: fromNanos(enrolled)}, nil
}

// DroppedTotal implements store.Store.
func (s *Store) DroppedTotal(ctx context.Context, deviceID string) (uint64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(m), 0) FROM (SELECT max(dropped_total) AS m FROM reports WHERE device_id = ? GROUP BY epoch)`, deviceID).Scan(&n)
	if err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// satInt64 stores a uint64 count in SQLite's signed integer, saturating.
func satInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// LastSequence implements store.Store.
func (s *Store) LastSequence(ctx context.Context, deviceID string, epoch uint64) (uint64, error) {
	var last int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(sequence), 0) FROM reports WHERE device_id = ? AND epoch = ?`, deviceID, int64(epoch)).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("last sequence: %w", err)
	}
	return uint64(last), nil
}

// SaveReport implements store.Store. It is a job of the store's writer
// (group commit): it returns once the batch holding it committed.
func (s *Store) SaveReport(ctx context.Context, r store.Report) (bool, error) {
	if r.Sequence == 0 || r.Sequence > store.MaxSequence || r.Epoch > store.MaxSequence {
		return false, fmt.Errorf("save report: sequence %d: %w", r.Sequence, store.ErrSequenceRange)
	}
	seen := make(map[string]bool, len(r.Results))
	for _, res := range r.Results {
		if seen[res.RuleID] {
			return false, fmt.Errorf("save report: rule %q has two results", res.RuleID)
		}
		seen[res.RuleID] = true
	}
	results, err := json.Marshal(r.Results)
	if err != nil {
		return false, fmt.Errorf("save report: %w", err)
	}
	if r.ObservedAt.IsZero() {
		// A caller that vouches for no time: collection, never later
		// than receipt.
		r.ObservedAt = r.CollectedAt
		if r.ObservedAt.IsZero() || r.ObservedAt.After(r.ReceivedAt) {
			r.ObservedAt = r.ReceivedAt
		}
	}
	stored := false
	err = s.write(ctx, len(r.Facts)+len(results), func(ctx context.Context, tx *sql.Tx) error {
		var err error
		stored, err = saveReport(ctx, ptx{tx, s}, r, string(results))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("save report: %w", err)
	}
	return stored, nil
}

// saveReport is SaveReport's write, in the writer's transaction.
func saveReport(ctx context.Context, tx ptx, r store.Report, results string) (bool, error) {
	var epoch, lastEpoch, lastSeq, enrolled int64
	before := deviceState{Exists: true}
	var lastSeen, revoked, statesAt sql.NullInt64
	err := tx.QueryRowContext(ctx, qReportDevice, r.DeviceID).
		Scan(&epoch, &lastEpoch, &lastSeq, &enrolled, &lastSeen, &revoked, &before.Group, &before.Pass, &before.Fail, &before.Unknown, &statesAt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("device %s: %w", r.DeviceID, store.ErrNotFound)
	}
	if err != nil {
		return false, err
	}
	before.EnrolledAt, before.LastSeen, before.Revoked = enrolled, lastSeen.Int64, revoked.Valid
	e, seq := int64(r.Epoch), int64(r.Sequence)
	if e > epoch {
		return false, fmt.Errorf("epoch %d, device is in %d: %w", r.Epoch, epoch, store.ErrEpochUnknown)
	}
	var hash []byte
	err = tx.QueryRowContext(ctx, qReportHash, r.DeviceID, e, seq).Scan(&hash)
	switch {
	case err == nil:
		if len(hash) == 0 || len(r.ContentHash) == 0 || bytes.Equal(hash, r.ContentHash) {
			// Already stored. A redelivery may carry a larger drop
			// count (drops since the first attempt): keep the largest.
			_, err := tx.ExecContext(ctx, qReportDropped,
				satInt64(r.DroppedTotal), r.DeviceID, e, seq)
			return false, err
		}
		return false, fmt.Errorf("epoch %d sequence %d: %w", r.Epoch, r.Sequence, store.ErrReportConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return false, err
	}
	var top sql.NullInt64
	if e == lastEpoch && lastSeq > 0 {
		// The newest report's epoch: its newest sequence is the top.
		top = sql.NullInt64{Int64: lastSeq, Valid: true}
	} else if err := tx.QueryRowContext(ctx, qTopOfEpoch, r.DeviceID, e).Scan(&top); err != nil {
		return false, err
	}
	if !top.Valid {
		// The epoch's first report: an agent re-enrolled in place
		// goes on numbering from its old outbox.
		if err := tx.QueryRowContext(ctx, qTopOfDevice, r.DeviceID).Scan(&top.Int64); err != nil {
			return false, err
		}
	}
	if seq > top.Int64+store.MaxSequenceJump {
		return false, fmt.Errorf("sequence %d is more than %d past %d: %w", r.Sequence, store.MaxSequenceJump, top.Int64, store.ErrSequenceRange)
	}
	facts, res := r.Facts, results
	if facts == nil {
		facts = []byte{}
	}
	refE, refS, same, err := sameAsNewest(ctx, tx, r.DeviceID, lastEpoch, lastSeq, facts, res)
	if err != nil {
		return false, err
	}
	if same {
		// A heartbeat: its own collected_at, the rest of the newest
		// report's facts and its results by reference.
		lead, _ := splitLead(facts)
		facts, res = append([]byte{}, lead...), ""
	}
	prev, prevUpdated, err := ruleStates(ctx, tx, r.DeviceID)
	if err != nil {
		return false, err
	}
	// The device as the fleet views last counted it (aggregates.go),
	// from what was read above; so is the snapshot after the write.
	snap := aggregate.Snapshot{ID: r.DeviceID, Exists: true, Group: before.Group,
		Class: aggregate.ClassOf(before.Revoked, before.Pass, before.Fail, before.Unknown),
		Seen:  cmp.Or(before.LastSeen, enrolled), States: len(prev), StateAt: statesAt.Int64, Failing: failingSnapshot(prev)}
	for _, u := range prevUpdated {
		snap.StateAt = max(snap.StateAt, u)
	}
	if r.Seal != nil {
		if err := writeChain(ctx, tx, r); err != nil {
			return false, err
		}
	}
	_, err = tx.ExecContext(ctx, qInsertReport, append([]any{
		r.DeviceID, e, seq, nanos(r.ReceivedAt), nanos(r.CollectedAt), sentText(r.CollectedAt), nanos(r.ObservedAt), r.ClockSuspect, r.ContentHash,
		r.AgentVersion, r.PolicyName, r.PolicyVersion, int64(r.DroppedReports), satInt64(r.DroppedTotal), facts, res, refE, refS}, append(sealArgs(r.Seal), satInt64(r.FeedSerial))...)...)
	if err != nil {
		return false, err
	}
	after := before
	after.LastSeen = max(before.LastSeen, nanos(r.ReceivedAt))
	newest := e == epoch && (e > lastEpoch || seq > lastSeq)
	if !newest {
		// An older report arriving late, or one of an earlier
		// enrolment: history only.
		if _, err := tx.ExecContext(ctx, qDeviceSeen, after.LastSeen, r.DeviceID); err != nil {
			return false, err
		}
		now := snap
		now.Seen = after.LastSeen
		return true, applyAggregates(ctx, tx, snap, now, r.ObservedAt)
	}
	before.Failing = failing(prev)
	next := nextStates(prev, r, enrolled)
	after.Failing = failing(next)
	after.Pass, after.Fail, after.Unknown = 0, 0, 0
	for _, st := range next {
		switch st.collector {
		case store.Pass:
			after.Pass++
		case store.Fail:
			after.Fail++
		case store.Unknown:
			after.Unknown++
		}
	}
	at := nanos(r.ObservedAt)
	if _, err := tx.ExecContext(ctx, qDeviceNewest,
		after.LastSeen, e, seq, after.Pass, after.Fail, after.Unknown, at, seq, r.DeviceID); err != nil {
		return false, err
	}
	if err := writeStates(ctx, tx, r, prev, next); err != nil {
		return false, err
	}
	if c := r.Connectivity; c != nil {
		if _, err := tx.ExecContext(ctx, qConnectivity, r.DeviceID, string(c.Collector), string(c.UpdateSource), c.UpdateSourceName, at); err != nil {
			return false, err
		}
	}
	now := aggregate.Snapshot{ID: r.DeviceID, Exists: true, Group: before.Group,
		Class: aggregate.ClassOf(before.Revoked, after.Pass, after.Fail, after.Unknown),
		Seen:  after.LastSeen, States: len(next), StateAt: at, Failing: failingSnapshot(next)}
	for id, p := range prev {
		if st, ok := next[id]; ok && st == p {
			// Kept as it was, with its updated_at.
			now.StateAt = max(now.StateAt, prevUpdated[id])
		}
	}
	return true, applyAggregates(ctx, tx, snap, now, r.ObservedAt)
}

// The statements of every report, by name so that
// TestHotStatementsStayOnTheirDevice can check their query plans: each
// reads and writes the rows of its own device only, whatever the
// planner's statistics.
const (
	qReportDevice     = `SELECT epoch, last_epoch, last_sequence, enrolled_at, last_seen, revoked_at, grp, pass_n, fail_n, unknown_n, states_at FROM devices WHERE id = ?`
	qReportHash       = `SELECT content_hash FROM reports WHERE device_id = ? AND epoch = ? AND sequence = ?`
	qReportDropped    = `UPDATE reports SET dropped_total = max(dropped_total, ?) WHERE device_id = ? AND epoch = ? AND sequence = ?`
	qTopOfEpoch       = `SELECT max(sequence) FROM reports WHERE device_id = ? AND epoch = ?`
	qTopOfDevice      = `SELECT coalesce(max(sequence), 0) FROM reports WHERE device_id = ?`
	qDeviceSeen       = `UPDATE devices SET last_seen = ? WHERE id = ?`
	qDeleteRuleState  = `DELETE FROM rule_states WHERE device_id = ? AND rule_id = ?`
	qInsertTransition = `INSERT INTO transitions (device_id, rule_id, from_v, to_v, at, sequence, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qInsertReport     = `INSERT INTO reports (device_id, epoch, sequence, received_at, collected_at, collected_at_sent, observed_at, clock_suspect, content_hash,
		agent_version, policy_name, policy_version, dropped_reports, dropped_total, facts, results, facts_epoch, facts_sequence,
		seal_statement, seal_hash, seal_prev_hash, seal_key_id, seal_signature, seal_dropped, feed_serial)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qDeviceNewest = `UPDATE devices SET last_seen = ?, last_epoch = ?, last_sequence = ?, pass_n = ?, fail_n = ?, unknown_n = ?,
		states_at = ?, states_sequence = ? WHERE id = ?`
	qRuleStates = `SELECT rule_id, title, family, severity, collector, agent, observed, expected, reason, failing_since, updated_at,
		grace_connected, grace_used, deadline_paused FROM rule_states INDEXED BY ` + ruleStatesPK + ` WHERE device_id = ?`
	qUpsertRuleState = `INSERT INTO rule_states (device_id, rule_id, title, family, severity, collector, agent, observed, expected, reason, failing_since, updated_at, sequence,
			grace_connected, grace_used, deadline_paused)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (device_id, rule_id) DO UPDATE SET title = excluded.title, family = excluded.family, severity = excluded.severity,
			collector = excluded.collector, agent = excluded.agent, observed = excluded.observed, expected = excluded.expected,
			reason = excluded.reason, failing_since = excluded.failing_since, updated_at = excluded.updated_at, sequence = excluded.sequence,
			grace_connected = excluded.grace_connected, grace_used = excluded.grace_used, deadline_paused = excluded.deadline_paused`
	// qConnectivity keeps the newest report's Connectivity, and when each
	// endpoint was last reached.
	qConnectivity = `INSERT INTO device_connectivity (device_id, collector, update_source, update_source_name, at, collector_at, update_source_at)
			VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?2 = 'reached' THEN ?5 END, CASE WHEN ?3 = 'reached' THEN ?5 END)
			ON CONFLICT (device_id) DO UPDATE SET collector = excluded.collector, update_source = excluded.update_source,
			update_source_name = excluded.update_source_name, at = excluded.at,
			collector_at = coalesce(excluded.collector_at, device_connectivity.collector_at),
			update_source_at = coalesce(excluded.update_source_at, device_connectivity.update_source_at)`
)

// hotWrites are the statements of the writer that prepareHot prepares.
var hotWrites = []string{qReportDevice, qReportHash, qReportDropped, qTopOfEpoch, qTopOfDevice, qInsertReport,
	qSameAsNewest, qDeviceSeen, qDeviceNewest, qRuleStates, qDeleteRuleState, qInsertTransition, qUpsertRuleState}

// writerStatements are every statement prepareHot prepares.
var writerStatements = append(append(append(append([]string{}, hotWrites...), aggregateWrites...), chainWrites...), qSavepoint, qRollbackTo, qRelease)

// sentText is t as RFC 3339, which holds any timestamp an agent can send.
func sentText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// deviceState is what the fleet views derive from a device, before and
// after a write: whether it exists, its status inputs and its failing
// rules (rule id → failing_since, nanoseconds). LastSeen is 0 for never.
// Failing is nil in both when the write did not touch the rules (a late
// report: history only).
type deviceState struct {
	Exists               bool
	Group                string
	Revoked              bool
	EnrolledAt, LastSeen int64
	Pass, Fail, Unknown  int
	Failing              map[string]int64
}

// revokeWith is RevokeDevice and RetireDevice: set, in SQL, the
// device's revoked_at (and for retire, retired_at), revoke its
// certificates and update the fleet's aggregates.
func revokeWith(ctx context.Context, tx *sql.Tx, id string, now time.Time, set string) error {
	before, err := loadSnapshot(ctx, tx, id)
	if err != nil {
		return err
	}
	if !before.Exists {
		return fmt.Errorf("device %s: %w", id, store.ErrNotFound)
	}
	var serial string
	if err := tx.QueryRowContext(ctx, `SELECT cert_serial FROM devices WHERE id = ?`, id).Scan(&serial); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET `+set+` WHERE id = ?`, nanos(now), id); err != nil {
		return err
	}
	if err := dropPending(ctx, tx, id, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO revoked_serials (serial, device_id, revoked_at) VALUES (?, ?, ?)`, serial, id, nanos(now)); err != nil {
		return err
	}
	return trackAggregates(ctx, tx, before, now)
}

// ruleState is one rule_states row as the write path compares it.
type ruleState struct {
	title, family, severity    string
	collector, agent           store.Verdict
	observed, expected, reason string
	since                      sql.NullInt64
	graceConnected, paused     bool
	graceUsed                  int64
}

// ruleStates reads the device's latest state per rule, and when each
// row was written (updated_at).
func ruleStates(ctx context.Context, tx ptx, deviceID string) (map[string]ruleState, map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, qRuleStates, deviceID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out, updated := map[string]ruleState{}, map[string]int64{}
	for rows.Next() {
		var id string
		var st ruleState
		var at int64
		if err := rows.Scan(&id, &st.title, &st.family, &st.severity, &st.collector, &st.agent, &st.observed, &st.expected, &st.reason, &st.since, &at,
			&st.graceConnected, &st.graceUsed, &st.paused); err != nil {
			return nil, nil, err
		}
		out[id], updated[id] = st, at
	}
	return out, updated, rows.Err()
}

// failingSnapshot is the rules of states whose verdict is FAIL, with
// failing_since, as loadSnapshot reads them; nil for none.
func failingSnapshot(states map[string]ruleState) map[string]*int64 {
	var out map[string]*int64
	for id, st := range states {
		if st.collector == store.Fail {
			if out == nil {
				out = map[string]*int64{}
			}
			out[id] = nullable(st.since)
		}
	}
	return out
}

// ruleStatesPK is the index of rule_states' primary key (device_id,
// rule_id). The per-device statements name it: without statistics the
// planner may prefer an index led by the verdict and scan every
// device's rule states.
const ruleStatesPK = `sqlite_autoindex_rule_states_1`

// nextStates is the device's state per rule after the report r: its
// results, failing_since set at ObservedAt on the first FAIL, kept while
// failing (never before enrolled nor after ObservedAt), cleared
// otherwise.
func nextStates(prev map[string]ruleState, r store.Report, enrolled int64) map[string]ruleState {
	at := nanos(r.ObservedAt)
	next := make(map[string]ruleState, len(r.Results))
	for _, res := range r.Results {
		st := ruleState{title: res.Title, family: res.Family, severity: res.Severity, collector: res.Collector, agent: res.Agent,
			observed: res.Observed, expected: res.Expected, reason: res.Reason,
			graceConnected: res.GraceConnected, graceUsed: int64(res.GraceUsed), paused: res.DeadlinePaused}
		if res.Collector == store.Fail {
			st.since = sql.NullInt64{Int64: at, Valid: true}
			if p, ok := prev[res.RuleID]; ok && p.collector == store.Fail && p.since.Valid {
				st.since.Int64 = min(max(p.since.Int64, enrolled), at)
			}
		}
		next[res.RuleID] = st
	}
	return next
}

// failing is the rules failing in states, with their failing_since.
func failing(states map[string]ruleState) map[string]int64 {
	out := map[string]int64{}
	for id, st := range states {
		if st.collector == store.Fail {
			out[id] = st.since.Int64
		}
	}
	return out
}

// writeStates writes the rows of next that differ from prev, deletes
// the rules the report no longer has, and records each change of the
// collector's verdict as a transition at the report's ObservedAt (with
// its ReceivedAt alongside).
func writeStates(ctx context.Context, tx ptx, r store.Report, prev, next map[string]ruleState) error {
	at, seq := nanos(r.ObservedAt), int64(r.Sequence)
	for id := range prev {
		if _, ok := next[id]; ok {
			continue
		}
		if _, err := tx.ExecContext(ctx, qDeleteRuleState, r.DeviceID, id); err != nil {
			return err
		}
	}
	// In the report's order, so transitions keep the order they had.
	for _, res := range r.Results {
		st := next[res.RuleID]
		p, seen := prev[res.RuleID]
		if !seen || p.collector != st.collector {
			if _, err := tx.ExecContext(ctx, qInsertTransition,
				r.DeviceID, res.RuleID, string(p.collector), string(st.collector), at, seq, nanos(r.ReceivedAt)); err != nil {
				return err
			}
		}
		if seen && p == st {
			continue
		}
		if _, err := tx.ExecContext(ctx, qUpsertRuleState,
			r.DeviceID, res.RuleID, st.title, st.family, st.severity, string(st.collector), string(st.agent), st.observed, st.expected, st.reason,
			st.since, at, seq, st.graceConnected, st.graceUsed, st.paused); err != nil {
			return err
		}
	}
	return nil
}

// qReports lists a device's reports, newest first.
var qReports = `SELECT device_id, epoch, sequence, received_at, collected_at, collected_at_sent, observed_at, clock_suspect, content_hash,
	agent_version, policy_name, policy_version, dropped_reports, ` + factsOf("p") + `, ` + resultsOf("p") + `, feed_serial
	FROM reports p WHERE device_id = ? ORDER BY epoch DESC, sequence DESC`

// qNewestReport is a device's newest report.
var qNewestReport = qReports + ` LIMIT 1`

// Reports implements store.Store.
func (s *Store) Reports(ctx context.Context, deviceID string, limit int) ([]store.Report, error) {
	var rows *sql.Rows
	var err error
	if limit == 1 {
		// The newest report, which every compact report is expanded
		// from (collector/server, expandReport): prepared, and with no
		// bound LIMIT for the planner to reconsider.
		rows, err = s.query(ctx, qNewestReport, deviceID)
	} else {
		if limit <= 0 {
			limit = -1
		}
		rows, err = s.db.QueryContext(ctx, qReports+` LIMIT ?`, deviceID, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	defer rows.Close()
	var out []store.Report
	for rows.Next() {
		var r store.Report
		var epoch, seq, dropped, received, collected, observed, feedSerial int64
		var sent, results string
		if err := rows.Scan(&r.DeviceID, &epoch, &seq, &received, &collected, &sent, &observed, &r.ClockSuspect, &r.ContentHash,
			&r.AgentVersion, &r.PolicyName, &r.PolicyVersion, &dropped, &r.Facts, &results, &feedSerial); err != nil {
			return nil, fmt.Errorf("list reports: %w", err)
		}
		r.Epoch, r.Sequence, r.DroppedReports, r.FeedSerial = uint64(epoch), uint64(seq), uint64(dropped), uint64(feedSerial)
		r.ReceivedAt, r.CollectedAt, r.ObservedAt = fromNanos(received), fromNanos(collected), fromNanos(observed)
		if t, err := time.Parse(time.RFC3339Nano, sent); err == nil {
			r.CollectedAt = t.UTC()
		}
		if err := json.Unmarshal([]byte(results), &r.Results); err != nil {
			return nil, fmt.Errorf("list reports: decode results: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// qReportState reads a device's epoch and failing rules in one statement.
const qReportState = `SELECT d.epoch, d.epoch_started_at, d.enrolled_at, r.rule_id, r.failing_since,
	(SELECT min(p.sequence) FROM reports p WHERE p.device_id = d.id AND p.epoch = d.epoch AND p.seal_hash IS NOT NULL) FROM devices d
	LEFT JOIN rule_states r INDEXED BY ` + ruleStatesPK + ` ON r.device_id = d.id AND r.failing_since IS NOT NULL
	WHERE d.id = ?`

// ReportState implements store.ReportStateReader.
func (s *Store) ReportState(ctx context.Context, deviceID string) (store.ReportState, error) {
	rows, err := s.query(ctx, qReportState, deviceID)
	if err != nil {
		return store.ReportState{}, fmt.Errorf("report state: %w", err)
	}
	defer rows.Close()
	out := store.ReportState{FailingSince: map[string]time.Time{}}
	found := false
	for rows.Next() {
		var epoch, started, enrolled int64
		var rule sql.NullString
		var since, sealed sql.NullInt64
		if err := rows.Scan(&epoch, &started, &enrolled, &rule, &since, &sealed); err != nil {
			return store.ReportState{}, fmt.Errorf("report state: %w", err)
		}
		found = true
		out.FirstSealed = uint64(max(sealed.Int64, 0))
		out.Epoch = store.Epoch{Number: uint64(epoch), StartedAt: fromNanos(started), EnrolledAt: fromNanos(enrolled)}
		if rule.Valid && since.Valid {
			out.FailingSince[rule.String] = fromNanos(since.Int64)
		}
	}
	if err := rows.Err(); err != nil {
		return store.ReportState{}, fmt.Errorf("report state: %w", err)
	}
	if !found {
		return store.ReportState{}, fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
	}
	return out, nil
}
