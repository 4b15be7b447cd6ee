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

// testAggregates drives a randomised fleet through the store's write
// paths (enrolment, reports in and out of order, redeliveries,
// revocation, retirement, re-binding) and, at checkpoints, compares
// every fleet view with the same answer computed by brute force from
// Devices, RuleStates and Transitions, at several query times and
// staleness thresholds. The seeds are fixed, so a failure reproduces.
func testAggregates(t *testing.T, s store.Dashboard) {
	runAggregates(t, s, 1)
}

type simDevice struct {
	id, group, serial string
	rules             []string
	seq               uint64
	gaps              []uint64 // sequences skipped, sent later
	last              store.Report
	revoked           bool
}

var (
	simGroups = []string{"field", "hq", "lab"}
	simRules  = []string{"disk", "firewall", "lock", "os", "patch", "usb"}
	simOS     = []string{"Debian", "macOS", "Windows"}
)

func simTitle(rule string) string { return "Rule " + rule }

func runAggregates(t *testing.T, s store.Dashboard, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	now := t0
	for _, g := range simGroups {
		if err := s.CreateToken(ctx, store.Token{ID: "tk-" + g, Hash: hash("secret-" + g), Group: g, Uses: 1000, UsesLeft: 1000, CreatedAt: t0, ExpiresAt: t0.AddDate(1, 0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	sign := func(id string) (store.Issued, error) {
		serials++
		return store.Issued{Serial: fmt.Sprintf("s%x", 1000+serials), NotAfter: now.Add(time.Duration(1+rng.IntN(40*24)) * time.Hour), DER: []byte(id)}, nil
	}
	hostname := func() string {
		// Mixed case and repeats, to test NOCASE order and the id tie-break.
		h := []byte(fmt.Sprintf("host-%02d", rng.IntN(40)))
		for i := range h {
			if rng.IntN(3) == 0 && h[i] >= 'a' && h[i] <= 'z' {
				h[i] -= 'a' - 'A'
			}
		}
		return string(h)
	}
	var devs []*simDevice
	live := func() []*simDevice {
		var out []*simDevice
		for _, d := range devs {
			if !d.revoked {
				out = append(out, d)
			}
		}
		return out
	}
	enrol := func() {
		g := simGroups[rng.IntN(len(simGroups))]
		id := fmt.Sprintf("dev-%03d", len(devs))
		e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("secret-" + g), Now: now, NewID: id,
			Info: store.DeviceInfo{Hostname: hostname(), Platform: "linux", OSName: simOS[rng.IntN(len(simOS))], OSVersion: "1"}}, sign)
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		d := &simDevice{id: id, group: g, serial: e.Issued.Serial}
		for _, r := range simRules {
			if rng.IntN(3) > 0 {
				d.rules = append(d.rules, r)
			}
		}
		devs = append(devs, d)
	}
	verdicts := []store.Verdict{store.Pass, store.Pass, store.Pass, store.Fail, store.Unknown}
	sendReport := func(d *simDevice) {
		d.seq++
		if rng.IntN(8) == 0 {
			d.gaps = append(d.gaps, d.seq) // arrives later
			d.seq++
		}
		r := store.Report{DeviceID: d.id, Sequence: d.seq, ReceivedAt: now, CollectedAt: now.Add(-time.Second), AgentVersion: "1",
			PolicyName: "p", PolicyVersion: 1, Facts: []byte{0x0a, 0x00}, ContentHash: hash(fmt.Sprint(d.id, d.seq))}
		for i, rule := range d.rules {
			v := verdicts[rng.IntN(len(verdicts))]
			if len(d.last.Results) > i && rng.IntN(3) > 0 {
				v = d.last.Results[i].Collector // verdicts mostly stay
			}
			r.Results = append(r.Results, store.RuleResult{RuleID: rule, Title: simTitle(rule), Family: "f", Severity: "high", Collector: v, Agent: v, Observed: "o", Expected: "e"})
		}
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatalf("SaveReport: %v", err)
		}
		d.last = r
	}
	check := func(step int) {
		t.Helper()
		for _, at := range []time.Duration{0, 40 * time.Minute, 5 * time.Hour, 30 * time.Hour} {
			for _, stale := range []time.Duration{30 * time.Minute, 95*time.Minute + 17*time.Second, 6 * time.Hour, 3 * 24 * time.Hour} {
				checkViews(t, s, rng, fmt.Sprintf("step %d, now+%s, stale after %s", step, at, stale), now.Add(at), stale)
			}
		}
		// A device's seen time exactly at the cut: not stale yet.
		ds, err := s.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		edge := seenOf(ds[rng.IntN(len(ds))])
		checkViews(t, s, rng, fmt.Sprintf("step %d, at the cut", step), edge.Add(2*time.Hour), 2*time.Hour)
		checkTrend(t, s, fmt.Sprintf("step %d", step), now)
	}
	for range 8 {
		enrol()
	}
	for step := range 240 {
		now = now.Add(time.Duration(1+rng.IntN(100))*time.Minute + time.Duration(rng.IntN(60_000))*time.Millisecond)
		ld := live()
		switch k := rng.IntN(100); {
		case k < 10 || len(ld) == 0:
			enrol()
		case k < 75:
			sendReport(ld[rng.IntN(len(ld))])
		case k < 82:
			// A report skipped earlier arrives: history, and the device
			// was seen.
			d := ld[rng.IntN(len(ld))]
			if len(d.gaps) == 0 {
				sendReport(d)
				break
			}
			r := d.last
			r.Sequence, r.ReceivedAt, r.CollectedAt, r.ContentHash = d.gaps[0], now, now.Add(-time.Second), hash(fmt.Sprint(d.id, d.gaps[0]))
			d.gaps = d.gaps[1:]
			if _, err := s.SaveReport(ctx, r); err != nil {
				t.Fatalf("late SaveReport: %v", err)
			}
		case k < 86:
			// A redelivery changes nothing.
			d := ld[rng.IntN(len(ld))]
			if d.seq > 0 {
				if _, err := s.SaveReport(ctx, d.last); err != nil {
					t.Fatalf("redelivery: %v", err)
				}
			}
		case k < 90:
			d := ld[rng.IntN(len(ld))]
			g := d.group
			e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("secret-" + g), Now: now, NewID: fmt.Sprintf("unused-%d", step),
				Info: store.DeviceInfo{Hostname: hostname(), Platform: "linux", OSName: simOS[rng.IntN(len(simOS))], OSVersion: "2"}, ProvenDevice: d.id, ProvenSerial: d.serial}, sign)
			if err != nil || !e.Rebound {
				t.Fatalf("re-bind %s: %+v, %v", d.id, e, err)
			}
			d.serial = e.Issued.Serial
		case k < 95:
			d := ld[rng.IntN(len(ld))]
			if err := s.RevokeDevice(ctx, d.id, now); err != nil {
				t.Fatal(err)
			}
			d.revoked = true
		default:
			d := ld[rng.IntN(len(ld))]
			if err := s.RetireDevice(ctx, d.id, now); err != nil {
				t.Fatal(err)
			}
			d.revoked = true
		}
		if step%40 == 39 {
			check(step)
		}
	}
}

