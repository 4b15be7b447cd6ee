package server

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// GaugeOptions bounds the compliance gauges on /metrics
// (docs/integrations.md). Zero fields take the defaults.
type GaugeOptions struct {
	// TopGroups and TopRules bound the label values: the groups with the
	// most devices and the rules failing on the most devices get series
	// of their own, the rest are summed under OtherLabel (defaults 50 and
	// 100), so a fleet of many groups cannot blow up the scrape.
	TopGroups, TopRules int
	// CacheFor is how long computed gauges are served again (default
	// 15 s): scrapers, however many, cost the store one computation per
	// period, each from its maintained aggregates.
	CacheFor time.Duration
}

// OtherLabel is the label value the groups, policies and rules beyond
// the top ones are summed under.
const OtherLabel = "(other)"

// unloadable is the policy label of groups whose stored policy does not
// load.
const unloadable = "(unloadable)"

// gauges caches the compliance gauges' text.
type gauges struct {
	mu   sync.Mutex
	at   time.Time
	text []byte
}

// writeGauges writes the compliance gauges, computed at most once per
// CacheFor; a store that keeps no fleet aggregates has none.
func (s *Server) writeGauges(ctx context.Context, w io.Writer) {
	o := s.cfg.Gauges
	cacheFor := orDefault(o.CacheFor, 15*time.Second)
	g := &s.gauges
	g.mu.Lock()
	defer g.mu.Unlock()
	now := s.cfg.Now()
	if g.text == nil || now.Sub(g.at) >= cacheFor || now.Before(g.at) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		text, err := s.computeGauges(ctx, now)
		cancel()
		if err != nil {
			s.log.Error("compliance gauges", "err", err)
			if g.text == nil {
				return
			}
			// The last good ones, with their time: better than none.
		} else {
			g.text, g.at = text, now
		}
	}
	w.Write(g.text)
}

