package storetest

import (
	"context"
	"fmt"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// NamedQuery is one device list query of the device list's benchmark.
type NamedQuery struct {
	Name string
	Q    store.DeviceQuery
	// Empty says the query matches no device of a benchmark fleet (it
	// measures a filter's worst case: a walk of the whole fleet).
	Empty bool
}

// DeviceListQueries are the device list's benchmark queries on a fleet
// of BuildFleet at now (n devices): every sort both ways, the merged
// sorts and the previous-page path deep into the list, and the filters
// of docs/device-list.md. "list/hostname" is the yardstick the others
// are read against: the existing first page of the list.
func DeviceListQueries(ctx context.Context, s store.Dashboard, n int, now time.Time) ([]NamedQuery, error) {
	var deadlines []store.DeadlineRule
	for _, g := range FleetGroups {
		for _, r := range FleetRules {
			deadlines = append(deadlines, store.DeadlineRule{Group: g, RuleID: r, Grace: 24 * time.Hour})
		}
	}
	base := store.DeviceQuery{Now: now, StaleAfter: FleetStaleAfter, Limit: 50, DeviceFilters: store.DeviceFilters{Deadlines: deadlines}}
	with := func(edit func(*store.DeviceQuery)) store.DeviceQuery {
		q := base
		edit(&q)
		return q
	}
	// Cursors deep into the list of a sort: after device n/2, and
	// before the page after it.
	middle := func(sortKey string) (string, string, error) {
		q := base
		q.Sort, q.Limit, q.Offset = sortKey, 1, n/2
		p, err := s.ListDevices(ctx, q)
		if err == nil && p.Next == "" {
			err = fmt.Errorf("no device %d in sort %q", n/2, sortKey)
		}
		if err != nil {
			return "", "", err
		}
		q.Offset, q.After = 0, p.Next
		pp, err := s.ListDevices(ctx, q)
		return p.Next, pp.Prev, err
	}
	var out []NamedQuery
	add := func(name string, q store.DeviceQuery) { out = append(out, NamedQuery{Name: name, Q: q}) }
	add("list/hostname", base)
	for _, k := range []string{store.SortOS, store.SortAgentVersion, store.SortCert, store.SortStatus, store.SortFailingSince, store.SortDeadline} {
		add("list/"+k, with(func(q *store.DeviceQuery) { q.Sort = k }))
		add("list/-"+k, with(func(q *store.DeviceQuery) { q.Sort = "-" + k }))
	}
	for _, k := range []string{store.SortHostname, store.SortGroup, store.SortStatus, store.SortFailingSince, "-" + store.SortDeadline} {
		next, prev, err := middle(k)
		if err != nil {
			return nil, err
		}
		add("list/"+k+"-after-middle", with(func(q *store.DeviceQuery) { q.Sort, q.After = k, next }))
		add("list/"+k+"-before-middle", with(func(q *store.DeviceQuery) { q.Sort, q.Before = k, prev }))
	}
	add("list/overdue", with(func(q *store.DeviceQuery) { q.Overdue = true }))
	add("list/overdue-by-deadline", with(func(q *store.DeviceQuery) { q.Overdue, q.Sort = true, store.SortDeadline }))
	add("list/rule-by-failing_since", with(func(q *store.DeviceQuery) { q.RuleID, q.Sort = "disk-encrypted", store.SortFailingSince }))
	add("list/group-hq-by-deadline", with(func(q *store.DeviceQuery) { q.Group, q.Sort = "hq", store.SortDeadline }))
	add("list/failing-by-status", with(func(q *store.DeviceQuery) { q.Status, q.Sort = store.StatusFailing, store.SortStatus }))
	add("list/seen-fresh", with(func(q *store.DeviceQuery) { q.Seen = store.SeenFresh }))
	add("list/seen-never", with(func(q *store.DeviceQuery) { q.Seen = store.SeenNever }))
	add("list/policy-groups", with(func(q *store.DeviceQuery) { q.Groups = []string{"hq", "field"} }))
	add("list/agent-version", with(func(q *store.DeviceQuery) { q.AgentVersion = "1.0" }))
	add("list/agent-version-by-agent", with(func(q *store.DeviceQuery) { q.AgentVersion, q.Sort = "1.0", store.SortAgentVersion }))
	add("list/cert-within-30d", with(func(q *store.DeviceQuery) { q.CertWithin = 30 * 24 * time.Hour }))
	add("list/cert-within-30d-by-cert", with(func(q *store.DeviceQuery) { q.CertWithin, q.Sort = 30*24*time.Hour, store.SortCert }))
	out = append(out, NamedQuery{Name: "list/agent-version-none", Q: with(func(q *store.DeviceQuery) { q.AgentVersion = "9.9" }), Empty: true})
	out = append(out, NamedQuery{Name: "list/agent-version-none-by-agent", Q: with(func(q *store.DeviceQuery) { q.AgentVersion, q.Sort = "9.9", store.SortAgentVersion }), Empty: true})
	return out, nil
}

// RunDeviceListQuery runs one of DeviceListQueries, failing when its
// page is empty but should not be, or has devices but should not.
func RunDeviceListQuery(ctx context.Context, s store.Dashboard, nq NamedQuery) error {
	p, err := s.ListDevices(ctx, nq.Q)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", nq.Name, err)
	case nq.Empty != (len(p.Devices) == 0):
		return fmt.Errorf("%s: %d devices", nq.Name, len(p.Devices))
	}
	return nil
}
