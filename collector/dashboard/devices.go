package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// The device list (docs/device-list.md): who fails what since when, per
// device, filtered, sorted by any column and paged by cursor, all in the
// store, so a page costs the same on the thousandth page as on the first.

// listRow is one row of the device list.
type listRow struct {
	deviceRow
	store.DeviceListing
	// Since, Next and Seen are the failing since, next deadline and last
	// seen, relative ("3 days", "in 2 days", "5 hours ago"); the page
	// shows the absolute time on hover.
	Since, Next, Seen string
}

// policyChoice is one policy of the policy filter: its name and the
// groups held to it.
type policyChoice struct {
	Name   string
	Groups []string
}

// sortColumn is a sortable header of the list.
type sortColumn struct {
	Key, Label string
	// Link is the header's link: this column ascending, or descending
	// when it is the current ascending sort. Arrow shows the current one.
	Link, Arrow string
}

type devicesData struct {
	Query    url.Values
	Rows     []listRow
	Columns  []sortColumn
	Total    string // "N", or "N+" for a filter the store has no count for
	Next     string
	Prev     string
	Paged    bool
	Groups   []string
	Rules    []string
	Policies []policyChoice
	Statuses []store.DeviceStatus
	Seens    [][2]string
	CertDays []string
	Filtered string
}

// maxPageSize bounds the rows a page may ask for (limit=).
const maxPageSize = 500

// certDays are the certificate filter's windows, in days.
var certDays = []string{"7", "14", "30", "90"}

