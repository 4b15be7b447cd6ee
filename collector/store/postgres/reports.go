package postgres

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// Reports, identified by (device, epoch, sequence): see
// docs/enrolment.md, "Report identity and clocks".

// StartEpoch implements store.Store.
func (s *Store) StartEpoch(ctx context.Context, deviceID string, now time.Time) (uint64, error) {
	var epoch int64
	err := s.pool.QueryRow(ctx, `UPDATE devices SET epoch = epoch + 1, epoch_started_at = $1 WHERE id = $2 RETURNING epoch`, nanos(now), deviceID).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("start epoch: device %s: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("start epoch: %w", classify(err))
	}
	return uint64(epoch), nil
}

// Epoch implements store.Store.
func (s *Store) Epoch(ctx context.Context, deviceID string) (store.Epoch, error) {
	var epoch, started, enrolled int64
	err := s.pool.QueryRow(ctx, `SELECT epoch, epoch_started_at, enrolled_at FROM devices WHERE id = $1`, deviceID).Scan(&epoch, &started, &enrolled)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(m), 0)::bigint FROM (SELECT max(dropped_total) AS m FROM reports WHERE device_id = $1 GROUP BY epoch) per_epoch`, deviceID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("dropped total: %w", err)
	}
	return uint64(n), nil
}

// LastSequence implements store.Store.
func (s *Store) LastSequence(ctx context.Context, deviceID string, epoch uint64) (uint64, error) {
	var last int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(sequence), 0) FROM reports WHERE device_id = $1 AND epoch = $2`, deviceID, satInt64(epoch)).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("last sequence: %w", err)
	}
	return uint64(last), nil
}

// prevState is a rule state as SaveReport compares it.
type prevState struct {
	title, family, severity, collector, agent, observed, expected, reason string
	since                                                                 *int64
	graceConnected, paused                                                bool
	graceUsed                                                             int64
}

// SaveReport implements store.Store in two round trips. The first
// begins the transaction, takes the device's row lock (SELECT … FOR
// UPDATE), so reports of one device are stored one at a time and of
// different devices in parallel, and reads what the decision needs: the
// report already stored under this identity, the sequence bound, the
// newest report's facts and results (for a heartbeat) and the rule
// states. Each of those statements runs after the lock is held and sees
// what was committed before it. The second writes and commits. Verdict
// counts come from the results in hand, and only rule states that
// changed are written.
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
	j := &reportJob{r: r, results: string(results)}
	if err := s.reports.Do(ctx, j, len(r.Facts)+len(results)); err != nil {
		return false, fmt.Errorf("save report: %w", classify(err))
	}
	return j.stored, nil
}

// reportJob is one SaveReport for the store's report writer.
type reportJob struct {
	r       store.Report
	results string // r.Results as JSON
	stored  bool   // set by the commit: false for a redelivery
}

// Reports are written by one writer per store (collector/store/batch,
// docs/ingest.md): the reports that queued while it committed the last
// batch share one transaction. Its rounds each hold a device once, in
// the order of device ids (the order every write locks devices in); a
// device with several reports in the batch has its later ones in later
// rounds, which see the earlier ones' writes. A round is two round
// trips: the reads of all its reports under their devices' row locks,
// then the writes of all of them. The aggregate counters the batch
// changes are written once, at its end, just before COMMIT, so the hot
// counter rows are locked for the shortest time. A report refused for
// its own reasons (a conflict, an unknown device, a sequence out of
// range) writes nothing and the others go on. If the database refuses
// any statement, or the commit's outcome is unknown, the batch is
// rolled back and every report of it is written again in a transaction
// of its own (saveReport), so one report the database will not take
// costs its batch its speed, never its reports; a report that did
// commit is found as already stored.

