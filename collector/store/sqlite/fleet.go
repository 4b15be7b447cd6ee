package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// The fleet views read the aggregates aggregates.go keeps
// (docs/storage.md). Staleness depends on the time of the query, so
// counts are kept per bucket of seen time: a query sums the whole hour
// buckets after the stale cut, the minute buckets of the cut's hour after
// its minute, and counts the devices of the cut's own minute exactly from
// the devices_seen index.

func staleCut(now time.Time, staleAfter time.Duration) int64 { return nanos(now.Add(-staleAfter)) }

// freshCounts counts the non-revoked devices seen at or after cut, by
// class, in group (every group when empty).
func (s *Store) freshCounts(ctx context.Context, cut int64, group string) (map[string]int, error) {
	r := aggregate.RangesOf(cut)
	g, ga := "", []any{}
	if group != "" {
		g, ga = ` AND grp = ?`, []any{group}
	}
	args := append([]any{aggregate.HourNanos, r.Hour}, ga...)
	args = append(append(args, aggregate.MinuteNanos, r.Minute, r.MinuteEnd), ga...)
	args = append(append(args, r.Cut, r.ExactEnd), ga...)
	rows, err := s.db.QueryContext(ctx, `SELECT class, sum(n) FROM (
		SELECT class, n FROM agg_seen WHERE width = ? AND bucket > ?`+g+`
		UNION ALL SELECT class, n FROM agg_seen WHERE width = ? AND bucket > ? AND bucket < ?`+g+`
		UNION ALL SELECT `+classExpr+`, 1 FROM devices d WHERE `+seenExpr+` >= ? AND `+seenExpr+` < ? AND d.revoked_at IS NULL`+strings.ReplaceAll(g, "grp", "+d.grp")+`
		) GROUP BY class`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var class string
		var n int
		if err := rows.Scan(&class, &n); err != nil {
			return nil, err
		}
		out[class] = n
	}
	return out, rows.Err()
}

// classTotals counts the devices by class, in group (every group when
// empty).
func (s *Store) classTotals(ctx context.Context, group string) (map[string]int, error) {
	q, args := `SELECT class, sum(n) FROM agg_devices GROUP BY class`, []any{}
	if group != "" {
		q, args = `SELECT class, sum(n) FROM agg_devices WHERE grp = ? GROUP BY class`, []any{group}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var class string
		var n int
		if err := rows.Scan(&class, &n); err != nil {
			return nil, err
		}
		out[class] = n
	}
	return out, rows.Err()
}

// fleetCounts is FleetCounts for one group, or all when group is empty.
func (s *Store) fleetCounts(ctx context.Context, now time.Time, staleAfter time.Duration, group string) (store.FleetCounts, error) {
	tot, err := s.classTotals(ctx, group)
	if err != nil {
		return store.FleetCounts{}, err
	}
	fresh, err := s.freshCounts(ctx, staleCut(now, staleAfter), group)
	if err != nil {
		return store.FleetCounts{}, err
	}
	return aggregate.FleetCounts(tot, fresh), nil
}

// FleetCounts implements store.Dashboard.
func (s *Store) FleetCounts(ctx context.Context, now time.Time, staleAfter time.Duration) (store.FleetCounts, error) {
	c, err := s.fleetCounts(ctx, now, staleAfter, "")
	if err != nil {
		return store.FleetCounts{}, fmt.Errorf("fleet counts: %w", err)
	}
	return c, nil
}

