package dashboard

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/wardhq/ward/collector/feedstate"
	"github.com/wardhq/ward/collector/store"
)

// The overview answers who fails what, since when, and who is overdue,
// without a click: status cards, then one section per policy (a rule id
// means what its policy says, so rules of two policies are never added
// up) with a chart per rule and the failing-now table, most urgent
// first; then the fleet's trend. Charts are SVG drawn here: the page
// needs no script.

// failingLimit is how many failing-now rows a policy's table shows.
const failingLimit = 25

// failingRow is one row of a failing-now table.
type failingRow struct {
	store.Failing
	Overdue bool
	// Stale: the device has not reported within the stale threshold, so
	// the FAIL is its last verdict, not a current one.
	Stale bool
}

// groupWaiver is a rule waived for a whole group: left out of the table.
type groupWaiver struct {
	Group, RuleID string
	Until         time.Time
}

// policySection is the overview of the groups that share one policy.
type policySection struct {
	ID       string // the section's element id
	Name     string
	Version  int
	Embedded bool
	Hash     string
	Groups   []string
	Page     store.FailingPage
	Rows     []failingRow
	Bars     barChart
	Waived   []groupWaiver
}

type overviewData struct {
	Now        time.Time
	Counts     store.FleetCounts
	Overdue    int
	Waived     int
	StaleAfter time.Duration
	Group      string // the group shown alone, or "" for all
	Groups     []string
	Policies   []policySection
	Trend      trendChart
	Days       int
	// Paused are the failing rules whose connected-grace deadline is
	// paused (docs/connectivity.md): not overdue, shown apart, at most
	// pausedLimit of PausedTotal (of the group shown, if one is).
	Paused      []store.Paused
	PausedTotal int
	// Feed is the current release feed's summary (feed.go).
	Feed *feedData
}

// pausedLimit is how many paused deadlines the overview lists.
const pausedLimit = 25

func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.now()
	days := 30
	if r.URL.Query().Get("days") == "90" {
		days = 90
	}
	d := overviewData{Now: now, StaleAfter: h.cfg.StaleAfter, Days: days}
	var err error
	if d.Counts, err = h.st.FleetCounts(ctx, now, h.cfg.StaleAfter); err != nil {
		h.serverError(w, r, err)
		return
	}
	gps, err := h.groupPolicies(ctx)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	for _, gp := range gps {
		d.Groups = append(d.Groups, gp.Group)
	}
	if g := r.URL.Query().Get("group"); slices.Contains(d.Groups, g) {
		d.Group = g
	}
	v, err := h.cache.get("overview\x00"+d.Group, now, h.cfg.CacheFor, func() (any, error) {
		waivers, err := h.st.Waivers(ctx)
		if err != nil {
			return nil, err
		}
		var secs []policySection
		byKey := map[string]int{}
		for _, gp := range gps {
			if d.Group != "" && gp.Group != d.Group {
				continue
			}
			key := fmt.Sprintf("%s\x00%d\x00%s\x00%v", gp.Name, gp.Version, gp.Hash, gp.Embedded)
			i, ok := byKey[key]
			if !ok {
				i = len(secs)
				byKey[key] = i
				secs = append(secs, policySection{ID: "policy-" + strconv.Itoa(i+1), Name: gp.Name, Version: gp.Version, Embedded: gp.Embedded, Hash: gp.Hash})
			}
			secs[i].Groups = append(secs[i].Groups, gp.Group)
		}
		for i := range secs {
			sec := &secs[i]
			var gp groupPolicy
			for _, g := range gps {
				if g.Group == sec.Groups[0] {
					gp = g
				}
			}
			var rules []store.DeadlineRule
			for _, g := range sec.Groups {
				for _, rule := range gp.Policy.Rules {
					if wv := groupWaiverOf(waivers, now, g, rule.ID); wv != nil {
						sec.Waived = append(sec.Waived, groupWaiver{g, rule.ID, wv.ExpiresAt})
						continue
					}
					rules = append(rules, store.DeadlineRule{Group: g, RuleID: rule.ID, Grace: rule.Grace})
				}
			}
			if sec.Page, err = h.st.FailingNow(ctx, store.FailingQuery{Rules: rules, Now: now, Limit: failingLimit}); err != nil {
				return nil, err
			}
			var bars []bar
			for _, rule := range gp.Policy.Rules {
				// The device list filters one group: with more, the rule's
				// devices of every group (and policy) are listed.
				href := "/devices?" + url.Values{"rule": {rule.ID}}.Encode()
				if len(sec.Groups) == 1 {
					href = "/devices?" + url.Values{"rule": {rule.ID}, "group": {sec.Groups[0]}}.Encode()
				}
				b := bar{Label: rule.ID, Title: rule.Title, Href: href}
				for _, c := range sec.Page.Counts {
					if c.RuleID == rule.ID {
						b.Value += c.Failing
						b.Part += c.Overdue
					}
				}
				bars = append(bars, b)
			}
			sec.Bars = barSVG(bars)
		}
		return secs, nil
	})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	for _, sec := range v.([]policySection) {
		sec.Rows = nil
		for _, f := range sec.Page.Rows {
			sec.Rows = append(sec.Rows, failingRow{Failing: f, Overdue: f.Overdue(now), Stale: now.Sub(f.Seen) > h.cfg.StaleAfter})
		}
		d.Overdue += sec.Page.Overdue
		d.Waived += sec.Page.Waived
		d.Policies = append(d.Policies, sec)
	}
	v, err = h.cache.get("trend"+strconv.Itoa(days), now, 10*h.cfg.CacheFor, func() (any, error) {
		return h.st.Trend(ctx, now, days)
	})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d.Trend = trendSVG(v.([]store.TrendPoint), d.Counts.Stale)
	if cs, ok := h.st.(store.Connectivities); ok {
		ps, _, err := cs.PausedDeadlines(ctx, 0)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		for _, p := range ps {
			if d.Group != "" && p.Group != d.Group {
				continue
			}
			d.PausedTotal++
			if len(d.Paused) < pausedLimit {
				d.Paused = append(d.Paused, p)
			}
		}
	}
	if d.Feed, err = h.feedState(ctx, now, feedstate.DefaultEOLDays); err != nil {
		// The overview still shows the fleet; the feed line says why not.
		h.log.Error("dashboard: release feed", "err", err)
		d.Feed = &feedData{None: "it cannot be read (" + err.Error() + ")"}
	}
	h.render(w, r, "overview", page{Title: "Overview", Nav: "overview", Data: d})
}