// commitReports is the report writer's batch.Commit.
func (s *Store) commitReports(ctx context.Context, jobs []*reportJob) ([]error, error) {
	errs, err := s.commitBatch(ctx, jobs)
	if err == nil {
		return errs, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	for i, j := range jobs {
		j.stored, errs[i] = s.saveReport(ctx, j.r, j.results)
	}
	return errs, nil
}

// commitBatch writes jobs in one transaction; a non-nil error means
// none of them were (or it is not known whether they were) written.
func (s *Store) commitBatch(ctx context.Context, jobs []*reportJob) ([]error, error) {
	errs := make([]error, len(jobs))
	pl, err := s.pipeline(ctx)
	if err != nil {
		return errs, err
	}
	defer pl.close(ctx)
	agg := aggregate.NewDelta()
	pending := make([]int, len(jobs))
	for i := range pending {
		pending[i] = i
	}
	begun := false
	for len(pending) > 0 {
		var round, later []int
		in := map[string]bool{}
		for _, i := range pending {
			if id := jobs[i].r.DeviceID; in[id] {
				later = append(later, i)
			} else {
				in[id] = true
				round = append(round, i)
			}
		}
		slices.SortFunc(round, func(a, b int) int { return cmp.Compare(jobs[a].r.DeviceID, jobs[b].r.DeviceID) })
		var rb pgx.Batch
		if !begun {
			rb.Queue(`BEGIN`)
			begun = true
		}
		reads := make([]reportReads, len(round))
		for k, i := range round {
			queueReportReads(&rb, jobs[i].r, &reads[k])
		}
		if err := pl.send(ctx, &rb); err != nil {
			return errs, err
		}
		var w pgx.Batch
		for k, i := range round {
			// A report's writes join the round's only if it is written
			// at all: a refused one leaves nothing behind.
			var jw pgx.Batch
			d := aggregate.NewDelta()
			stored, err := queueReportWrites(&jw, jobs[i].r, jobs[i].results, &reads[k], d)
			if err != nil {
				errs[i] = err
				continue
			}
			jobs[i].stored = stored
			w.QueuedQueries = append(w.QueuedQueries, jw.QueuedQueries...)
			agg.Merge(d)
		}
		if w.Len() > 0 {
			if err := pl.send(ctx, &w); err != nil {
				return errs, err
			}
		}
		pending = later
	}
	var fin pgx.Batch
	queueDelta(&fin, agg)
	if err := pl.commit(ctx, &fin); err != nil {
		return errs, err
	}
	return errs, nil
}

// saveReport writes one report in a transaction of its own: two round
// trips, the reads under the device's row lock, then the writes and
// COMMIT.
func (s *Store) saveReport(ctx context.Context, r store.Report, results string) (bool, error) {
	pl, err := s.pipeline(ctx)
	if err != nil {
		return false, err
	}
	defer pl.close(ctx)
	var rb pgx.Batch
	rb.Queue(`BEGIN`)
	var rd reportReads
	queueReportReads(&rb, r, &rd)
	if err := pl.send(ctx, &rb); err != nil {
		return false, err
	}
	var w pgx.Batch
	d := aggregate.NewDelta()
	stored, err := queueReportWrites(&w, r, results, &rd, d)
	if err != nil {
		return false, err
	}
	queueDelta(&w, d)
	if err := pl.commit(ctx, &w); err != nil {
		return false, err
	}
	return stored, nil
}

// reportReads is what a report's write reads, under its device's row
// lock: the device, a report already stored under the report's
// identity, the sequence bound, the newest report's facts and results
// (for a heartbeat) and the rule states.
type reportReads struct {
	found                               bool
	epoch, lastEpoch, lastSeq, enrolled int64
	grp                                 string
	revoked, lastSeen                   *int64
	passN, failN, unknownN              int
	newestAt                            int64
	existing                            [][]byte
	top                                 int64
	he, hs                              int64
	hf                                  []byte
	hr                                  string
	haveNewest                          bool
	prev                                map[string]prevState
	chain                               chainReads // for a sealed report
}

// queueReportReads queues into rb the reads of r's write, into rd.
func queueReportReads(rb *pgx.Batch, r store.Report, rd *reportReads) {
	e, seq := int64(r.Epoch), int64(r.Sequence)
	rd.prev = map[string]prevState{}
	rb.Queue(`SELECT epoch, last_epoch, last_sequence, enrolled_at, grp, revoked_at, last_seen, pass_n, fail_n, unknown_n FROM devices WHERE id = $1 FOR UPDATE`, r.DeviceID).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				rd.found = true
				if err := rows.Scan(&rd.epoch, &rd.lastEpoch, &rd.lastSeq, &rd.enrolled, &rd.grp, &rd.revoked, &rd.lastSeen, &rd.passN, &rd.failN, &rd.unknownN); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	rb.Queue(`SELECT coalesce(content_hash, '') FROM reports WHERE device_id = $1 AND epoch = $2 AND sequence = $3`, r.DeviceID, e, seq).
		Query(func(rows pgx.Rows) error {
			var err error
			rd.existing, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
			return err
		})
	// The epoch's first report bounds by the whole history: an agent
	// re-enrolled in place goes on numbering from its outbox.
	rb.Queue(`SELECT coalesce((SELECT max(sequence) FROM reports WHERE device_id = $1 AND epoch = $2), (SELECT max(sequence) FROM reports WHERE device_id = $1), 0)`,
		r.DeviceID, e).QueryRow(func(row pgx.Row) error { return row.Scan(&rd.top) })
	rb.Queue(`SELECT h.epoch, h.sequence, h.facts, h.results, p.observed_at FROM devices d
		JOIN reports p ON p.device_id = d.id AND p.epoch = d.last_epoch AND p.sequence = d.last_sequence
		JOIN reports h ON h.device_id = p.device_id AND h.epoch = coalesce(p.facts_epoch, p.epoch) AND h.sequence = coalesce(p.facts_sequence, p.sequence)
		WHERE d.id = $1`, r.DeviceID).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				if err := rows.Scan(&rd.he, &rd.hs, &rd.hf, &rd.hr, &rd.newestAt); err != nil {
					return err
				}
				rd.haveNewest = true
			}
			return rows.Err()
		})
	rb.Queue(`SELECT rule_id, title, family, severity, collector, agent, observed, expected, reason, failing_since,
		grace_connected, grace_used, deadline_paused FROM rule_states WHERE device_id = $1`, r.DeviceID).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id string
				var p prevState
				if err := rows.Scan(&id, &p.title, &p.family, &p.severity, &p.collector, &p.agent, &p.observed, &p.expected, &p.reason, &p.since,
					&p.graceConnected, &p.graceUsed, &p.paused); err != nil {
					return err
				}
				rd.prev[id] = p
			}
			return rows.Err()
		})
	if r.Seal != nil {
		queueChainReads(rb, r, &rd.chain)
	}
}