// failingCounts counts per rule the non-revoked devices seen at or after
// cut that fail it; only rule when it is not empty.
func (s *Store) failingCounts(ctx context.Context, cut int64, rule string) (map[string]int, error) {
	r := aggregate.RangesOf(cut)
	g, ga := "", []any{}
	if rule != "" {
		g, ga = ` AND rule_id = ?`, []any{rule}
	}
	args := append([]any{aggregate.HourNanos, r.Hour}, ga...)
	args = append(append(args, aggregate.MinuteNanos, r.Minute, r.MinuteEnd), ga...)
	args = append(append(args, r.Cut, r.ExactEnd), ga...)
	rows, err := s.db.QueryContext(ctx, `SELECT rule_id, sum(n) FROM (
		SELECT rule_id, n FROM agg_rule_seen WHERE width = ? AND bucket > ?`+g+`
		UNION ALL SELECT rule_id, n FROM agg_rule_seen WHERE width = ? AND bucket > ? AND bucket < ?`+g+`
		UNION ALL SELECT r.rule_id, 1 FROM devices d CROSS JOIN rule_states r ON r.device_id = d.id
			WHERE `+seenExpr+` >= ? AND `+seenExpr+` < ? AND d.revoked_at IS NULL AND +r.collector = 'FAIL'`+strings.ReplaceAll(g, "rule_id", "+r.rule_id")+`
		) GROUP BY rule_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// FailingByRule implements store.Dashboard. A rule's title is that of one
// of its failing states.
func (s *Store) FailingByRule(ctx context.Context, now time.Time, staleAfter time.Duration) ([]store.RuleCount, error) {
	counts, err := s.failingCounts(ctx, staleCut(now, staleAfter), "")
	if err != nil {
		return nil, fmt.Errorf("failing by rule: %w", err)
	}
	out := make([]store.RuleCount, 0, len(counts))
	for id, n := range counts {
		if n <= 0 {
			continue
		}
		c := store.RuleCount{RuleID: id, Devices: n}
		if err := s.db.QueryRowContext(ctx, `SELECT title FROM rule_states WHERE rule_id = ? AND collector = 'FAIL' LIMIT 1`, id).Scan(&c.Title); err != nil {
			return nil, fmt.Errorf("failing by rule: title of %s: %w", id, err)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Devices != out[j].Devices {
			return out[i].Devices > out[j].Devices
		}
		return out[i].RuleID < out[j].RuleID
	})
	return out, nil
}

// connectedDue joins a failing state (agg_failing f) to its rule state
// (r) and device (d); connectedSince is, for a connected-grace state,
// the time its deadline counts grace from: its report's time less the
// connected time already used (store.ConnectedDeadline).
const (
	connectedDue   = `agg_failing f JOIN rule_states r INDEXED BY ` + ruleStatesPK + ` ON r.device_id = f.device_id AND r.rule_id = f.rule_id JOIN devices d ON d.id = f.device_id`
	connectedSince = `(coalesce(d.states_at, r.updated_at) - r.grace_used)`
)

// PastDeadline implements store.Dashboard, from agg_failing (the FAIL
// states of non-revoked devices by group, rule and failing_since) and
// agg_failing_hours (their counts per hour of failing_since).
func (s *Store) PastDeadline(ctx context.Context, rules []store.DeadlineRule, now time.Time, limit int) ([]store.Overdue, int, error) {
	if len(rules) == 0 {
		return nil, 0, nil
	}
	if limit <= 0 {
		limit = -1
	}
	// One indexed range per (group, rule), each already ordered and
	// limited, joined by UNION ALL: the outer sort sees at most limit rows
	// of each.
	var parts []string
	var args []any
	grace := map[[2]string]time.Duration{}
	total := 0
	for _, r := range rules {
		key := [2]string{r.Group, r.RuleID}
		if _, dup := grace[key]; dup {
			continue
		}
		grace[key] = r.Grace
		cut := nanos(now.Add(-r.Grace))
		h := aggregate.FloorDiv(cut, aggregate.HourNanos)
		var n int
		// The counts by failing_since, less the connected-grace states
		// among them, plus those of them whose connected deadline
		// (docs/connectivity.md) has passed and is not paused.
		err := s.db.QueryRowContext(ctx, `SELECT coalesce((SELECT sum(n) FROM agg_failing_hours WHERE grp = ?1 AND rule_id = ?2 AND hour < ?3), 0)
			+ (SELECT count(*) FROM agg_failing WHERE grp = ?1 AND rule_id = ?2 AND since >= ?4 AND since <= ?5)
			- (SELECT count(*) FROM agg_failing f JOIN rule_states r INDEXED BY `+ruleStatesPK+` ON r.device_id = f.device_id AND r.rule_id = f.rule_id
				WHERE f.grp = ?1 AND f.rule_id = ?2 AND f.since <= ?5 AND r.grace_connected = 1)
			+ (SELECT count(*) FROM `+connectedDue+` WHERE f.grp = ?1 AND f.rule_id = ?2 AND r.grace_connected = 1 AND r.deadline_paused = 0 AND `+connectedSince+` <= ?5)`,
			r.Group, r.RuleID, h, aggregate.BucketStart(h, aggregate.HourNanos), cut).Scan(&n)
		if err != nil {
			return nil, 0, fmt.Errorf("past deadline: %w", err)
		}
		total += n
		parts = append(parts, `SELECT * FROM (SELECT f.grp, f.rule_id, f.since, f.device_id, f.since + ? AS due FROM agg_failing f
				WHERE f.grp = ? AND f.rule_id = ? AND f.since <= ?
				AND NOT EXISTS (SELECT 1 FROM rule_states r INDEXED BY `+ruleStatesPK+` WHERE r.device_id = f.device_id AND r.rule_id = f.rule_id AND r.grace_connected = 1)
				ORDER BY f.since, f.device_id LIMIT ?)`,
			`SELECT * FROM (SELECT f.grp, f.rule_id, f.since, f.device_id, `+connectedSince+` + ? AS due FROM `+connectedDue+`
				WHERE f.grp = ? AND f.rule_id = ? AND r.grace_connected = 1 AND r.deadline_paused = 0 AND `+connectedSince+` <= ?
				ORDER BY f.since, f.device_id LIMIT ?)`)
		args = append(args, int64(r.Grace), r.Group, r.RuleID, cut, limit, int64(r.Grace), r.Group, r.RuleID, cut, limit)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT f.device_id, d.hostname, f.grp, f.rule_id, r.title, f.since, f.due
		FROM (SELECT * FROM (`+strings.Join(parts, " UNION ALL ")+`) ORDER BY since, device_id LIMIT ?) f
		JOIN devices d ON d.id = f.device_id JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id
		ORDER BY f.since, f.device_id`, append(args, limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("past deadline: %w", err)
	}
	defer rows.Close()
	var out []store.Overdue
	for rows.Next() {
		var o store.Overdue
		var since, due int64
		if err := rows.Scan(&o.DeviceID, &o.Hostname, &o.Group, &o.RuleID, &o.Title, &since, &due); err != nil {
			return nil, 0, fmt.Errorf("past deadline: %w", err)
		}
		o.FailingSince = fromNanos(since)
		o.Deadline = fromNanos(due)
		out = append(out, o)
	}
	return out, total, rows.Err()
}

// Groups implements store.Dashboard.
func (s *Store) Groups(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT grp FROM agg_devices GROUP BY grp ORDER BY grp`)
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

const listColumns = `SELECT d.id, d.grp, d.hostname, d.platform, d.os_name, d.os_version, d.architecture, d.machine_id, d.agent_version,
	d.enrolled_at, d.last_seen, d.cert_serial, d.cert_not_after, d.revoked_at, d.last_sequence, d.pass_n, d.fail_n, d.unknown_n, coalesce(d.next_cert_serial, '')`

// fromSearched reads the devices of a JSON array of ids (a search's
// candidates), by primary key: the CROSS JOIN keeps SQLite from walking
// a sort index instead.
const fromSearched = ` FROM json_each(?) c CROSS JOIN devices d ON d.id = c.value`

// searchCandidates is how many devices a hostname search may find in the
// trigram index for a list to be read from them and sorted; a search
// that finds more is common enough for the sort index's walk to meet a
// page of matches soon. A variable so tests can take both paths.
var searchCandidates = 2000

// searchPhrase is the FTS5 query that finds, among others, every
// hostname containing search as SQLite's LIKE compares (ASCII case
// folded; the trigram tokenizer folds more, and the LIKE still applied
// to its devices drops the rest), or "" when the index cannot answer:
// a trigram needs three characters.
func searchPhrase(search string) string {
	if utf8.RuneCountInString(search) < 3 {
		return ""
	}
	return `"` + strings.ReplaceAll(search, `"`, `""`) + `"`
}

// searched returns, as a JSON array, the devices whose hostnames the
// trigram index (migration_search.go) finds for q's search when there
// are at most searchCandidates of them (few); the index is read once.
func (s *Store) searched(ctx context.Context, q store.DeviceQuery) (string, bool, error) {
	phrase := searchPhrase(q.Search)
	if phrase == "" {
		return "", false, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT i.device_id FROM devices_search CROSS JOIN device_search_ids i ON i.n = devices_search.rowid
		WHERE devices_search MATCH ? LIMIT ?`, phrase, searchCandidates+1)
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", false, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil || len(ids) > searchCandidates {
		return "", false, err
	}
	b, err := json.Marshal(append([]string{}, ids...))
	return string(b), err == nil, err
}

// sortCols is the order of a sort key; each has an index that walks it
// (migration_aggregates.go, migration_devlist.go), so a page reads only
// its own rows. The merged sorts (status, failing since, deadline) are
// aggregate.List's.
func sortCols(sortKey string) ([]aggregate.SortCol, error) {
	if k, ok := strings.CutPrefix(sortKey, "~"); ok {
		// The exact reverse of k (aggregate.Reverse).
		cols, err := sortCols(k)
		for i := range cols {
			cols[i].Desc = !cols[i].Desc
		}
		return cols, err
	}
	key, desc := strings.TrimPrefix(sortKey, "-"), strings.HasPrefix(sortKey, "-")
	host := func(desc bool) aggregate.SortCol {
		return aggregate.SortCol{Expr: `d.hostname COLLATE NOCASE`, Desc: desc, Val: func(d store.Device) string { return d.Hostname }}
	}
	id := func(desc bool) aggregate.SortCol {
		return aggregate.SortCol{Expr: `d.id`, Desc: desc, Val: func(d store.Device) string { return d.ID }}
	}
	switch key {
	case "", store.SortHostname:
		return []aggregate.SortCol{host(desc), id(desc)}, nil
	case store.SortLastSeen:
		seen := aggregate.SortCol{Expr: seenExpr, Desc: desc, Num: true, Val: func(d store.Device) string {
			t := d.EnrolledAt
			if d.LastSeen != nil {
				t = *d.LastSeen
			}
			return strconv.FormatInt(nanos(t), 10)
		}}
		return []aggregate.SortCol{seen, id(desc)}, nil
	case store.SortGroup:
		return []aggregate.SortCol{{Expr: `d.grp`, Desc: desc, Val: func(d store.Device) string { return d.Group }}, host(false), id(false)}, nil
	case store.SortFail:
		fail := aggregate.SortCol{Expr: `d.fail_n`, Desc: desc, Num: true, Val: func(d store.Device) string { return strconv.Itoa(d.Fail) }}
		return []aggregate.SortCol{fail, host(false), id(false)}, nil
	case store.SortOS:
		// Descending is the exact reverse, so one index serves both.
		return []aggregate.SortCol{{Expr: `d.os_name`, Desc: desc, Val: func(d store.Device) string { return d.OSName }}, host(desc), id(desc)}, nil
	case store.SortAgentVersion:
		return []aggregate.SortCol{{Expr: `d.agent_version`, Desc: desc, Val: func(d store.Device) string { return d.AgentVersion }}, host(desc), id(desc)}, nil
	case store.SortCert:
		cert := aggregate.SortCol{Expr: `d.cert_not_after`, Desc: desc, Num: true, Val: func(d store.Device) string { return strconv.FormatInt(nanos(d.CertNotAfter), 10) }}
		return []aggregate.SortCol{cert, id(desc)}, nil
	}
	return nil, fmt.Errorf("unknown sort %q", sortKey)
}

// after is the condition "after the cursor's device" in the order of
// cols: a row-by-row comparison spelled out, since the directions may
// differ, led by a range on the first column so the index starts there.
func after(cols []aggregate.SortCol, vals []any) (string, []any) {
	op := func(c aggregate.SortCol) string {
		if c.Desc {
			return "<"
		}
		return ">"
	}
	var ors []string
	var args []any
	for i, c := range cols {
		var ands []string
		for j := range i {
			ands = append(ands, cols[j].Expr+` = ?`)
			args = append(args, vals[j])
		}
		ands = append(ands, c.Expr+` `+op(c)+` ?`)
		args = append(args, vals[i])
		ors = append(ors, `(`+strings.Join(ands, " AND ")+`)`)
	}
	return cols[0].Expr + ` ` + op(cols[0]) + `= ? AND (` + strings.Join(ors, " OR ") + `)`, append([]any{vals[0]}, args...)
}

// ListDevices implements store.Dashboard (aggregate.List puts the merged
// sorts together from listBackend's pieces).
func (s *Store) ListDevices(ctx context.Context, q store.DeviceQuery) (store.DevicePage, error) {
	p, err := aggregate.List(ctx, listBackend{s, &listMemo{}}, q)
	if err != nil {
		return store.DevicePage{}, fmt.Errorf("list devices: %w", err)
	}
	return p, nil
}

// listBackend is the store as aggregate.List sees it, for one
// ListDevices call.
type listBackend struct {
	s    *Store
	memo *listMemo
}

// listMemo keeps a ListDevices call's candidates: each piece of the list
// and its total have the same search, overdue filter, group and
// deadlines, so they are read once (the overdue ones look up every
// failing state of the connected-grace rules).
type listMemo struct {
	done bool
	ids  string
	few  bool
}

// candidates is Store.candidates, read once per ListDevices call.
func (b listBackend) candidates(ctx context.Context, q store.DeviceQuery) (string, bool, error) {
	if b.memo == nil {
		return b.s.candidates(ctx, q)
	}
	if !b.memo.done {
		ids, few, err := b.s.candidates(ctx, q)
		if err != nil {
			return "", false, err
		}
		*b.memo = listMemo{done: true, ids: ids, few: few}
	}
	return b.memo.ids, b.memo.few, nil
}

// deadlineCond is "the failing state r of device d has a deadline in
// graces" (and, with now, "is past it", as store.RuleState.Overdue
// says: failing since plus grace, or for a connected-grace state its
// report's time plus what is left of grace, never while paused): one
// term per grace, whose
// (group NUL rule) keys are a list SQLite looks a state's key up in by
// index, built once per statement, where a term per (group, rule) would
// be tried one after the other for every state of every device. A policy
// has few distinct graces.
func deadlineCond(graces map[[2]string]time.Duration, now *time.Time) (string, []any) {
	if len(graces) == 0 {
		return `0`, nil
	}
	byGrace := map[time.Duration][]string{}
	for k, g := range graces {
		if now == nil {
			g = 0 // one list: whether there is a deadline at all
		}
		byGrace[g] = append(byGrace[g], k[0]+"\x00"+k[1])
	}
	gs := make([]time.Duration, 0, len(byGrace))
	for g := range byGrace {
		gs = append(gs, g)
	}
	slices.Sort(gs)
	var ors []string
	var args []any
	for _, g := range gs {
		keys := byGrace[g]
		slices.Sort(keys)
		term := `d.grp || char(0) || r.rule_id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ") + `)`
		for _, k := range keys {
			args = append(args, k)
		}
		if now != nil {
			term = `(` + term + ` AND (+r.failing_since <= ? AND r.grace_connected = 0
				OR r.grace_connected = 1 AND r.deadline_paused = 0 AND +r.failing_since IS NOT NULL AND ` + connectedSince + ` <= ?))`
			cut := nanos(now.Add(-g))
			args = append(args, cut, cut)
		}
		ors = append(ors, term)
	}
	return `(` + strings.Join(ors, " OR ") + `)`, args
}

// filters are q's conditions on the devices d. Those on a column other
// than the sort's (key) are written so that SQLite cannot pick their
// index (a unary +): it walks the sort's index and stops at the page's
// end, instead of sorting every match.
func filters(q store.DeviceQuery, key string, rest aggregate.Rest) ([]string, []any, error) {
	plain := func(expr string, indexed bool) string {
		if indexed {
			return expr
		}
		return `+` + expr
	}
	bySeen := key == store.SortLastSeen
	byHost := key == "" || key == store.SortHostname || key == store.SortGroup
	seen := plain(seenExpr, bySeen)
	var conds []string
	var args []any
	cut := staleCut(q.Now, q.StaleAfter)
	switch q.Status {
	case "":
	case store.StatusRevoked:
		conds = append(conds, `d.revoked_at IS NOT NULL`)
	case store.StatusStale:
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` < ?`)
		args = append(args, cut)
	case store.StatusFailing:
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` >= ? AND `+plain(`d.fail_n`, key == store.SortFail)+` > 0`)
		args = append(args, cut)
	case store.StatusUnknown:
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` >= ? AND +d.fail_n = 0 AND (d.unknown_n > 0 OR d.pass_n = 0)`)
		args = append(args, cut)
	case store.StatusCompliant:
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` >= ? AND +d.fail_n = 0 AND d.unknown_n = 0 AND d.pass_n > 0`)
		args = append(args, cut)
	default:
		return nil, nil, fmt.Errorf("unknown status %q", q.Status)
	}
	switch q.Seen {
	case "":
	case store.SeenFresh:
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` >= ?`)
		args = append(args, cut)
	case store.SeenStale:
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` < ?`)
		args = append(args, cut)
	case store.SeenNever:
		conds = append(conds, `d.revoked_at IS NULL AND d.last_seen IS NULL`)
	case store.SeenRevoked:
		conds = append(conds, `d.revoked_at IS NOT NULL`)
	default:
		return nil, nil, fmt.Errorf("unknown seen %q", q.Seen)
	}
	if q.RuleID != "" {
		conds = append(conds, `d.revoked_at IS NULL AND EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id AND r.rule_id = ? AND r.collector = 'FAIL')`)
		args = append(args, q.RuleID)
	}
	if q.Group != "" {
		conds = append(conds, plain(`d.grp`, byHost)+` = ?`)
		args = append(args, q.Group)
	}
	if q.Groups != nil {
		b, _ := json.Marshal(q.Groups)
		conds = append(conds, `+d.grp IN (SELECT value FROM json_each(?))`)
		args = append(args, string(b))
	}
	if q.OS != "" {
		conds = append(conds, plain(`d.os_name`, (byHost && q.Group == "") || key == store.SortOS)+` = ?`)
		args = append(args, q.OS)
	}
	if q.AgentVersion != "" {
		// devices_agent is in hostname order within a version: it serves
		// the hostname sort as well, when no other filter's index does.
		conds = append(conds, plain(`d.agent_version`, key == store.SortAgentVersion || (key == "" || key == store.SortHostname) && q.Group == "" && q.OS == "")+` = ?`)
		args = append(args, q.AgentVersion)
	}
	within := q.CertWithin
	if q.CertExpiring && (within <= 0 || within > store.CertWarning) {
		within = store.CertWarning
	}
	if within > 0 {
		conds = append(conds, `d.revoked_at IS NULL AND `+plain(`d.cert_not_after`, key == store.SortCert)+` <= ?`)
		args = append(args, nanos(q.Now.Add(within)))
	}
	if q.Overdue {
		c, a := deadlineCond(store.Graces(q.Deadlines), &q.Now)
		conds = append(conds, `d.revoked_at IS NULL AND EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id AND +r.collector = 'FAIL' AND `+c+`)`)
		args = append(args, a...)
	}
	switch rest {
	case aggregate.RestNotFailing:
		conds = append(conds, `(d.revoked_at IS NOT NULL OR +d.fail_n = 0)`)
	case aggregate.RestNoDeadline:
		c, a := deadlineCond(store.Graces(q.Deadlines), nil)
		conds = append(conds, `(d.revoked_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id AND +r.collector = 'FAIL' AND +r.failing_since IS NOT NULL AND `+c+`))`)
		args = append(args, a...)
	}
	if q.Search != "" {
		conds = append(conds, `d.hostname LIKE ? ESCAPE '\'`)
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Search)
		args = append(args, "%"+esc+"%")
	}
	return conds, args, nil
}

