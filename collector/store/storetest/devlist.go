package storetest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunDeviceListConformance runs the device list's suite (filters by
// policy's groups, agent version, seen, certificate window and overdue;
// every sort, both directions, paged by cursor; the listings' failing
// rules and deadlines) against stores made by newStore.
func RunDeviceListConformance(t *testing.T, newStore func() store.Dashboard) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Dashboard)
	}{
		{"KnownFleet", testDeviceListKnown},
		{"MatchesBruteForce", testDeviceListRandom},
		{"ConnectedGrace", testDeviceListConnected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// listFleet enrols a device and sends it one report per entry of fails:
// at each time, the rules listed fail and the others of rules pass.
type listDevice struct {
	id, host, group, agent string
	enrolled               time.Time
	notAfter               time.Time
	rules                  []string
	// reports: at each time, the verdict of every rule (missing: PASS).
	reports []listReport
	revoke  bool
}

type listReport struct {
	at       time.Time
	verdicts map[string]store.Verdict
	// conn: the agent's connected-grace accounting of the rules that
	// have one in this report (docs/connectivity.md); the others' grace
	// is plain.
	conn map[string]connAcc
}

// connAcc is a rule result's connected-grace accounting.
type connAcc struct {
	used   time.Duration
	paused bool
}

func buildListFleet(t *testing.T, s store.Dashboard, devs []listDevice) {
	t.Helper()
	ctx := context.Background()
	tokens := map[string]bool{}
	for _, d := range devs {
		if !tokens[d.group] {
			tokens[d.group] = true
			if err := s.CreateToken(ctx, store.Token{ID: "tk-" + d.group, Hash: hash("list-" + d.group), Group: d.group, Uses: 1000, UsesLeft: 1000, CreatedAt: t0, ExpiresAt: t0.AddDate(1, 0, 0)}); err != nil {
				t.Fatal(err)
			}
		}
		d := d
		_, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("list-" + d.group), Now: d.enrolled, NewID: d.id,
			Info: store.DeviceInfo{Hostname: d.host, Platform: "linux", OSName: "Debian", OSVersion: "12", AgentVersion: d.agent}},
			func(id string) (store.Issued, error) {
				serials++
				return store.Issued{Serial: fmt.Sprintf("l%x", 1000+serials), NotAfter: d.notAfter, DER: []byte(id)}, nil
			})
		if err != nil {
			t.Fatalf("Enroll %s: %v", d.id, err)
		}
		for i, r := range d.reports {
			rep := store.Report{DeviceID: d.id, Sequence: uint64(i + 1), ReceivedAt: r.at, CollectedAt: r.at, ObservedAt: r.at, AgentVersion: d.agent,
				PolicyName: "p", PolicyVersion: 1, Facts: []byte{0x0a, 0x00}, ContentHash: hash(fmt.Sprint(d.id, i))}
			for _, rule := range d.rules {
				v := r.verdicts[rule]
				if v == "" {
					v = store.Pass
				}
				res := store.RuleResult{RuleID: rule, Title: simTitle(rule), Family: "f", Severity: "high", Collector: v, Agent: v, Observed: "o", Expected: "e"}
				if c, ok := r.conn[rule]; ok {
					res.GraceConnected, res.GraceUsed, res.DeadlinePaused = true, c.used, c.paused
				}
				rep.Results = append(rep.Results, res)
			}
			if _, err := s.SaveReport(ctx, rep); err != nil {
				t.Fatalf("SaveReport %s: %v", d.id, err)
			}
		}
		if d.revoke {
			if err := s.RevokeDevice(ctx, d.id, d.enrolled.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testDeviceListKnown(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	day := 24 * time.Hour
	now := t0.Add(10 * day)
	year := t0.AddDate(1, 0, 0)
	F := store.Fail
	all := []string{"disk", "firewall", "os", "patch", "usb"}
	rep := func(at time.Time, fails ...string) listReport {
		r := listReport{at: at, verdicts: map[string]store.Verdict{}}
		for _, f := range fails {
			r.verdicts[f] = F
		}
		return r
	}
	buildListFleet(t, s, []listDevice{
		{id: "dev-a", host: "alpha", group: "hq", agent: "1.2.0", enrolled: t0, notAfter: year, rules: all, reports: []listReport{
			rep(t0.Add(day), "disk"), rep(t0.Add(2*day), "disk", "firewall"), rep(t0.Add(3*day), "disk", "firewall", "os"),
			rep(t0.Add(4*day), "disk", "firewall", "os", "patch"), rep(now.Add(-time.Hour), "disk", "firewall", "os", "patch")}},
		{id: "dev-b", host: "bravo", group: "field", agent: "1.1.0", enrolled: t0, notAfter: now.Add(3 * day), rules: all, reports: []listReport{
			rep(t0.Add(5*day), "disk"), rep(now.Add(-2*time.Hour), "disk")}},
		{id: "dev-c", host: "charlie", group: "hq", agent: "1.2.0", enrolled: t0, notAfter: now.Add(-day), rules: all, reports: []listReport{
			rep(now.Add(-time.Hour))}},
		{id: "dev-d", host: "delta", group: "lab", agent: "1.0.0", enrolled: t0, notAfter: year, rules: all, reports: []listReport{
			rep(t0.Add(day+time.Hour), "firewall")}},
		{id: "dev-e", host: "echo", group: "hq", agent: "1.2.0", enrolled: now.Add(-time.Hour), notAfter: year},
		{id: "dev-f", host: "foxtrot", group: "field", agent: "1.1.0", enrolled: t0, notAfter: year},
		{id: "dev-g", host: "golf", group: "hq", agent: "1.0.0", enrolled: t0, notAfter: now.Add(day), rules: all, revoke: true, reports: []listReport{
			rep(t0.Add(time.Hour), "disk")}},
		{id: "dev-h", host: "hotel", group: "lab", agent: "1.0.0", enrolled: t0, notAfter: year, rules: []string{"disk"}, reports: []listReport{
			{at: now.Add(-time.Hour), verdicts: map[string]store.Verdict{"disk": store.Unknown}}}},
	})
	deadlines := []store.DeadlineRule{
		{Group: "hq", RuleID: "disk", Grace: 2 * day}, {Group: "hq", RuleID: "firewall", Grace: 10 * day},
		{Group: "field", RuleID: "disk", Grace: day}, {Group: "lab", RuleID: "firewall", Grace: day},
		{Group: "lab", RuleID: "usb", Grace: 0}, // no grace: no deadline
	}
	base := store.DeviceQuery{Now: now, StaleAfter: day, Limit: 50, DeviceFilters: store.DeviceFilters{Deadlines: deadlines}}
	hosts := func(p store.DevicePage) string {
		var hs []string
		for _, d := range p.Devices {
			hs = append(hs, d.Hostname)
		}
		return strings.Join(hs, " ")
	}
	for _, tc := range []struct {
		name string
		edit func(*store.DeviceQuery)
		want string
	}{
		{"all", func(q *store.DeviceQuery) {}, "alpha bravo charlie delta echo foxtrot golf hotel"},
		{"overdue", func(q *store.DeviceQuery) { q.Overdue = true }, "alpha bravo delta"},
		{"overdue without deadlines", func(q *store.DeviceQuery) { q.Overdue, q.Deadlines = true, nil }, ""},
		{"overdue disk", func(q *store.DeviceQuery) { q.Overdue, q.RuleID = true, "disk" }, "alpha bravo"},
		{"never reported", func(q *store.DeviceQuery) { q.Seen = store.SeenNever }, "echo foxtrot"},
		{"fresh", func(q *store.DeviceQuery) { q.Seen = store.SeenFresh }, "alpha bravo charlie echo hotel"},
		{"stale", func(q *store.DeviceQuery) { q.Seen = store.SeenStale }, "delta foxtrot"},
		{"revoked", func(q *store.DeviceQuery) { q.Seen = store.SeenRevoked }, "golf"},
		{"stale never reported", func(q *store.DeviceQuery) { q.Seen, q.Status = store.SeenNever, store.StatusStale }, "foxtrot"},
		{"agent 1.2.0", func(q *store.DeviceQuery) { q.AgentVersion = "1.2.0" }, "alpha charlie echo"},
		{"policy groups", func(q *store.DeviceQuery) { q.Groups = []string{"hq", "lab"} }, "alpha charlie delta echo golf hotel"},
		{"policy without groups", func(q *store.DeviceQuery) { q.Groups = []string{} }, ""},
		{"cert within 7 days", func(q *store.DeviceQuery) { q.CertWithin = 7 * day }, "bravo charlie"},
		{"cert within 7 days by expiry", func(q *store.DeviceQuery) { q.CertWithin, q.Sort = 7*day, store.SortCert }, "charlie bravo"},
		{"by deadline", func(q *store.DeviceQuery) { q.Sort = store.SortDeadline }, "delta alpha bravo charlie echo foxtrot golf hotel"},
		{"by deadline, descending", func(q *store.DeviceQuery) { q.Sort = "-" + store.SortDeadline }, "hotel golf foxtrot echo charlie bravo alpha delta"},
		{"by failing since", func(q *store.DeviceQuery) { q.Sort = store.SortFailingSince }, "alpha delta bravo charlie echo foxtrot golf hotel"},
		{"by failing since, descending", func(q *store.DeviceQuery) { q.Sort = "-" + store.SortFailingSince }, "hotel golf foxtrot echo charlie bravo delta alpha"},
		{"by status", func(q *store.DeviceQuery) { q.Sort = store.SortStatus }, "alpha bravo echo hotel delta foxtrot charlie golf"},
		{"by status, descending", func(q *store.DeviceQuery) { q.Sort = "-" + store.SortStatus }, "golf charlie foxtrot delta hotel echo bravo alpha"},
		{"by agent version", func(q *store.DeviceQuery) { q.Sort = store.SortAgentVersion }, "delta golf hotel bravo foxtrot alpha charlie echo"},
		{"by agent version, descending", func(q *store.DeviceQuery) { q.Sort = "-" + store.SortAgentVersion }, "echo charlie alpha foxtrot bravo hotel golf delta"},
		{"by certificate", func(q *store.DeviceQuery) { q.Sort = store.SortCert }, "charlie golf bravo alpha delta echo foxtrot hotel"},
		{"overdue by deadline", func(q *store.DeviceQuery) { q.Overdue, q.Sort = true, store.SortDeadline }, "delta alpha bravo"},
		{"hq by deadline", func(q *store.DeviceQuery) { q.Group, q.Sort = "hq", store.SortDeadline }, "alpha charlie echo golf"},
		{"failing by failing since", func(q *store.DeviceQuery) { q.Status, q.Sort = store.StatusFailing, store.SortFailingSince }, "alpha bravo"},
	} {
		q := base
		tc.edit(&q)
		p, err := s.ListDevices(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := hosts(p); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if p.TotalExact && p.Total != len(p.Devices) || p.Total > len(p.Devices) {
			t.Errorf("%s: total %d (exact %v) for %d devices", tc.name, p.Total, p.TotalExact, len(p.Devices))
		}
		// Paged two at a time by cursor, the same order.
		q.Limit = 2
		var paged []string
		var last store.DevicePage
		for range 10 {
			pp, err := s.ListDevices(ctx, q)
			if err != nil {
				t.Fatalf("%s, paged: %v", tc.name, err)
			}
			if (q.After == "") != (pp.Prev == "") {
				t.Errorf("%s, paged: page after %q has prev %q", tc.name, q.After, pp.Prev)
			}
			if h := hosts(pp); h != "" {
				paged = append(paged, h)
			}
			last = pp
			if pp.Next == "" {
				break
			}
			q.After = pp.Next
		}
		if got := strings.Join(paged, " "); got != tc.want {
			t.Errorf("%s, paged by 2: got %q, want %q", tc.name, got, tc.want)
		}
		// And back by the pages' prev cursors, to the first page.
		back := []string{hosts(last)}
		q.After = ""
		for pp := last; pp.Prev != "" && len(back) < 10; {
			q.Before = pp.Prev
			var err error
			if pp, err = s.ListDevices(ctx, q); err != nil {
				t.Fatalf("%s, back: %v", tc.name, err)
			}
			if pp.Next == "" {
				t.Errorf("%s, back: page before %q has no next", tc.name, q.Before)
			}
			back = append([]string{hosts(pp)}, back...)
		}
		if got := strings.TrimSpace(strings.Join(back, " ")); got != tc.want {
			t.Errorf("%s, paged back by 2: got %q, want %q", tc.name, got, tc.want)
		}
	}

	// The listings: failing rules by deadline, bounded, with the earliest
	// failing since and the next deadline.
	p, err := s.ListDevices(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) string { return t0.Add(d).UTC().Format(time.RFC3339) }
	show := func(id string) string {
		l, ok := p.Listing[id]
		if !ok {
			return "none"
		}
		var rs []string
		for _, f := range l.Failing {
			r := f.RuleID + "@" + f.Since.UTC().Format(time.RFC3339)
			if f.Deadline != nil {
				r += "<" + f.Deadline.UTC().Format(time.RFC3339)
			}
			if f.Overdue {
				r += "!"
			}
			if f.Title != simTitle(f.RuleID) {
				r += "?title=" + f.Title
			}
			rs = append(rs, r)
		}
		out := strings.Join(rs, ",") + fmt.Sprintf(" +%d", l.FailingMore)
		if l.FailingSince != nil {
			out += " since " + l.FailingSince.UTC().Format(time.RFC3339)
		}
		if l.NextDeadline != nil {
			out += " next " + l.NextDeadline.UTC().Format(time.RFC3339)
		}
		if l.Overdue {
			out += " overdue"
		}
		return out
	}
	for id, want := range map[string]string{
		"dev-a": "disk@" + at(day) + "<" + at(3*day) + "!,firewall@" + at(2*day) + "<" + at(12*day) + ",os@" + at(3*day) + " +1 since " + at(day) + " next " + at(3*day) + " overdue",
		"dev-b": "disk@" + at(5*day) + "<" + at(6*day) + "! +0 since " + at(5*day) + " next " + at(6*day) + " overdue",
		"dev-d": "firewall@" + at(day+time.Hour) + "<" + at(2*day+time.Hour) + "! +0 since " + at(day+time.Hour) + " next " + at(2*day+time.Hour) + " overdue",
		"dev-c": "none", "dev-e": "none", "dev-g": "none", "dev-h": "none",
	} {
		if got := show(id); got != want {
			t.Errorf("listing of %s:\n got %s\nwant %s", id, got, want)
		}
	}

	// A cursor of one sort is refused by another.
	q := base
	q.Sort, q.Limit = store.SortDeadline, 2
	p, err = s.ListDevices(ctx, q)
	if err != nil || p.Next == "" {
		t.Fatalf("by deadline: %+v, %v", p, err)
	}
	q.Sort, q.After = store.SortStatus, p.Next
	if _, err := s.ListDevices(ctx, q); err == nil || !strings.Contains(err.Error(), store.ErrBadCursor.Error()) {
		t.Errorf("deadline cursor for the status sort: %v, want ErrBadCursor", err)
	}
}

// testDeviceListRandom builds a random fleet and compares every sort of
// random filter sets, paged by cursor, and the listings with the same
// answers computed by brute force.
func testDeviceListRandom(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(14, 2))
	day := 24 * time.Hour
	now := t0.Add(20 * day)
	var devs []listDevice
	agents := []string{"1.0.0", "1.1.0", "1.10.0", "2.0.0"}
	for i := range 70 {
		d := listDevice{id: fmt.Sprintf("dev-%03d", i), host: fmt.Sprintf("Host-%02d", rng.IntN(30)), group: simGroups[rng.IntN(len(simGroups))],
			agent: agents[rng.IntN(len(agents))], enrolled: t0.Add(time.Duration(rng.IntN(10*24)) * time.Hour),
			revoke: rng.IntN(10) == 0}
		d.notAfter = now.Add(time.Duration(rng.IntN(60*24)-10*24) * time.Hour)
		for _, r := range simRules {
			if rng.IntN(3) > 0 {
				d.rules = append(d.rules, r)
			}
		}
		if rng.IntN(6) > 0 {
			at := d.enrolled
			for range 1 + rng.IntN(4) {
				at = at.Add(time.Duration(1+rng.IntN(5*24)) * time.Hour)
				r := listReport{at: at, verdicts: map[string]store.Verdict{}}
				for _, rule := range d.rules {
					r.verdicts[rule] = []store.Verdict{store.Pass, store.Fail, store.Fail, store.Unknown}[rng.IntN(4)]
					// Some failing rules have a connected grace: what
					// the agent counted (up to 10 days, more than the
					// time since failing_since at times) and whether
					// the round found no connection.
					if r.verdicts[rule] == store.Fail && rng.IntN(3) == 0 {
						if r.conn == nil {
							r.conn = map[string]connAcc{}
						}
						r.conn[rule] = connAcc{used: time.Duration(rng.IntN(10*24)) * time.Hour, paused: rng.IntN(3) == 0}
					}
				}
				d.reports = append(d.reports, r)
			}
		}
		devs = append(devs, d)
	}
	buildListFleet(t, s, devs)
	tr := loadTruth(t, s)
	for round := range 12 {
		at := now.Add(time.Duration(rng.IntN(10*24)-5*24) * time.Hour)
		stale := time.Duration(1+rng.IntN(6*24)) * time.Hour
		var deadlines []store.DeadlineRule
		for _, g := range simGroups {
			for _, r := range simRules {
				if rng.IntN(2) == 0 {
					deadlines = append(deadlines, store.DeadlineRule{Group: g, RuleID: r, Grace: time.Duration(rng.IntN(8*24)) * time.Hour})
				}
			}
		}
		graces := store.Graces(deadlines)
		q := store.DeviceQuery{Now: at, StaleAfter: stale, Limit: 1 + rng.IntN(8), DeviceFilters: store.DeviceFilters{Deadlines: deadlines}}
		switch rng.IntN(8) {
		case 0:
			q.Seen = []string{store.SeenFresh, store.SeenStale, store.SeenNever, store.SeenRevoked}[rng.IntN(4)]
		case 1:
			q.Status = []store.DeviceStatus{store.StatusFailing, store.StatusUnknown, store.StatusStale}[rng.IntN(3)]
		case 2:
			q.Overdue = true
		case 3:
			q.AgentVersion = agents[rng.IntN(len(agents))]
		case 4:
			q.Groups = simGroups[:1+rng.IntN(2)]
		case 5:
			q.CertWithin = time.Duration(1+rng.IntN(20)) * day
		case 6:
			q.RuleID = simRules[rng.IntN(len(simRules))]
		}
		var match []store.Device
		for _, d := range tr.devs {
			if listMatches(tr, d, q, graces) {
				match = append(match, d)
			}
		}
		for _, sortKey := range store.Sorts {
			for _, sk := range []string{sortKey, "-" + sortKey} {
				q.Sort = sk
				slices.SortFunc(match, lessListed(tr, sk, at, stale, graces))
				what := fmt.Sprintf("round %d: ListDevices(sort %s, %+v)", round, sk, q.DeviceFilters)
				checkList(t, s, tr, what, q, match)
				checkBack(t, s, what, q)
			}
		}
		// The listings of one page, by brute force.
		q.Sort, q.Limit, q.After = "", 100, ""
		p, err := s.ListDevices(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range p.Devices {
			want, got := listingOf(tr, d, graces, at), p.Listing[d.ID]
			if fmt.Sprint(want) != fmt.Sprint(got) {
				t.Fatalf("round %d: listing of %s = %s, want %s", round, d.ID, fmt.Sprint(got), fmt.Sprint(want))
			}
		}
	}
}

// failKeys is a device's failing states (none when revoked).
func failKeys(tr truth, d store.Device) []store.FailState {
	if d.Revoked() {
		return nil
	}
	var out []store.FailState
	for _, st := range tr.states[d.ID] {
		if st.Collector == store.Fail && st.FailingSince != nil {
			out = append(out, store.FailState{DeviceID: d.ID, Group: d.Group, RuleID: st.RuleID, Title: st.Title, Since: *st.FailingSince,
				GraceConnected: st.GraceConnected, DeadlinePaused: st.DeadlinePaused, GraceUsed: st.GraceUsed, At: st.UpdatedAt})
		}
	}
	return out
}

func listingOf(tr truth, d store.Device, graces map[[2]string]time.Duration, now time.Time) store.DeviceListing {
	return store.Listings(failKeys(tr, d), graces, now)[d.ID]
}

func listMatches(tr truth, d store.Device, q store.DeviceQuery, graces map[[2]string]time.Duration) bool {
	st := d.Status(q.Now, q.StaleAfter)
	stale := st == store.StatusStale
	switch q.Seen {
	case store.SeenFresh:
		if d.Revoked() || stale {
			return false
		}
	case store.SeenStale:
		if !stale {
			return false
		}
	case store.SeenNever:
		if d.Revoked() || d.LastSeen != nil {
			return false
		}
	case store.SeenRevoked:
		if !d.Revoked() {
			return false
		}
	}
	if q.Status != "" && st != q.Status {
		return false
	}
	if q.RuleID != "" {
		if _, ok := tr.failing(d.ID, q.RuleID); !ok || d.Revoked() {
			return false
		}
	}
	if q.AgentVersion != "" && d.AgentVersion != q.AgentVersion {
		return false
	}
	if q.Groups != nil && !slices.Contains(q.Groups, d.Group) {
		return false
	}
	if q.CertWithin > 0 && (d.Revoked() || d.CertNotAfter.After(q.Now.Add(q.CertWithin))) {
		return false
	}
	if q.Overdue && !listedOverdue(tr, d, graces, q.Now) {
		return false
	}
	return true
}

// listedOverdue says d fails a rule past its deadline, by
// store.RuleState.Overdue (a paused connected-grace deadline never is).
func listedOverdue(tr truth, d store.Device, graces map[[2]string]time.Duration, now time.Time) bool {
	overdue := false
	if !d.Revoked() {
		for _, st := range tr.states[d.ID] {
			if g, ok := graces[[2]string{d.Group, st.RuleID}]; ok && st.Overdue(g, now) {
				overdue = true
			}
		}
	}
	return overdue
}

// lessListed orders devices as ListDevices sorts them, for every sort.
func lessListed(tr truth, sortKey string, now time.Time, staleAfter time.Duration, graces map[[2]string]time.Duration) func(a, b store.Device) int {
	key, desc := strings.TrimPrefix(sortKey, "-"), strings.HasPrefix(sortKey, "-")
	dir := func(c int) int {
		if desc {
			return -c
		}
		return c
	}
	host := func(a, b store.Device) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Hostname), strings.ToLower(b.Hostname)), cmp.Compare(a.ID, b.ID))
	}
	// keyOf is a device's key in the keyed sorts; ok false: none.
	keyOf := func(d store.Device) (time.Time, bool) {
		l := listingOf(tr, d, graces, now)
		if key == store.SortFailingSince {
			if l.FailingSince == nil {
				return time.Time{}, false
			}
			return *l.FailingSince, true
		}
		if l.NextDeadline == nil {
			return time.Time{}, false
		}
		return *l.NextDeadline, true
	}
	rank := func(d store.Device) int { return slices.Index(store.StatusOrder, d.Status(now, staleAfter)) }
	switch key {
	case store.SortOS:
		return func(a, b store.Device) int { return dir(cmp.Or(cmp.Compare(a.OSName, b.OSName), host(a, b))) }
	case store.SortAgentVersion:
		return func(a, b store.Device) int {
			return dir(cmp.Or(cmp.Compare(a.AgentVersion, b.AgentVersion), host(a, b)))
		}
	case store.SortCert:
		return func(a, b store.Device) int {
			return dir(cmp.Or(a.CertNotAfter.Compare(b.CertNotAfter), cmp.Compare(a.ID, b.ID)))
		}
	case store.SortStatus:
		return func(a, b store.Device) int { return dir(cmp.Or(cmp.Compare(rank(a), rank(b)), host(a, b))) }
	case store.SortFailingSince, store.SortDeadline:
		return func(a, b store.Device) int {
			ka, oka := keyOf(a)
			kb, okb := keyOf(b)
			switch {
			case oka && !okb:
				return dir(-1)
			case !oka && okb:
				return dir(1)
			case oka:
				return dir(cmp.Or(ka.Compare(kb), cmp.Compare(a.ID, b.ID)))
			}
			return dir(host(a, b))
		}
	}
	return lessDevice(sortKey)
}

// checkBack pages through q forward by Next, then back by Prev from the
// last page, and compares the pages.
func checkBack(t *testing.T, s store.Dashboard, what string, q store.DeviceQuery) {
	t.Helper()
	ctx := context.Background()
	ids := func(p store.DevicePage) string {
		var out []string
		for _, d := range p.Devices {
			out = append(out, d.ID)
		}
		return strings.Join(out, ",")
	}
	var fwd []string
	var last store.DevicePage
	for range 200 {
		p, err := s.ListDevices(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		fwd, last = append(fwd, ids(p)), p
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	q.After = ""
	for i := len(fwd) - 2; i >= 0; i-- {
		if last.Prev == "" {
			t.Fatalf("%s: page %d of %d has no prev", what, i+2, len(fwd))
		}
		q.Before = last.Prev
		p, err := s.ListDevices(ctx, q)
		if err != nil {
			t.Fatalf("%s: before: %v", what, err)
		}
		if got := ids(p); got != fwd[i] {
			t.Fatalf("%s: page %d back by prev = %s, want %s", what, i+1, got, fwd[i])
		}
		last = p
	}
	if last.Prev != "" {
		t.Fatalf("%s: the first page, reached back, has prev %q", what, last.Prev)
	}
}

// testDeviceListConnected checks the device list's overdue filter, its
// total and its deadline sort against connected-grace deadlines
// (docs/connectivity.md): due at the report's time plus what is left of
// grace, and never overdue while paused, whatever failing_since says.
func testDeviceListConnected(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	const grace = 72 * time.Hour
	start := t0.Add(time.Hour)
	at := start.Add(100 * time.Hour)
	now := at.Add(time.Hour)
	rules := []string{"disk", "patch"}
	rep := func(when time.Time, fail string, c *connAcc) listReport {
		r := listReport{at: when, verdicts: map[string]store.Verdict{}}
		if fail != "" {
			r.verdicts[fail] = store.Fail
			if c != nil {
				r.conn = map[string]connAcc{fail: *c}
			}
		}
		return r
	}
	dev := func(id string, reports ...listReport) listDevice {
		return listDevice{id: id, host: id, group: "field", agent: "1.0.0", enrolled: t0, notAfter: t0.AddDate(1, 0, 0), rules: rules, reports: reports}
	}
	buildListFleet(t, s, []listDevice{
		// Failing since start, 80 of 72 connected hours used, but the
		// round found no connection: paused, due at - 8h, not overdue.
		dev("k-paused", rep(start, "patch", &connAcc{}), rep(at, "patch", &connAcc{used: 80 * time.Hour, paused: true})),
		// Failing only since at, but 75 connected hours used (counted
		// by the agent before the collector saw it fail): due at - 3h.
		dev("k-over", rep(at, "patch", &connAcc{used: 75 * time.Hour})),
		// Failing since start, 10 connected hours used: due at + 62h.
		dev("k-left", rep(start, "patch", &connAcc{}), rep(at, "patch", &connAcc{used: 10 * time.Hour})),
		// Plain grace: due 24 h after failing_since.
		dev("k-plain", rep(start, "disk", nil), rep(at, "disk", nil)),
		dev("k-ok", rep(at, "disk", nil)),
		dev("k-pass", rep(at, "", nil)),
		// Revoked: out of the list's deadlines.
		{id: "k-revoked", host: "k-revoked", group: "field", agent: "1.0.0", enrolled: t0, notAfter: t0.AddDate(1, 0, 0), rules: rules, revoke: true,
			reports: []listReport{rep(start, "patch", &connAcc{}), rep(at, "patch", &connAcc{used: 90 * time.Hour})}},
	})
	deadlines := []store.DeadlineRule{{Group: "field", RuleID: "patch", Grace: grace}, {Group: "field", RuleID: "disk", Grace: 24 * time.Hour}}
	base := store.DeviceQuery{Now: now, StaleAfter: 1000 * time.Hour, Limit: 50, DeviceFilters: store.DeviceFilters{Deadlines: deadlines}}
	ids := func(p store.DevicePage) string {
		var out []string
		for _, d := range p.Devices {
			out = append(out, d.ID)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name  string
		edit  func(*store.DeviceQuery)
		want  string
		total int // -1: not checked
	}{
		{"overdue", func(q *store.DeviceQuery) { q.Overdue = true }, "k-over k-plain", 2},
		{"overdue in field", func(q *store.DeviceQuery) { q.Overdue, q.Group = true, "field" }, "k-over k-plain", 2},
		{"overdue patch", func(q *store.DeviceQuery) { q.Overdue, q.RuleID = true, "patch" }, "k-over", 1},
		{"overdue failing", func(q *store.DeviceQuery) { q.Overdue, q.Status = true, store.StatusFailing }, "k-over k-plain", 2},
		{"overdue by deadline", func(q *store.DeviceQuery) { q.Overdue, q.Sort = true, store.SortDeadline }, "k-plain k-over", 2},
		{"overdue by deadline, descending", func(q *store.DeviceQuery) { q.Overdue, q.Sort = true, "-"+store.SortDeadline }, "k-over k-plain", 2},
		{"overdue later", func(q *store.DeviceQuery) { q.Overdue, q.Now = true, at.Add(62*time.Hour) }, "k-left k-ok k-over k-plain", 4},
		{"by deadline", func(q *store.DeviceQuery) { q.Sort = store.SortDeadline }, "k-plain k-paused k-over k-ok k-left k-pass k-revoked", 7},
		{"by deadline, descending", func(q *store.DeviceQuery) { q.Sort = "-" + store.SortDeadline }, "k-revoked k-pass k-left k-ok k-over k-paused k-plain", 7},
		{"by failing since", func(q *store.DeviceQuery) { q.Sort = store.SortFailingSince }, "k-left k-paused k-plain k-ok k-over k-pass k-revoked", 7},
	} {
		q := base
		tc.edit(&q)
		p, err := s.ListDevices(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := ids(p); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if tc.total >= 0 && (p.Total != tc.total || !p.TotalExact) {
			t.Errorf("%s: total %d (exact %v), want %d", tc.name, p.Total, p.TotalExact, tc.total)
		}
		// Paged two at a time, the same order, and back.
		q.Limit = 2
		var paged []string
		for range 10 {
			pp, err := s.ListDevices(ctx, q)
			if err != nil {
				t.Fatalf("%s, paged: %v", tc.name, err)
			}
			if h := ids(pp); h != "" {
				paged = append(paged, h)
			}
			if pp.Next == "" {
				break
			}
			q.After = pp.Next
		}
		if got := strings.Join(paged, " "); got != tc.want {
			t.Errorf("%s, paged by 2: got %q, want %q", tc.name, got, tc.want)
		}
		q.After = ""
		checkBack(t, s, tc.name, q)
	}
	// The listings say the same as the filter.
	p, err := s.ListDevices(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"k-paused": false, "k-over": true, "k-left": false, "k-plain": true, "k-ok": false, "k-pass": false} {
		if got := p.Listing[id].Overdue; got != want {
			t.Errorf("listing of %s: overdue %v, want %v", id, got, want)
		}
	}
}