// queueReportWrites checks r against what queueReportReads read and
// queues its writes into w and its change of the aggregates into d. It
// returns whether r is stored anew (false: a redelivery, whose larger
// drop count is still kept), or the error that refuses it.
func queueReportWrites(w *pgx.Batch, r store.Report, results string, rd *reportReads, d *aggregate.Delta) (bool, error) {
	e, seq := int64(r.Epoch), int64(r.Sequence)
	if !rd.found {
		return false, fmt.Errorf("device %s: %w", r.DeviceID, store.ErrNotFound)
	}
	if e > rd.epoch {
		return false, fmt.Errorf("epoch %d, device is in %d: %w", r.Epoch, rd.epoch, store.ErrEpochUnknown)
	}
	if len(rd.existing) > 0 {
		if hash := rd.existing[0]; len(hash) == 0 || len(r.ContentHash) == 0 || bytes.Equal(hash, r.ContentHash) {
			// Already stored. A redelivery may carry a larger drop count
			// (drops since the first attempt): keep the largest.
			w.Queue(`UPDATE reports SET dropped_total = greatest(dropped_total, $1) WHERE device_id = $2 AND epoch = $3 AND sequence = $4`,
				satInt64(r.DroppedTotal), r.DeviceID, e, seq)
			return false, nil
		}
		return false, fmt.Errorf("epoch %d sequence %d: %w", r.Epoch, r.Sequence, store.ErrReportConflict)
	}
	if seq > rd.top+store.MaxSequenceJump {
		return false, fmt.Errorf("sequence %d is more than %d past %d: %w", r.Sequence, store.MaxSequenceJump, rd.top, store.ErrSequenceRange)
	}

	facts, res := r.Facts, results
	if facts == nil {
		facts = []byte{}
	}
	var refE, refS *int64
	if rd.haveNewest {
		_, hrest := splitLead(rd.hf)
		_, rest := splitLead(facts)
		if rd.hr == res && bytes.Equal(hrest, rest) {
			// A heartbeat: its own collected_at, the rest of the newest
			// report's facts and its results by reference.
			lead, _ := splitLead(facts)
			he, hs := rd.he, rd.hs
			facts, res, refE, refS = append([]byte{}, lead...), "", &he, &hs
		}
	}
	if r.Seal != nil {
		queueChainWrites(w, r, &rd.chain)
	}
	w.Queue(`INSERT INTO reports (device_id, epoch, sequence, received_at, collected_at, collected_at_sent, observed_at, clock_suspect, content_hash,
		agent_version, policy_name, policy_version, dropped_reports, dropped_total, facts, results, facts_epoch, facts_sequence,
		seal_statement, seal_hash, seal_prev_hash, seal_key_id, seal_signature, seal_dropped, feed_serial)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)`,
		append([]any{r.DeviceID, e, seq, nanos(r.ReceivedAt), nanos(r.CollectedAt), sentText(r.CollectedAt), nanos(r.ObservedAt), boolInt(r.ClockSuspect), r.ContentHash,
			r.AgentVersion, r.PolicyName, r.PolicyVersion, satInt64(r.DroppedReports), satInt64(r.DroppedTotal), facts, res, refE, refS}, append(sealArgs(r.Seal), satInt64(r.FeedSerial))...)...)
	// The device for the aggregates, before and after.
	before := snapshot{ID: r.DeviceID, Exists: true, Group: rd.grp, Class: aggregate.ClassOf(rd.revoked != nil, rd.passN, rd.failN, rd.unknownN), Seen: rd.enrolled, States: len(rd.prev)}
	if rd.lastSeen != nil {
		before.Seen = *rd.lastSeen
	}
	if len(rd.prev) > 0 {
		before.StateAt = rd.newestAt
	}
	for id, p := range rd.prev {
		if p.collector == string(store.Fail) {
			if before.Failing == nil {
				before.Failing = map[string]*int64{}
			}
			before.Failing[id] = p.since
		}
	}
	after := before
	after.Seen = nanos(r.ReceivedAt)
	if rd.lastSeen != nil {
		after.Seen = max(*rd.lastSeen, after.Seen)
	} else {
		after.Seen = max(0, after.Seen)
	}
	if newest := e == rd.epoch && (e > rd.lastEpoch || seq > rd.lastSeq); !newest {
		// An older report arriving late, or one of an earlier
		// enrolment: history only.
		w.Queue(`UPDATE devices SET last_seen = greatest(coalesce(last_seen, 0), $1) WHERE id = $2`, nanos(r.ReceivedAt), r.DeviceID)
	} else {
		counts, failing, err := queueStates(w, r, rd.prev, fromNanos(rd.enrolled))
		if err != nil {
			return false, err
		}
		w.Queue(`UPDATE devices SET last_seen = greatest(coalesce(last_seen, 0), $1), last_epoch = $2, last_sequence = $3,
			pass_n = $4, fail_n = $5, unknown_n = $6, states_at = $7, states_sequence = $3 WHERE id = $8`,
			nanos(r.ReceivedAt), e, seq, counts[store.Pass], counts[store.Fail], counts[store.Unknown], nanos(r.ObservedAt), r.DeviceID)
		if c := r.Connectivity; c != nil {
			// The newest report's connectivity, and when each endpoint
			// was last reached.
			w.Queue(`INSERT INTO device_connectivity (device_id, collector, update_source, update_source_name, at, collector_at, update_source_at)
				VALUES ($1, $2::text, $3::text, $4, $5::bigint, CASE WHEN $2::text = 'reached' THEN $5::bigint END, CASE WHEN $3::text = 'reached' THEN $5::bigint END)
				ON CONFLICT (device_id) DO UPDATE SET collector = excluded.collector, update_source = excluded.update_source,
				update_source_name = excluded.update_source_name, at = excluded.at,
				collector_at = coalesce(excluded.collector_at, device_connectivity.collector_at),
				update_source_at = coalesce(excluded.update_source_at, device_connectivity.update_source_at)`,
				r.DeviceID, string(c.Collector), string(c.UpdateSource), c.UpdateSourceName, nanos(r.ObservedAt))
		}
		after.Class = aggregate.ClassOf(rd.revoked != nil, counts[store.Pass], counts[store.Fail], counts[store.Unknown])
		after.States, after.Failing = len(r.Results), failing
	}
	d.Change(before, after, nanos(r.ObservedAt))
	return true, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// sentText is t as RFC 3339, which holds any timestamp an agent can send.
func sentText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// queueStates queues the writes that make the device's latest state per
// rule the report's, at its ObservedAt: rule states that changed are
// upserted, those of rules the report no longer has are deleted, and
// each change of the collector's verdict is a transition. A failing_since
// carried over is never before enrolled nor after ObservedAt. It returns
// the device's verdict counts under the new state and its failing rules
// with their failing_since.
func queueStates(w *pgx.Batch, r store.Report, prev map[string]prevState, enrolled time.Time) (map[store.Verdict]int, map[string]*int64, error) {
	at := nanos(r.ObservedAt)
	seq := int64(r.Sequence)
	counts := map[store.Verdict]int{}
	failing := map[string]*int64{}
	seen := make(map[string]bool, len(r.Results))
	for _, res := range r.Results {
		if seen[res.RuleID] {
			return nil, nil, fmt.Errorf("rule %s appears twice in the report", res.RuleID)
		}
		seen[res.RuleID] = true
		counts[res.Collector]++
		p, had := prev[res.RuleID]
		var since *int64
		if res.Collector == store.Fail {
			v := at
			if had && p.collector == string(store.Fail) && p.since != nil {
				v = min(max(*p.since, nanos(enrolled)), at)
			}
			since = &v
			failing[res.RuleID] = since
		}
		if !had || p.collector != string(res.Collector) {
			w.Queue(`INSERT INTO transitions (device_id, rule_id, from_v, to_v, at, sequence, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				r.DeviceID, res.RuleID, p.collector, string(res.Collector), at, seq, nanos(r.ReceivedAt))
		}
		next := prevState{res.Title, res.Family, res.Severity, string(res.Collector), string(res.Agent), res.Observed, res.Expected, res.Reason, since,
			res.GraceConnected, res.DeadlinePaused, int64(res.GraceUsed)}
		if had && sameState(p, next) {
			continue
		}
		w.Queue(`INSERT INTO rule_states (device_id, rule_id, title, family, severity, collector, agent, observed, expected, reason, failing_since, updated_at, sequence,
			grace_connected, grace_used, deadline_paused)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			ON CONFLICT (device_id, rule_id) DO UPDATE SET title = excluded.title, family = excluded.family, severity = excluded.severity,
			collector = excluded.collector, agent = excluded.agent, observed = excluded.observed, expected = excluded.expected, reason = excluded.reason,
			failing_since = excluded.failing_since, updated_at = excluded.updated_at, sequence = excluded.sequence,
			grace_connected = excluded.grace_connected, grace_used = excluded.grace_used, deadline_paused = excluded.deadline_paused`,
			r.DeviceID, res.RuleID, res.Title, res.Family, res.Severity, string(res.Collector), string(res.Agent), res.Observed, res.Expected, res.Reason,
			since, at, seq, res.GraceConnected, int64(res.GraceUsed), res.DeadlinePaused)
	}
	var gone []string
	for id := range prev {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		w.Queue(`DELETE FROM rule_states WHERE device_id = $1 AND rule_id = ANY($2)`, r.DeviceID, gone)
	}
	return counts, failing, nil
}

func sameState(a, b prevState) bool {
	sameSince := (a.since == nil) == (b.since == nil) && (a.since == nil || *a.since == *b.since)
	a.since, b.since = nil, nil
	return a == b && sameSince
}

// Heartbeats: a report whose facts (less their collected_at) and results
// equal its device's newest report's is stored with only its own
// collected_at as facts, empty results, and a reference
// (facts_epoch, facts_sequence) to the report that holds the rest, as in
// the SQLite store. Reads join the holder (heartbeatJoin) and put the
// report together with whole.

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

// heartbeatJoin joins the holder h of the reports row p's facts.
const heartbeatJoin = ` LEFT JOIN reports h ON p.facts_epoch IS NOT NULL AND h.device_id = p.device_id AND h.epoch = p.facts_epoch AND h.sequence = p.facts_sequence`

// whole is a report's facts and results, its own or, for a heartbeat
// (ref), its own leading field followed by the rest of the holder's
// facts, and the holder's results ("null" when the holder is gone).
func whole(ref bool, facts []byte, results string, hfacts []byte, hresults *string) ([]byte, string) {
	if !ref {
		return facts, results
	}
	if hresults == nil {
		return facts, "null"
	}
	_, rest := splitLead(hfacts)
	return append(append([]byte{}, facts...), rest...), *hresults
}

// Reports implements store.Store.
func (s *Store) Reports(ctx context.Context, deviceID string, limit int) ([]store.Report, error) {
	q := `SELECT p.device_id, p.epoch, p.sequence, p.received_at, p.collected_at, p.collected_at_sent, p.observed_at, p.clock_suspect, p.content_hash,
		p.agent_version, p.policy_name, p.policy_version, p.dropped_reports, p.facts, p.results, p.facts_epoch IS NOT NULL, h.facts, h.results, p.feed_serial
		FROM reports p` + heartbeatJoin + ` WHERE p.device_id = $1 ORDER BY p.epoch DESC, p.sequence DESC`
	args := []any{deviceID}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	defer rows.Close()
	var out []store.Report
	for rows.Next() {
		var r store.Report
		var epoch, seq, dropped, received, collected, observed, suspect, feedSerial int64
		var sent, results string
		var ref bool
		var hfacts []byte
		var hresults *string
		if err := rows.Scan(&r.DeviceID, &epoch, &seq, &received, &collected, &sent, &observed, &suspect, &r.ContentHash,
			&r.AgentVersion, &r.PolicyName, &r.PolicyVersion, &dropped, &r.Facts, &results, &ref, &hfacts, &hresults, &feedSerial); err != nil {
			return nil, fmt.Errorf("list reports: %w", err)
		}
		r.Epoch, r.Sequence, r.DroppedReports, r.ClockSuspect, r.FeedSerial = uint64(epoch), uint64(seq), uint64(dropped), suspect != 0, uint64(feedSerial)
		r.ReceivedAt, r.CollectedAt, r.ObservedAt = fromNanos(received), fromNanos(collected), fromNanos(observed)
		if t, err := time.Parse(time.RFC3339Nano, sent); err == nil {
			r.CollectedAt = t.UTC()
		}
		r.Facts, results = whole(ref, r.Facts, results, hfacts, hresults)
		if err := json.Unmarshal([]byte(results), &r.Results); err != nil {
			return nil, fmt.Errorf("list reports: decode results: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FailingSince implements store.Store.
func (s *Store) FailingSince(ctx context.Context, deviceID string) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT rule_id, failing_since FROM rule_states WHERE device_id = $1 AND failing_since IS NOT NULL`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("failing since: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var since int64
		if err := rows.Scan(&id, &since); err != nil {
			return nil, fmt.Errorf("failing since: %w", err)
		}
		out[id] = fromNanos(since)
	}
	return out, rows.Err()
}

// RuleStates implements store.Store. Every rule state is as of the
// device's newest report, which it reports as UpdatedAt and Sequence
// (SaveReport leaves unchanged rows as they are).
func (s *Store) RuleStates(ctx context.Context, deviceID string) ([]store.RuleState, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.rule_id, r.title, r.family, r.severity, r.collector, r.agent, r.observed, r.expected, r.reason, r.failing_since,
		coalesce(d.states_at, p.observed_at, r.updated_at), coalesce(d.states_sequence, p.sequence, r.sequence), r.grace_connected, r.grace_used, r.deadline_paused
		FROM rule_states r JOIN devices d ON d.id = r.device_id
		LEFT JOIN reports p ON p.device_id = d.id AND p.epoch = d.last_epoch AND p.sequence = d.last_sequence
		WHERE r.device_id = $1 ORDER BY r.rule_id`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("rule states: %w", err)
	}
	defer rows.Close()
	var out []store.RuleState
	for rows.Next() {
		var st store.RuleState
		var coll, agent string
		var since *int64
		var updated, seq, used int64
		if err := rows.Scan(&st.RuleID, &st.Title, &st.Family, &st.Severity, &coll, &agent, &st.Observed, &st.Expected, &st.Reason, &since, &updated, &seq,
			&st.GraceConnected, &used, &st.DeadlinePaused); err != nil {
			return nil, fmt.Errorf("rule states: %w", err)
		}
		st.Collector, st.Agent = store.Verdict(coll), store.Verdict(agent)
		st.FailingSince, st.UpdatedAt, st.Sequence = fromNull(since), fromNanos(updated), uint64(seq)
		st.GraceUsed = time.Duration(used)
		out = append(out, st)
	}
	return out, rows.Err()
}

// Transitions implements store.Store.
func (s *Store) Transitions(ctx context.Context, deviceID string) ([]store.Transition, error) {
	rows, err := s.pool.Query(ctx, `SELECT device_id, rule_id, from_v, to_v, at, sequence, received_at FROM transitions WHERE device_id = $1 ORDER BY id`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("transitions: %w", err)
	}
	defer rows.Close()
	var out []store.Transition
	for rows.Next() {
		var t store.Transition
		var from, to string
		var at, seq int64
		var received *int64
		if err := rows.Scan(&t.DeviceID, &t.RuleID, &from, &to, &at, &seq, &received); err != nil {
			return nil, fmt.Errorf("transitions: %w", err)
		}
		t.From, t.To, t.At, t.Sequence, t.ReceivedAt = store.Verdict(from), store.Verdict(to), fromNanos(at), uint64(seq), fromNull(received)
		out = append(out, t)
	}
	return out, rows.Err()
}

var _ store.ReportStateReader = (*Store)(nil)

// ReportState implements store.ReportStateReader: Epoch and FailingSince
// in one round trip.
func (s *Store) ReportState(ctx context.Context, deviceID string) (store.ReportState, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.epoch, d.epoch_started_at, d.enrolled_at, r.rule_id, r.failing_since,
		(SELECT min(p.sequence) FROM reports p WHERE p.device_id = d.id AND p.epoch = d.epoch AND p.seal_hash IS NOT NULL) FROM devices d
		LEFT JOIN rule_states r ON r.device_id = d.id AND r.failing_since IS NOT NULL
		WHERE d.id = $1`, deviceID)
	if err != nil {
		return store.ReportState{}, fmt.Errorf("report state: %w", err)
	}
	defer rows.Close()
	out := store.ReportState{FailingSince: map[string]time.Time{}}
	found := false
	for rows.Next() {
		var epoch, started, enrolled int64
		var rule *string
		var since, sealed *int64
		if err := rows.Scan(&epoch, &started, &enrolled, &rule, &since, &sealed); err != nil {
			return store.ReportState{}, fmt.Errorf("report state: %w", err)
		}
		found = true
		if sealed != nil && *sealed > 0 {
			out.FirstSealed = uint64(*sealed)
		}
		out.Epoch = store.Epoch{Number: uint64(epoch), StartedAt: fromNanos(started), EnrolledAt: fromNanos(enrolled)}
		if rule != nil && since != nil {
			out.FailingSince[*rule] = fromNanos(*since)
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