// candidates are the few devices a list may be read from instead of a
// walk of its sort's index (fromSearched), as a JSON array: those of a
// hostname search (searched), or those with an overdue state when there
// are at most searchCandidates, from agg_failing. Overdue devices are
// often few, and a walk checks every device's states on its way.
func (s *Store) candidates(ctx context.Context, q store.DeviceQuery) (string, bool, error) {
	ids, few, err := s.searched(ctx, q)
	if few || err != nil || !q.Overdue {
		return ids, few, err
	}
	states, args := overdueStates(q)
	if states == "" {
		return `[]`, true, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT device_id FROM (`+states+`) LIMIT ?`, append(args, searchCandidates+1)...)
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", false, err
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil || len(out) > searchCandidates {
		return "", false, err
	}
	b, err := json.Marshal(append([]string{}, out...))
	return string(b), err == nil, err
}

// reversedIndex is the index that walks each "~" sort (aggregate.Reverse).
var reversedIndex = map[string]string{
	"~" + store.SortGroup: "devices_grp", "~-" + store.SortGroup: "devices_grp_desc",
	"~" + store.SortFail: "devices_fail", "~-" + store.SortFail: "devices_fail_desc",
}

// ListPlain implements aggregate.ListBackend. A hostname search that
// the trigram index answers with few devices reads and sorts those
// instead of walking the sort index: a filter matching fewer devices
// than a page would walk it to its end.
func (b listBackend) ListPlain(ctx context.Context, q store.DeviceQuery, rest aggregate.Rest) (store.DevicePage, error) {
	s := b.s
	cols, err := sortCols(q.Sort)
	if err != nil {
		return store.DevicePage{}, err
	}
	conds, args, err := filters(q, strings.TrimPrefix(strings.TrimPrefix(q.Sort, "~"), "-"), rest)
	if err != nil {
		return store.DevicePage{}, err
	}
	candidates, few, err := b.candidates(ctx, q)
	if err != nil {
		return store.DevicePage{}, err
	}
	from, fromArgs := ` FROM devices d`, []any(nil)
	if few {
		from, fromArgs = fromSearched, []any{candidates}
	} else if ix, ok := reversedIndex[q.Sort]; ok {
		// The exact reverse of a sort whose descending order keeps
		// hostnames ascending is its index read backwards; SQLite would
		// otherwise read the other direction's index and sort a group.
		from = ` FROM devices d INDEXED BY ` + ix
	}
	if q.After != "" {
		vals, err := aggregate.DecodeCursor(q.After, q.Sort, cols)
		if err != nil {
			return store.DevicePage{}, err
		}
		c, a := after(cols, vals)
		conds, args = append(conds, c), append(args, a...)
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, " AND ")
	}
	var order []string
	for _, c := range cols {
		dir := " ASC"
		if c.Desc {
			dir = " DESC"
		}
		order = append(order, c.Expr+dir)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	offset := 0
	if q.After == "" {
		offset = max(q.Offset, 0)
	}
	args = append(append(fromArgs, args...), limit+1, offset)
	rows, err := s.db.QueryContext(ctx, listColumns+from+where+` ORDER BY `+strings.Join(order, ", ")+` LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return store.DevicePage{}, err
	}
	ds, err := scanDevices(rows)
	if err != nil {
		return store.DevicePage{}, err
	}
	page := store.DevicePage{Devices: ds}
	if len(ds) > limit {
		page.Devices = ds[:limit]
		page.Next = aggregate.EncodeCursor(q.Sort, cols, ds[limit-1])
	}
	return page, nil
}