// truth is the brute-force view of the fleet.
type truth struct {
	devs   []store.Device
	states map[string][]store.RuleState
}

func loadTruth(t *testing.T, s store.Dashboard) truth {
	t.Helper()
	ctx := context.Background()
	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := truth{devs: ds, states: map[string][]store.RuleState{}}
	for _, d := range ds {
		if tr.states[d.ID], err = s.RuleStates(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func (tr truth) failing(id, rule string) (store.RuleState, bool) {
	for _, st := range tr.states[id] {
		if st.RuleID == rule && st.Collector == store.Fail {
			return st, true
		}
	}
	return store.RuleState{}, false
}

func seenOf(d store.Device) time.Time {
	if d.LastSeen != nil {
		return *d.LastSeen
	}
	return d.EnrolledAt
}

// lessDevice orders devices as ListDevices sorts them.
func lessDevice(sortKey string) func(a, b store.Device) int {
	key, desc := strings.TrimPrefix(sortKey, "-"), strings.HasPrefix(sortKey, "-")
	dir := func(c int) int {
		if desc {
			return -c
		}
		return c
	}
	host := func(a, b store.Device) int {
		return cmp.Compare(strings.ToLower(a.Hostname), strings.ToLower(b.Hostname))
	}
	return func(a, b store.Device) int {
		switch key {
		case "", store.SortHostname:
			return dir(cmp.Or(host(a, b), cmp.Compare(a.ID, b.ID)))
		case store.SortLastSeen:
			return dir(cmp.Or(seenOf(a).Compare(seenOf(b)), cmp.Compare(a.ID, b.ID)))
		case store.SortGroup:
			return cmp.Or(dir(cmp.Compare(a.Group, b.Group)), host(a, b), cmp.Compare(a.ID, b.ID))
		case store.SortFail:
			return cmp.Or(dir(cmp.Compare(a.Fail, b.Fail)), host(a, b), cmp.Compare(a.ID, b.ID))
		}
		panic("unknown sort " + sortKey)
	}
}

func checkViews(t *testing.T, s store.Dashboard, rng *rand.Rand, when string, now time.Time, staleAfter time.Duration) {
	t.Helper()
	ctx := context.Background()
	tr := loadTruth(t, s)

	var want store.FleetCounts
	fail := map[string]int{}
	groups := map[string]bool{}
	for _, d := range tr.devs {
		groups[d.Group] = true
		st := d.Status(now, staleAfter)
		switch st {
		case store.StatusCompliant:
			want.Compliant++
		case store.StatusFailing:
			want.Failing++
		case store.StatusUnknown:
			want.Unknown++
		case store.StatusStale:
			want.Stale++
		case store.StatusRevoked:
			want.Revoked++
		}
		if st != store.StatusRevoked && st != store.StatusStale {
			for _, rs := range tr.states[d.ID] {
				if rs.Collector == store.Fail {
					fail[rs.RuleID]++
				}
			}
		}
	}
	want.Devices = len(tr.devs) - want.Revoked
	got, err := s.FleetCounts(ctx, now, staleAfter)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s: FleetCounts = %+v, want %+v", when, got, want)
	}

	var wantRules []store.RuleCount
	for rule, n := range fail {
		wantRules = append(wantRules, store.RuleCount{RuleID: rule, Title: simTitle(rule), Devices: n})
	}
	slices.SortFunc(wantRules, func(a, b store.RuleCount) int {
		return cmp.Or(cmp.Compare(b.Devices, a.Devices), cmp.Compare(a.RuleID, b.RuleID))
	})
	rc, err := s.FailingByRule(ctx, now, staleAfter)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc, wantRules) {
		t.Fatalf("%s: FailingByRule = %+v, want %+v", when, rc, wantRules)
	}

	gs, err := s.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := make([]string, 0, len(groups))
	for g := range groups {
		wantGroups = append(wantGroups, g)
	}
	slices.Sort(wantGroups)
	if !slices.Equal(gs, wantGroups) {
		t.Fatalf("%s: Groups = %v, want %v", when, gs, wantGroups)
	}

	// Past deadline, for a random set of (group, rule, grace).
	var rules []store.DeadlineRule
	for _, g := range simGroups {
		for _, r := range simRules {
			if rng.IntN(2) == 0 {
				rules = append(rules, store.DeadlineRule{Group: g, RuleID: r, Grace: []time.Duration{0, 30 * time.Minute, 7 * time.Hour, 2 * 24 * time.Hour}[rng.IntN(4)]})
			}
		}
	}
	var wantOver []store.Overdue
	for _, r := range rules {
		for _, d := range tr.devs {
			st, ok := tr.failing(d.ID, r.RuleID)
			if d.Group != r.Group || d.Revoked() || !ok || st.FailingSince == nil || st.FailingSince.After(now.Add(-r.Grace)) {
				continue
			}
			wantOver = append(wantOver, store.Overdue{DeviceID: d.ID, Hostname: d.Hostname, Group: d.Group, RuleID: r.RuleID, Title: st.Title,
				FailingSince: *st.FailingSince, Deadline: st.FailingSince.Add(r.Grace)})
		}
	}
	slices.SortFunc(wantOver, func(a, b store.Overdue) int {
		return cmp.Or(a.FailingSince.Compare(b.FailingSince), cmp.Compare(a.DeviceID, b.DeviceID), cmp.Compare(a.RuleID, b.RuleID))
	})
	const limit = 7
	od, total, err := s.PastDeadline(ctx, rules, now, limit)
	if err != nil {
		t.Fatal(err)
	}
	if total != len(wantOver) || len(od) != min(limit, len(wantOver)) {
		t.Fatalf("%s: PastDeadline: %d rows, total %d; want %d, total %d", when, len(od), total, min(limit, len(wantOver)), len(wantOver))
	}
	for i := range od {
		w, g := wantOver[i], od[i]
		// Rows with the same time and device may come in either rule order.
		if !g.FailingSince.Equal(w.FailingSince) || g.DeviceID != w.DeviceID {
			t.Fatalf("%s: PastDeadline[%d] = %+v, want %+v", when, i, g, w)
		}
		if _, ok := tr.failing(g.DeviceID, g.RuleID); !ok || g.Hostname != w.Hostname || g.Title != simTitle(g.RuleID) || !g.Deadline.After(g.FailingSince.Add(-time.Nanosecond)) {
			t.Fatalf("%s: PastDeadline[%d] = %+v", when, i, g)
		}
	}

	// Device lists: a few random filter sets, every sort, paged by cursor.
	for range 4 {
		q := store.DeviceQuery{Now: now, StaleAfter: staleAfter, Limit: 1 + rng.IntN(9)}
		statuses := []store.DeviceStatus{"", store.StatusCompliant, store.StatusFailing, store.StatusUnknown, store.StatusStale, store.StatusRevoked}
		q.Status = statuses[rng.IntN(len(statuses))]
		if rng.IntN(3) == 0 {
			q.Group = simGroups[rng.IntN(len(simGroups))]
		}
		if rng.IntN(3) == 0 {
			q.RuleID = simRules[rng.IntN(len(simRules))]
		}
		if rng.IntN(4) == 0 {
			q.OS = simOS[rng.IntN(len(simOS))]
		}
		if rng.IntN(5) == 0 {
			q.Search = []string{"HOST-0", "t-1", "st-3"}[rng.IntN(3)]
		}
		q.CertExpiring = rng.IntN(6) == 0
		var match []store.Device
		for _, d := range tr.devs {
			_, failsRule := tr.failing(d.ID, q.RuleID)
			switch {
			case q.Status != "" && d.Status(now, staleAfter) != q.Status,
				q.Group != "" && d.Group != q.Group,
				q.RuleID != "" && (!failsRule || d.Revoked()),
				q.OS != "" && d.OSName != q.OS,
				q.Search != "" && !strings.Contains(strings.ToLower(d.Hostname), strings.ToLower(q.Search)),
				q.CertExpiring && (d.Revoked() || d.CertNotAfter.After(now.Add(store.CertWarning))):
				continue
			}
			match = append(match, d)
		}
		for _, sortKey := range []string{"", store.SortHostname, "-" + store.SortHostname, store.SortLastSeen, "-" + store.SortLastSeen,
			store.SortGroup, "-" + store.SortGroup, store.SortFail, "-" + store.SortFail} {
			q.Sort = sortKey
			slices.SortFunc(match, lessDevice(sortKey))
			checkList(t, s, tr, fmt.Sprintf("%s: ListDevices(%+v)", when, q), q, match)
		}
	}
}

// checkList pages through a query by cursor and compares every page, the
// total and the Offset path with the brute-force match.
func checkList(t *testing.T, s store.Dashboard, tr truth, what string, q store.DeviceQuery, match []store.Device) {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for pages := 0; ; pages++ {
		p, err := s.ListDevices(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if p.TotalExact && p.Total != len(match) || !p.TotalExact && (p.Total > len(match) || p.Total > store.DeviceCountBound || len(match) < store.DeviceCountBound && len(tr.devs) < 20_000) {
			t.Fatalf("%s: total %d (exact %v), want %d", what, p.Total, p.TotalExact, len(match))
		}
		if len(p.Devices) > q.Limit || (p.Next != "" && len(p.Devices) != q.Limit) {
			t.Fatalf("%s: page of %d with limit %d, next %q", what, len(p.Devices), q.Limit, p.Next)
		}
		for _, d := range p.Devices {
			ids = append(ids, d.ID)
		}
		if p.Next == "" || pages > len(match) {
			break
		}
		q.After = p.Next
	}
	var want []string
	for _, d := range match {
		want = append(want, d.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("%s: pages give %v, want %v", what, ids, want)
	}
	if len(match) > q.Limit {
		q.After, q.Offset = "", q.Limit
		p, err := s.ListDevices(ctx, q)
		if err != nil || len(p.Devices) == 0 || p.Devices[0].ID != want[q.Limit] {
			t.Fatalf("%s: offset %d gives %+v, %v; want %s first", what, q.Offset, p.Devices, err, want[q.Limit])
		}
	}
}

// checkTrend replays every device's transitions up to the end of each
// day, a revoked device leaving at its revocation, and compares Trend.
func checkTrend(t *testing.T, s store.Dashboard, when string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const days = 8
	got, err := s.Trend(ctx, now, days)
	if err != nil || len(got) != days {
		t.Fatalf("%s: Trend = %+v, %v", when, got, err)
	}
	trs := map[string][]store.Transition{}
	for _, d := range ds {
		if trs[d.ID], err = s.Transitions(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range got {
		y, m, dd := now.UTC().Date()
		day := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i-days+1)
		end := day.AddDate(0, 0, 1)
		want := store.TrendPoint{Day: day}
		for _, d := range ds {
			if d.RevokedAt != nil && d.RevokedAt.Before(end) {
				continue
			}
			latest := map[string]store.Verdict{}
			for _, tr := range trs[d.ID] {
				if tr.At.Before(end) {
					latest[tr.RuleID] = tr.To
				}
			}
			if len(latest) == 0 {
				continue
			}
			var pass, fail, unknown int
			for _, v := range latest {
				switch v {
				case store.Pass:
					pass++
				case store.Fail:
					fail++
				case store.Unknown:
					unknown++
				}
			}
			switch {
			case fail > 0:
				want.Failing++
			case unknown > 0 || pass == 0:
				want.Unknown++
			default:
				want.Compliant++
			}
		}
		if !p.Day.Equal(want.Day) || p != want {
			t.Fatalf("%s: Trend[%d] = %+v, want %+v", when, i, p, want)
		}
	}
}