// groupWaiverOf returns the active waiver of the rule for the whole group.
func groupWaiverOf(ws []store.Waiver, now time.Time, group, rule string) *store.Waiver {
	for i := range ws {
		if ws[i].DeviceID == "" && ws[i].Group == group && ws[i].RuleID == rule && ws[i].ActiveAt(now) {
			return &ws[i]
		}
	}
	return nil
}

// Times and durations as a person reads them.

// HumanDuration says d in the largest whole unit that fits, two units
// where the second matters: "14 days", "1 day 12 hours", "3 hours",
// "90 minutes" reads as "1 hour 30 minutes".
func HumanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	day := 24 * time.Hour
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < day:
		s := plural(int64(d/time.Hour), "hour")
		if m := int64(d % time.Hour / time.Minute); m > 0 {
			s += " " + plural(m, "minute")
		}
		return s
	}
	s := plural(int64(d/day), "day")
	if hr := int64(d % day / time.Hour); hr > 0 && d < 7*day {
		s += " " + plural(hr, "hour")
	}
	return s
}

// ageOf is how long ago t was, in whole units ("3 days"), the way a
// failing-since column reads.
func ageOf(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d >= 48*time.Hour:
		return HumanDuration(d.Truncate(24 * time.Hour))
	case d >= time.Hour:
		return HumanDuration(d.Truncate(time.Hour))
	}
	return HumanDuration(d)
}

// timeTag is t in words, relative to now, with the absolute time on
// hover and for machines.
func timeTag(t time.Time, words string) template.HTML {
	abs := t.UTC().Format("2006-01-02 15:04 UTC")
	return template.HTML(`<time datetime="` + t.UTC().Format(time.RFC3339) + `" title="` + abs + `">` + template.HTMLEscapeString(words) + `</time>`)
}

func init() {
	funcs["dur"] = HumanDuration
	// age: "3 days" (since t), the absolute time on hover.
	funcs["age"] = func(t any, now time.Time) template.HTML {
		tt, ok := timeOf(t)
		if !ok {
			return "—"
		}
		return timeTag(tt, ageOf(tt, now))
	}
	// ago: "3 days ago", "in 2 days" for the future.
	funcs["ago"] = func(t any, now time.Time) template.HTML {
		tt, ok := timeOf(t)
		if !ok {
			return "—"
		}
		if tt.After(now) {
			return timeTag(tt, "in "+ageOf(now, tt))
		}
		if now.Sub(tt) < time.Minute {
			return timeTag(tt, "just now")
		}
		return timeTag(tt, ageOf(tt, now)+" ago")
	}
	funcs["pct"] = func(n, of int) string {
		if of <= 0 {
			return ""
		}
		return strconv.Itoa((n*100+of/2)/of) + "%"
	}
}

func timeOf(t any) (time.Time, bool) {
	switch v := t.(type) {
	case time.Time:
		return v, !v.IsZero()
	case *time.Time:
		if v != nil && !v.IsZero() {
			return *v, true
		}
	}
	return time.Time{}, false
}