// PlainCursor implements aggregate.ListBackend.
func (listBackend) PlainCursor(sortKey string, d store.Device) string {
	cols, err := sortCols(sortKey)
	if err != nil {
		return ""
	}
	return aggregate.EncodeCursor(sortKey, cols, d)
}

// Count implements aggregate.ListBackend.
func (b listBackend) Count(ctx context.Context, q store.DeviceQuery) (int, bool, error) {
	conds, args, err := filters(q, "", aggregate.RestAll)
	if err != nil {
		return 0, false, err
	}
	candidates, few, err := b.candidates(ctx, q)
	if err != nil {
		return 0, false, err
	}
	if few {
		return b.s.searchedTotal(ctx, conds, append([]any{candidates}, args...))
	}
	if aggregate.OnlyOverdue(q) {
		return b.s.overdueTotal(ctx, q)
	}
	return b.s.deviceTotal(ctx, q, conds, args)
}

// overdueTotal counts the devices with an overdue state from agg_failing
// (which holds those of non-revoked devices only), one index range per
// (group, rule), up to store.DeviceCountBound: where the scan of the
// devices would look a device's states up one device at a time.
func (s *Store) overdueTotal(ctx context.Context, q store.DeviceQuery) (int, bool, error) {
	states, args := overdueStates(q)
	if states == "" {
		return 0, true, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT DISTINCT device_id FROM (`+states+`) LIMIT ?)`,
		append(args, store.DeviceCountBound)...).Scan(&n)
	return n, n < store.DeviceCountBound, err
}

// overdueStates is the query of the device ids of q's overdue states
// (aggregate.OverdueParts), "" when there are none: per (group, rule),
// its range of agg_failing, each state's rule state looked up (by
// primary key) to tell a wall-clock state failing since the cut from a
// connected-grace one not paused whose deadline has passed (its device
// looked up only then), as PastDeadline counts them.
func overdueStates(q store.DeviceQuery) (string, []any) {
	keys, cuts := aggregate.OverdueParts(q)
	var parts []string
	var args []any
	for i, k := range keys {
		parts = append(parts, `SELECT f.device_id FROM agg_failing f JOIN rule_states r INDEXED BY `+ruleStatesPK+` ON r.device_id = f.device_id AND r.rule_id = f.rule_id
				WHERE f.grp = ? AND f.rule_id = ? AND CASE WHEN r.grace_connected = 1
				THEN r.deadline_paused = 0 AND coalesce((SELECT d.states_at FROM devices d WHERE d.id = f.device_id), r.updated_at) - r.grace_used <= ?
				ELSE f.since <= ? END`)
		args = append(args, k[0], k[1], cuts[i], cuts[i])
	}
	return strings.Join(parts, " UNION ALL "), args
}

// FailingParts implements aggregate.ListBackend.
func (b listBackend) FailingParts(ctx context.Context) ([][2]string, error) {
	rows, err := b.s.db.QueryContext(ctx, aggregate.FailingPartsQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return aggregate.ScanParts(rows)
}

// FailingAfter implements aggregate.ListBackend, on agg_failing's key.
func (b listBackend) FailingAfter(ctx context.Context, kind aggregate.Stream, group, rule string, since int64, device string, first, desc bool, n int) ([]aggregate.Keyed, error) {
	query, args := aggregate.FailingAfterQuery(kind, `rule_states r INDEXED BY `+ruleStatesPK, group, rule, since, device, first, desc, n)
	rows, err := b.s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return aggregate.ScanKeyed(rows)
}

// FailStates implements aggregate.ListBackend.
func (b listBackend) FailStates(ctx context.Context, ids []string) ([]store.FailState, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	j, _ := json.Marshal(ids)
	rows, err := b.s.db.QueryContext(ctx, `SELECT d.id, d.grp, r.rule_id, r.title, r.failing_since,
		r.grace_connected, r.grace_used, r.deadline_paused, coalesce(d.states_at, r.updated_at) FROM json_each(?) c CROSS JOIN devices d ON d.id = c.value
		CROSS JOIN rule_states r ON r.device_id = d.id WHERE d.revoked_at IS NULL AND +r.collector = 'FAIL' AND r.failing_since IS NOT NULL`, string(j))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.FailState
	for rows.Next() {
		var st store.FailState
		var since, used, at int64
		if err := rows.Scan(&st.DeviceID, &st.Group, &st.RuleID, &st.Title, &since, &st.GraceConnected, &used, &st.DeadlinePaused, &at); err != nil {
			return nil, err
		}
		st.Since, st.GraceUsed, st.At = fromNanos(since), time.Duration(used), fromNanos(at)
		out = append(out, st)
	}
	return out, rows.Err()
}

// Match implements aggregate.ListBackend.
func (b listBackend) Match(ctx context.Context, q store.DeviceQuery, ids []string) ([]store.Device, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	conds, args, err := filters(q, "", aggregate.RestAll)
	if err != nil {
		return nil, err
	}
	j, _ := json.Marshal(ids)
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, " AND ")
	}
	rows, err := b.s.db.QueryContext(ctx, listColumns+fromSearched+where, append([]any{string(j)}, args...)...)
	if err != nil {
		return nil, err
	}
	return scanDevices(rows)
}

// deviceTotal counts the devices a query matches: from the aggregates
// when its filters are only status and group, status and rule, or seen
// (but never reported); otherwise up to store.DeviceCountBound.
func (s *Store) deviceTotal(ctx context.Context, q store.DeviceQuery, conds []string, args []any) (int, bool, error) {
	other := q.OS != "" || q.Search != "" || q.CertExpiring || q.Groups != nil || q.AgentVersion != "" || q.CertWithin > 0 || q.Overdue ||
		q.Seen == store.SeenNever || (q.Seen != "" && (q.Status != "" || q.RuleID != ""))
	switch {
	case !other && q.RuleID == "":
		c, err := s.fleetCounts(ctx, q.Now, q.StaleAfter, q.Group)
		if err != nil {
			return 0, false, err
		}
		n := map[store.DeviceStatus]int{
			"": c.Devices + c.Revoked, store.StatusCompliant: c.Compliant, store.StatusFailing: c.Failing,
			store.StatusUnknown: c.Unknown, store.StatusStale: c.Stale, store.StatusRevoked: c.Revoked,
		}[q.Status]
		switch q.Seen {
		case store.SeenFresh:
			n = c.Devices - c.Stale
		case store.SeenStale:
			n = c.Stale
		case store.SeenRevoked:
			n = c.Revoked
		}
		return n, true, nil
	case !other && q.Group == "" && q.Seen == "":
		// A device failing a rule is failing or stale, never revoked.
		var fresh, all int
		c, err := s.failingCounts(ctx, staleCut(q.Now, q.StaleAfter), q.RuleID)
		if err != nil {
			return 0, false, err
		}
		fresh = c[q.RuleID]
		if err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(n), 0) FROM agg_rule_seen WHERE width = ? AND rule_id = ?`, aggregate.HourNanos, q.RuleID).Scan(&all); err != nil {
			return 0, false, err
		}
		n := map[store.DeviceStatus]int{"": all, store.StatusFailing: fresh, store.StatusStale: all - fresh}[q.Status]
		return n, true, nil
	}
	if len(conds) == 0 {
		conds = []string{`1`}
	}
	// At most countScan devices are looked at: a filter that matches few
	// would otherwise walk the whole fleet to count them.
	var n, scanned int
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(m), 0), count(*) FROM (SELECT CASE WHEN `+strings.Join(conds, " AND ")+` THEN 1 ELSE 0 END AS m FROM devices d LIMIT ?)`,
		append(args, countScan)...).Scan(&n, &scanned)
	if err != nil {
		return 0, false, err
	}
	if n >= store.DeviceCountBound {
		return store.DeviceCountBound, false, nil
	}
	return n, scanned < countScan, nil
}

// searchedTotal counts the devices among a search's few candidates
// (fromSearched) that pass every filter: all of them are looked at, so
// the count is exact up to store.DeviceCountBound.
func (s *Store) searchedTotal(ctx context.Context, conds []string, args []any) (int, bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1`+fromSearched+` WHERE `+strings.Join(conds, " AND ")+` LIMIT ?)`,
		append(args, store.DeviceCountBound)...).Scan(&n)
	if err != nil {
		return 0, false, err
	}
	return n, n < store.DeviceCountBound, nil
}

