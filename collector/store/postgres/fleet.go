package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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

// ListDevices implements store.Dashboard: the page after q.After, or at
// q.Offset without a cursor. The total is exact for the filters the
// dashboard's overview links to (none, status, group, rule), and counted
// up to store.DeviceCountBound for the others. A hostname search that
// finds few devices (searched) reads and sorts those, by primary key:
// a filter matching fewer devices than a page would otherwise walk the
// sort index to its end.
func (s *Store) ListDevices(ctx context.Context, q store.DeviceQuery) (store.DevicePage, error) {
	cols, err := sortCols(q.Sort)
	if err != nil {
		return store.DevicePage{}, fmt.Errorf("list devices: %w", err)
	}
	const seen = `coalesce(d.last_seen, d.enrolled_at)`
	searchedFew := false
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
		return store.DevicePage{}, fmt.Errorf("list devices: unknown status %q", q.Status)
	}
	if q.RuleID != "" {
		conds = append(conds, `d.revoked_at IS NULL AND EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id AND r.rule_id = ? AND r.collector = 'FAIL')`)
		args = append(args, q.RuleID)
	}
	if q.Group != "" {
		conds = append(conds, `d.grp = ?`)
		args = append(args, q.Group)
	}
	if q.OS != "" {
		conds = append(conds, `d.os_name = ?`)
		args = append(args, q.OS)
	}
	if q.CertExpiring {
		conds = append(conds, `d.revoked_at IS NULL AND d.cert_not_after <= ?`)
		args = append(args, nanos(q.Now.Add(store.CertWarning)))
	}
	if q.Search != "" {
		conds = append(conds, `d.hostname ILIKE ? ESCAPE '\'`)
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Search)
		pattern := "%" + esc + "%"
		args = append(args, pattern)
		ids, few, err := s.searched(ctx, pattern, q.Search)
		if err != nil {
			return store.DevicePage{}, fmt.Errorf("list devices: %w", err)
		}
		if few {
			conds = append(conds, `d.id = ANY(?)`)
			args = append(args, ids)
			searchedFew = true
		}
	}
	filter := append([]string(nil), conds...)
	filterArgs := append([]any(nil), args...)
	if q.After != "" {
		vals, err := aggregate.DecodeCursor(q.After, q.Sort, cols)
		if err != nil {
			return store.DevicePage{}, fmt.Errorf("list devices: %w", err)
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
	rows, err := s.qm().Query(ctx, deviceSelect+where(conds)+` ORDER BY `+strings.Join(order, ", ")+` LIMIT ? OFFSET ?`, append(args, limit+1, offset)...)
	if err != nil {
		return store.DevicePage{}, fmt.Errorf("list devices: %w", err)
	}
	ds, err := scanDevices(rows)
	if err != nil {
		return store.DevicePage{}, fmt.Errorf("list devices: %w", err)
	}
	page := store.DevicePage{Devices: ds}
	if len(ds) > limit {
		page.Devices = ds[:limit]
		page.Next = aggregate.EncodeCursor(q.Sort, cols, ds[limit-1])
	}
	if searchedFew {
		// Every candidate is looked at: exact up to the bound.
		err = s.qm().QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM devices d`+where(filter)+` LIMIT ?) bounded`, append(filterArgs, store.DeviceCountBound)...).Scan(&page.Total)
		page.TotalExact = page.Total < store.DeviceCountBound
	} else {
		page.Total, page.TotalExact, err = s.deviceTotal(ctx, q, filter, filterArgs)
	}
	if err != nil {
		return store.DevicePage{}, fmt.Errorf("list devices: %w", err)
	}
	return page, nil
}

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(conds, " AND ")
}

// deviceTotal counts the devices a query matches: from the aggregates
// when its filters are only status and group, or status and rule;
// otherwise up to store.DeviceCountBound.
func (s *Store) deviceTotal(ctx context.Context, q store.DeviceQuery, conds []string, args []any) (int, bool, error) {
	other := q.OS != "" || q.Search != "" || q.CertExpiring
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
		return n, true, nil
	case !other && q.Group == "":
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