// computeGauges reads the fleet's counts from the aggregates.
func (s *Server) computeGauges(ctx context.Context, now time.Time) ([]byte, error) {
	d, ok := s.store.(store.Dashboard)
	if !ok {
		return nil, nil
	}
	o := s.cfg.Gauges
	staleAfter := 3 * s.cfg.Interval
	fc, err := d.FleetCounts(ctx, now, staleAfter)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	gauge := func(name, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name) }

	gauge("ward_fleet_devices", "Devices by status: compliant, failing and unknown are fresh (seen within 3 report intervals); stale and revoked are neither.")
	for _, c := range []struct {
		status string
		n      int
	}{{"compliant", fc.Compliant}, {"failing", fc.Failing}, {"unknown", fc.Unknown}, {"stale", fc.Stale}, {"revoked", fc.Revoked}} {
		fmt.Fprintf(&b, "ward_fleet_devices{status=%s} %d\n", quote(c.status), c.n)
	}
	trend, err := d.Trend(ctx, now, 1)
	if err != nil {
		return nil, err
	}
	never := fc.Devices
	if len(trend) == 1 {
		never -= trend[0].Compliant + trend[0].Failing + trend[0].Unknown
	}
	gauge("ward_fleet_devices_never_reported", "Devices (not revoked) without a verdict yet: enrolled, never reported; counted as unknown or stale above.")
	fmt.Fprintf(&b, "ward_fleet_devices_never_reported %d\n", max(never, 0))

	byRule, err := d.FailingByRule(ctx, now, staleAfter)
	if err != nil {
		return nil, err
	}
	gauge("ward_fleet_rule_failing_devices", "Fresh devices whose latest verdict of the rule is FAIL, by rule id (a rule id several policies share counts them together); rules beyond the top ones are summed under rule=\"(other)\".")
	top := max(o.TopRules, 0)
	if top == 0 {
		top = 100
	}
	var other int
	for i, r := range byRule { // most first
		if i < top {
			fmt.Fprintf(&b, "ward_fleet_rule_failing_devices{rule=%s} %d\n", quote(r.RuleID), r.Devices)
		} else {
			other += r.Devices
		}
	}
	if len(byRule) > top {
		fmt.Fprintf(&b, "ward_fleet_rule_failing_devices{rule=%s} %d\n", quote(OtherLabel), other)
	}

	var groups map[string]store.FleetCounts
	if gc, ok := s.store.(store.GroupCounter); ok {
		if groups, err = gc.GroupCounts(ctx, now, staleAfter); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	size := func(c store.FleetCounts) int { return c.Devices + c.Revoked }
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(size(groups[b]), size(groups[a])), strings.Compare(a, b))
	})
	topG := o.TopGroups
	if topG <= 0 {
		topG = 50
	}
	type row struct {
		label string
		c     store.FleetCounts
	}
	var rows []row
	var rest store.FleetCounts
	byPolicy := map[string]store.FleetCounts{}
	var deadlines []store.DeadlineRule
	for i, g := range names {
		c := groups[g]
		if i < topG {
			rows = append(rows, row{g, c})
		} else {
			rest = addCounts(rest, c)
		}
		gp, err := s.policyFor(ctx, g)
		if err != nil {
			// Logged at start (CheckStoredPolicies); its reports are refused.
			byPolicy[unloadable] = addCounts(byPolicy[unloadable], c)
			continue
		}
		byPolicy[gp.name] = addCounts(byPolicy[gp.name], c)
		for _, r := range gp.parsed.Rules {
			if r.Grace > 0 {
				deadlines = append(deadlines, store.DeadlineRule{Group: g, RuleID: r.ID, Grace: r.Grace})
			}
		}
	}
	if len(names) > topG {
		rows = append(rows, row{OtherLabel, rest})
	}
	gauge("ward_fleet_group_devices", "Devices by group and status (as ward_fleet_devices); groups beyond the largest ones are summed under group=\"(other)\".")
	for _, r := range rows {
		writeStatuses(&b, "ward_fleet_group_devices", "group", r.label, r.c)
	}
	pols := make([]string, 0, len(byPolicy))
	for p := range byPolicy {
		pols = append(pols, p)
	}
	slices.SortFunc(pols, func(a, b string) int {
		return cmp.Or(cmp.Compare(size(byPolicy[b]), size(byPolicy[a])), strings.Compare(a, b))
	})
	gauge("ward_fleet_policy_devices", "Devices by the policy their group is held to, and status; policies beyond the most used ones are summed under policy=\"(other)\".")
	rest = store.FleetCounts{}
	for i, p := range pols {
		if i < topG {
			writeStatuses(&b, "ward_fleet_policy_devices", "policy", p, byPolicy[p])
		} else {
			rest = addCounts(rest, byPolicy[p])
		}
	}
	if len(pols) > topG {
		writeStatuses(&b, "ward_fleet_policy_devices", "policy", OtherLabel, rest)
	}
	_, overdue, err := d.PastDeadline(ctx, deadlines, now, 1)
	if err != nil {
		return nil, err
	}
	gauge("ward_fleet_overdue", "Rule states (device, rule) failing past their deadline, failing_since plus the rule's grace, on devices not revoked, stale ones included; waivers are not taken off.")
	fmt.Fprintf(&b, "ward_fleet_overdue %d\n", overdue)
	gauge("ward_fleet_gauges_computed_timestamp_seconds", "When the compliance gauges were computed (they are cached briefly).")
	fmt.Fprintf(&b, "ward_fleet_gauges_computed_timestamp_seconds %d\n", now.Unix())
	return b.Bytes(), nil
}

func writeStatuses(b *bytes.Buffer, name, label, value string, c store.FleetCounts) {
	for _, st := range []struct {
		status string
		n      int
	}{{"compliant", c.Compliant}, {"failing", c.Failing}, {"unknown", c.Unknown}, {"stale", c.Stale}, {"revoked", c.Revoked}} {
		fmt.Fprintf(b, "%s{%s=%s,status=%s} %d\n", name, label, quote(value), quote(st.status), st.n)
	}
}

func addCounts(a, b store.FleetCounts) store.FleetCounts {
	return store.FleetCounts{Devices: a.Devices + b.Devices, Compliant: a.Compliant + b.Compliant, Failing: a.Failing + b.Failing,
		Unknown: a.Unknown + b.Unknown, Stale: a.Stale + b.Stale, Revoked: a.Revoked + b.Revoked}
}

// quote is a label value in the exposition format: in double quotes,
// with backslash, double quote and newline escaped (and nothing else,
// unlike Go's %q).
func quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