// countScan bounds the devices a count without an aggregate looks at.
const countScan = 20_000

// Trend implements store.Dashboard, from agg_trend: one row per UTC day
// on which the fleet changed, a day without a row standing as the latest
// before it.
func (s *Store) Trend(ctx context.Context, to time.Time, days int) ([]store.TrendPoint, error) {
	if days <= 0 {
		return nil, nil
	}
	y, m, d := to.UTC().Date()
	first := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1-days)
	firstDay := aggregate.FloorDiv(nanos(first), aggregate.DayNanos)
	lastDay := firstDay + int64(days) - 1
	rows, err := s.db.QueryContext(ctx, `SELECT day, compliant, failing, unknown FROM agg_trend
		WHERE day <= ?2 AND day >= coalesce((SELECT max(day) FROM agg_trend WHERE day <= ?1), ?1) ORDER BY day`, firstDay, lastDay)
	if err != nil {
		return nil, fmt.Errorf("trend: %w", err)
	}
	defer rows.Close()
	type row struct {
		day int64
		p   store.TrendPoint
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.day, &r.p.Compliant, &r.p.Failing, &r.p.Unknown); err != nil {
			return nil, fmt.Errorf("trend: %w", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trend: %w", err)
	}
	out := make([]store.TrendPoint, days)
	var cur store.TrendPoint
	for i := range out {
		for len(rs) > 0 && rs[0].day <= firstDay+int64(i) {
			cur, rs = rs[0].p, rs[1:]
		}
		cur.Day = first.AddDate(0, 0, i)
		out[i] = cur
	}
	return out, nil
}