// listDeadlines are the graces of every group's policy's rules, and the
// policies by name with their groups.
func (h *handler) listDeadlines(ctx context.Context) ([]store.DeadlineRule, []policyChoice, []string, error) {
	gps, err := h.groupPolicies(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	var rules []store.DeadlineRule
	var pols []policyChoice
	var ruleIDs []string
	for _, gp := range gps {
		for _, rule := range gp.Policy.Rules {
			if rule.Grace > 0 {
				rules = append(rules, store.DeadlineRule{Group: gp.Group, RuleID: rule.ID, Grace: rule.Grace})
			}
			if !slices.Contains(ruleIDs, rule.ID) {
				ruleIDs = append(ruleIDs, rule.ID)
			}
		}
		i := slices.IndexFunc(pols, func(p policyChoice) bool { return p.Name == gp.Name })
		if i < 0 {
			pols, i = append(pols, policyChoice{Name: gp.Name}), len(pols)
		}
		pols[i].Groups = append(pols[i].Groups, gp.Group)
	}
	slices.SortFunc(pols, func(a, b policyChoice) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(ruleIDs)
	return rules, pols, ruleIDs, nil
}

// span is a duration as a person reads it at a glance: minutes under
// an hour, hours under a day, else days (whole, rounded down).
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute")
	case d < 24*time.Hour:
		return plural(int(d.Hours()), "hour")
	}
	return plural(int(d.Hours()/24), "day")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// relTime is t relative to now: "3 days ago", "in 5 hours".
func relTime(t, now time.Time) string {
	if t.After(now) {
		return "in " + span(t.Sub(now))
	}
	return span(now.Sub(t)) + " ago"
}

func (h *handler) devices(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.now()
	q := r.URL.Query()
	deadlines, pols, ruleIDs, err := h.listDeadlines(ctx)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	dq := store.DeviceQuery{
		Now: now, StaleAfter: h.cfg.StaleAfter,
		Status: store.DeviceStatus(q.Get("status")), RuleID: q.Get("rule"), Group: q.Get("group"), OS: q.Get("os"),
		Search: q.Get("q"), Sort: q.Get("sort"), Limit: min(max(atoi(q.Get("limit"), pageSize), 1), maxPageSize), After: q.Get("after"), Before: q.Get("before"),
		Offset: max(atoi(q.Get("offset"), 0), 0),
		DeviceFilters: store.DeviceFilters{
			AgentVersion: q.Get("agent"), Seen: q.Get("seen"), Deadlines: deadlines, Overdue: q.Get("overdue") != "",
		},
	}
	// Unknown values are dropped, as a hand-edited address deserves: the
	// list shows what it was asked for that it understands.
	statuses := []store.DeviceStatus{store.StatusCompliant, store.StatusFailing, store.StatusUnknown, store.StatusStale, store.StatusRevoked}
	if !slices.Contains(statuses, dq.Status) {
		dq.Status = ""
		q.Del("status")
	}
	seens := [][2]string{{store.SeenFresh, "fresh"}, {store.SeenStale, "stale"}, {store.SeenNever, "never reported"}, {store.SeenRevoked, "revoked"}}
	if !slices.ContainsFunc(seens, func(s [2]string) bool { return s[0] == dq.Seen }) {
		dq.Seen = ""
		q.Del("seen")
	}
	if !slices.Contains(store.Sorts, strings.TrimPrefix(dq.Sort, "-")) {
		dq.Sort = ""
		q.Del("sort")
	}
	switch c := q.Get("cert"); {
	case c == "expiring":
		dq.CertWithin = store.CertWarning
	case slices.Contains(certDays, c):
		dq.CertWithin = time.Duration(atoi(c, 0)) * 24 * time.Hour
	default:
		q.Del("cert")
	}
	if name := q.Get("policy"); name != "" {
		i := slices.IndexFunc(pols, func(p policyChoice) bool { return p.Name == name })
		if i < 0 {
			dq.Groups = []string{} // no group is held to it: nothing matches
		} else {
			dq.Groups = pols[i].Groups
		}
	}
	p, err := h.st.ListDevices(ctx, dq)
	if errors.Is(err, store.ErrBadCursor) {
		// A cursor from another sort, or edited: the first page.
		q.Del("after")
		q.Del("before")
		dq.After, dq.Before = "", ""
		p, err = h.st.ListDevices(ctx, dq)
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d := devicesData{Query: q, Total: strconv.Itoa(p.Total), Next: p.Next, Prev: p.Prev, Paged: p.Prev != "" || dq.Offset > 0,
		Statuses: statuses, Seens: seens, CertDays: certDays, Policies: pols, Rules: ruleIDs}
	if !p.TotalExact {
		d.Total += "+"
	}
	d.Query.Del("offset")
	var filters []string
	certText := ""
	if dq.CertWithin > 0 {
		certText = fmt.Sprintf("expired or expiring within %d days", int(dq.CertWithin.Hours()/24))
	}
	for _, kv := range [][2]string{
		{"status", string(dq.Status)}, {"seen", dq.Seen}, {"policy", q.Get("policy")}, {"group", dq.Group}, {"failing rule", dq.RuleID},
		{"overdue", map[bool]string{true: "yes"}[dq.Overdue]}, {"agent version", dq.AgentVersion}, {"OS", dq.OS},
		{"hostname contains", dq.Search}, {"certificate", certText},
	} {
		if kv[1] != "" {
			filters = append(filters, kv[0]+" "+kv[1])
		}
	}
	d.Filtered = strings.Join(filters, ", ")
	for _, dev := range p.Devices {
		row := listRow{deviceRow: newDeviceRow(dev, now, h.cfg.StaleAfter), DeviceListing: p.Listing[dev.ID]}
		if row.FailingSince != nil {
			row.Since = span(now.Sub(*row.FailingSince))
		}
		if row.NextDeadline != nil {
			row.Next = relTime(*row.NextDeadline, now)
		}
		if dev.LastSeen != nil {
			row.Seen = relTime(*dev.LastSeen, now)
		}
		d.Rows = append(d.Rows, row)
	}
	cur := dq.Sort
	if cur == "" {
		cur = store.SortHostname
	}
	for _, c := range [][2]string{
		{store.SortHostname, "Hostname"}, {store.SortGroup, "Group"}, {store.SortOS, "OS"}, {store.SortAgentVersion, "Agent"},
		{store.SortStatus, "Status"}, {store.SortFail, "Failing rules"}, {store.SortFailingSince, "Failing since"},
		{store.SortDeadline, "Next deadline"}, {store.SortLastSeen, "Last seen"}, {store.SortCert, "Certificate"},
	} {
		col := sortColumn{Key: c[0], Label: c[1]}
		next := c[0]
		switch cur {
		case c[0]:
			col.Arrow, next = "▲", "-"+c[0]
		case "-" + c[0]:
			col.Arrow = "▼"
		}
		v := url.Values{}
		for k, vs := range q {
			if k != "after" && k != "before" {
				v[k] = vs
			}
		}
		v.Set("sort", next)
		col.Link = "?" + v.Encode()
		d.Columns = append(d.Columns, col)
	}
	if d.Groups, err = h.st.Groups(ctx); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, "devices", page{Title: "Devices", Nav: "devices", Data: d})
}
