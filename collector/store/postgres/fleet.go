package postgres

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
)

// Device lists: keyset paging (docs/storage.md, "Device lists"). Each
// sort has an index that walks it (migrations 001 and 003), so a page
// reads its own rows and the planner, which has statistics here, stops
// after them.

// asciiLower is lower() of a TEXT COLLATE "C" value: ASCII letters only,
// as SQLite's NOCASE.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// sortCols is the order of a sort key, ties broken by id.
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
		return aggregate.SortCol{Expr: `lower(d.hostname)`, Desc: desc, Val: func(d store.Device) string { return asciiLower(d.Hostname) }}
	}
	id := func(desc bool) aggregate.SortCol {
		return aggregate.SortCol{Expr: `d.id`, Desc: desc, Val: func(d store.Device) string { return d.ID }}
	}
	switch key {
	case "", store.SortHostname:
		return []aggregate.SortCol{host(desc), id(desc)}, nil
	case store.SortLastSeen:
		seen := aggregate.SortCol{Expr: `coalesce(d.last_seen, d.enrolled_at)`, Desc: desc, Num: true, Val: func(d store.Device) string {
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
// cols: a row comparison where the directions agree, else spelled out,
// led by a range on the first column so the index scan starts there.
func after(cols []aggregate.SortCol, vals []any) (string, []any) {
	op := func(c aggregate.SortCol) string {
		if c.Desc {
			return "<"
		}
		return ">"
	}
	same := true
	for _, c := range cols[1:] {
		same = same && c.Desc == cols[0].Desc
	}
	if same {
		var exprs, ps []string
		for _, c := range cols {
			exprs, ps = append(exprs, c.Expr), append(ps, "?")
		}
		return `(` + strings.Join(exprs, ", ") + `) ` + op(cols[0]) + ` (` + strings.Join(ps, ", ") + `)`, vals
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

// searchCandidates is how many devices a hostname search may find in
// device_hostnames for a list to be read from them and sorted; a search
// that finds more is common enough for the sort index's walk to meet a
// page of matches soon. A variable so tests can take both paths.
var searchCandidates = 2000

// searched returns the devices whose hostnames match q's search when
// there are at most searchCandidates of them (few), found through the
// trigram index of migration 006 (or a scan of device_hostnames that
// stops at the bound, where the planner expects many). A search shorter
// than a trigram is not looked up: the index cannot narrow it.
func (s *Store) searched(ctx context.Context, pattern string, search string) ([]string, bool, error) {
	if utf8.RuneCountInString(search) < 3 {
		return nil, false, nil
	}
	rows, err := s.qm().Query(ctx, `SELECT device_id FROM device_hostnames WHERE hostname ILIKE ? ESCAPE '\' LIMIT ?`, pattern, searchCandidates+1)
	if err != nil {
		return nil, false, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, err
	}
	if len(ids) > searchCandidates {
		return nil, false, nil
	}
	return ids, true, nil
}

// ListDevices implements store.Dashboard (aggregate.List puts the merged
// sorts together from listBackend's pieces). The total is exact for the
// filters the dashboard's overview links to (none, status, group, rule,
// seen), and counted up to store.DeviceCountBound for the others.
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

// listMemo keeps a ListDevices call's overdue candidates (overdueFew):
// each piece of the list, its matches and its total have the same
// overdue filter, group and deadlines, so they are read once (they look
// up every failing state of the connected-grace rules).
type listMemo struct {
	done bool
	ids  []string
	few  bool
}

// deadlineCond is "the failing state r of device d has a deadline in
// graces" (and, with now, "is past it", as store.RuleState.Overdue
// says: failing since plus grace, or for a connected-grace state its
// report's time plus what is left of grace, never while paused), one
// term per (group, rule).
func deadlineCond(graces map[[2]string]time.Duration, now *time.Time) (string, []any) {
	if len(graces) == 0 {
		return `false`, nil
	}
	keys := make([][2]string, 0, len(graces))
	for k := range graces {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
	var ors []string
	var args []any
	for _, k := range keys {
		if now == nil {
			ors = append(ors, `(d.grp = ? AND r.rule_id = ?)`)
			args = append(args, k[0], k[1])
		} else {
			ors = append(ors, `(d.grp = ? AND r.rule_id = ? AND (r.failing_since <= ? AND NOT r.grace_connected
				OR r.grace_connected AND NOT r.deadline_paused AND r.failing_since IS NOT NULL AND `+pgConnectedSince+` <= ?))`)
			cut := nanos(now.Add(-graces[k]))
			args = append(args, k[0], k[1], cut, cut)
		}
	}
	return `(` + strings.Join(ors, " OR ") + `)`, args
}

// filters are q's conditions on the devices d, and the few devices a
// hostname search found (searched) when it found few.
func (s *Store) filters(ctx context.Context, q store.DeviceQuery, rest aggregate.Rest, memo *listMemo) ([]string, []any, bool, error) {
	if memo == nil {
		memo = &listMemo{}
	}
	const seen = `coalesce(d.last_seen, d.enrolled_at)`
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
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` >= ? AND d.fail_n > 0`)
		args = append(args, cut)
	case store.StatusUnknown:
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` >= ? AND d.fail_n = 0 AND (d.unknown_n > 0 OR d.pass_n = 0)`)
		args = append(args, cut)
	case store.StatusCompliant:
		conds = append(conds, `d.revoked_at IS NULL AND `+seen+` >= ? AND d.fail_n = 0 AND d.unknown_n = 0 AND d.pass_n > 0`)
		args = append(args, cut)
	default:
		return nil, nil, false, fmt.Errorf("unknown status %q", q.Status)
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
		return nil, nil, false, fmt.Errorf("unknown seen %q", q.Seen)
	}
	if q.RuleID != "" {
		conds = append(conds, `d.revoked_at IS NULL AND EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id AND r.rule_id = ? AND r.collector = 'FAIL')`)
		args = append(args, q.RuleID)
	}
	if q.Group != "" {
		conds = append(conds, `d.grp = ?`)
		args = append(args, q.Group)
	}
	if q.Groups != nil {
		conds = append(conds, `d.grp = ANY(?)`)
		args = append(args, append([]string{}, q.Groups...))
	}
	if q.OS != "" {
		conds = append(conds, `d.os_name = ?`)
		args = append(args, q.OS)
	}
	if q.AgentVersion != "" {
		conds = append(conds, `d.agent_version = ?`)
		args = append(args, q.AgentVersion)
	}
	within := q.CertWithin
	if q.CertExpiring && (within <= 0 || within > store.CertWarning) {
		within = store.CertWarning
	}
	if within > 0 {
		conds = append(conds, `d.revoked_at IS NULL AND d.cert_not_after <= ?`)
		args = append(args, nanos(q.Now.Add(within)))
	}
	if q.Overdue {
		c, a := deadlineCond(store.Graces(q.Deadlines), &q.Now)
		conds = append(conds, `d.revoked_at IS NULL AND EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id AND r.collector = 'FAIL' AND `+c+`)`)
		args = append(args, a...)
	}
	switch rest {
	case aggregate.RestNotFailing:
		conds = append(conds, `(d.revoked_at IS NOT NULL OR d.fail_n = 0)`)
	case aggregate.RestNoDeadline:
		c, a := deadlineCond(store.Graces(q.Deadlines), nil)
		conds = append(conds, `(d.revoked_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id AND r.collector = 'FAIL' AND r.failing_since IS NOT NULL AND `+c+`))`)
		args = append(args, a...)
	}
	few := false
	if q.Search != "" {
		conds = append(conds, `d.hostname ILIKE ? ESCAPE '\'`)
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Search)
		pattern := "%" + esc + "%"
		args = append(args, pattern)
		ids, ok, err := s.searched(ctx, pattern, q.Search)
		if err != nil {
			return nil, nil, false, err
		}
		if ok {
			conds = append(conds, `d.id = ANY(?)`)
			args = append(args, ids)
			few = true
		}
	}
	if q.Overdue && !few {
		// Overdue devices are often few: then the list is read from them
		// (agg_failing) rather than from a walk that looks up every
		// device's states on its way.
		if !memo.done {
			ids, ok, err := s.overdueFew(ctx, q)
			if err != nil {
				return nil, nil, false, err
			}
			*memo = listMemo{done: true, ids: ids, few: ok}
		}
		ids, ok := memo.ids, memo.few
		if ok {
			conds = append(conds, `d.id = ANY(?)`)
			args = append(args, ids)
			few = true
		}
	}
	return conds, args, few, nil
}

// overdueFew returns the devices with an overdue state when there are at
// most searchCandidates of them.
func (s *Store) overdueFew(ctx context.Context, q store.DeviceQuery) ([]string, bool, error) {
	states, args := overdueStates(q)
	if states == "" {
		return []string{}, true, nil
	}
	rows, err := s.qm().Query(ctx, `SELECT DISTINCT device_id FROM (`+states+`) u LIMIT ?`, append(args, searchCandidates+1)...)
	if err != nil {
		return nil, false, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) > searchCandidates {
		return nil, false, err
	}
	return ids, true, nil
}

// ListPlain implements aggregate.ListBackend. A hostname search that
// finds few devices (searched) reads and sorts those, by primary key: a
// filter matching fewer devices than a page would otherwise walk the
// sort index to its end.
func (b listBackend) ListPlain(ctx context.Context, q store.DeviceQuery, rest aggregate.Rest) (store.DevicePage, error) {
	cols, err := sortCols(q.Sort)
	if err != nil {
		return store.DevicePage{}, err
	}
	conds, args, _, err := b.s.filters(ctx, q, rest, b.memo)
	if err != nil {
		return store.DevicePage{}, err
	}
	if q.After != "" {
		vals, err := aggregate.DecodeCursor(q.After, q.Sort, cols)
		if err != nil {
			return store.DevicePage{}, err
		}
		c, a := after(cols, vals)
		conds, args = append(conds, c), append(args, a...)
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
	rows, err := b.s.qm().Query(ctx, deviceSelect+where(conds)+` ORDER BY `+strings.Join(order, ", ")+` LIMIT ? OFFSET ?`, append(args, limit+1, offset)...)
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
	conds, args, few, err := b.s.filters(ctx, q, aggregate.RestAll, b.memo)
	if err != nil {
		return 0, false, err
	}
	if few {
		// Every candidate is looked at: exact up to the bound.
		var n int
		err = b.s.qm().QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM devices d`+where(conds)+` LIMIT ?) bounded`, append(args, store.DeviceCountBound)...).Scan(&n)
		return n, n < store.DeviceCountBound, err
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
	err := s.qm().QueryRow(ctx, `SELECT count(*) FROM (SELECT DISTINCT device_id FROM (`+states+`) u LIMIT ?) bounded`,
		append(args, store.DeviceCountBound)...).Scan(&n)
	return n, n < store.DeviceCountBound, err
}

// overdueStates is the query of the device ids of q's overdue states
// (aggregate.OverdueParts), "" when there are none: per (group, rule),
// its range of agg_failing, each state's rule state looked up to tell a
// wall-clock state failing since the cut from a connected-grace one not
// paused whose deadline has passed (its device looked up only then), as
// PastDeadline counts them.
func overdueStates(q store.DeviceQuery) (string, []any) {
	keys, cuts := aggregate.OverdueParts(q)
	var parts []string
	var args []any
	for i, k := range keys {
		parts = append(parts, `SELECT f.device_id FROM agg_failing f JOIN rule_states r ON r.device_id = f.device_id AND r.rule_id = f.rule_id
				WHERE f.grp = ? AND f.rule_id = ? AND CASE WHEN r.grace_connected
				THEN NOT r.deadline_paused AND coalesce((SELECT d.states_at FROM devices d WHERE d.id = f.device_id), r.updated_at) - r.grace_used <= ?
				ELSE f.since <= ? END`)
		args = append(args, k[0], k[1], cuts[i], cuts[i])
	}
	return strings.Join(parts, " UNION ALL "), args
}

// FailingParts implements aggregate.ListBackend.
func (b listBackend) FailingParts(ctx context.Context) ([][2]string, error) {
	rows, err := b.s.pool.Query(ctx, aggregate.FailingPartsQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return aggregate.ScanParts(rows)
}

// FailingAfter implements aggregate.ListBackend, on agg_failing's key.
func (b listBackend) FailingAfter(ctx context.Context, kind aggregate.Stream, group, rule string, since int64, device string, first, desc bool, n int) ([]aggregate.Keyed, error) {
	query, args := aggregate.FailingAfterQuery(kind, `rule_states r`, group, rule, since, device, first, desc, n)
	rows, err := b.s.qm().Query(ctx, query, args...)
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
	rows, err := b.s.qm().Query(ctx, `SELECT d.id, d.grp, r.rule_id, r.title, r.failing_since,
		r.grace_connected, r.grace_used, r.deadline_paused, coalesce(d.states_at, r.updated_at) FROM devices d JOIN rule_states r ON r.device_id = d.id
		WHERE d.id = ANY(?) AND d.revoked_at IS NULL AND r.collector = 'FAIL' AND r.failing_since IS NOT NULL`, ids)
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
	conds, args, _, err := b.s.filters(ctx, q, aggregate.RestAll, b.memo)
	if err != nil {
		return nil, err
	}
	conds, args = append(conds, `d.id = ANY(?)`), append(args, ids)
	rows, err := b.s.qm().Query(ctx, deviceSelect+where(conds), args...)
	if err != nil {
		return nil, err
	}
	return scanDevices(rows)
}

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(conds, " AND ")
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
		c, err := s.failingCounts(ctx, staleCut(q.Now, q.StaleAfter), q.RuleID)
		if err != nil {
			return 0, false, err
		}
		fresh := c[q.RuleID]
		var all int
		if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0)::bigint FROM agg_rule_seen WHERE width = $1 AND rule_id = $2`, aggregate.HourNanos, q.RuleID).Scan(&all); err != nil {
			return 0, false, err
		}
		n := map[store.DeviceStatus]int{"": all, store.StatusFailing: fresh, store.StatusStale: all - fresh}[q.Status]
		return n, true, nil
	}
	var n int
	err := s.qm().QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM devices d`+where(conds)+` LIMIT ?) bounded`, append(args, store.DeviceCountBound)...).Scan(&n)
	return n, n < store.DeviceCountBound, err
}
