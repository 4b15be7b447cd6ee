package dashboard_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// column is the text of one column of the device table, by row.
func column(t *testing.T, ctx context.Context, n int) []string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll('#devices tbody tr')).map(r => r.cells[%d].innerText.trim())`, n)))
	if err != nil {
		t.Fatalf("column %d: %v", n, err)
	}
	return s
}

func hostnames(p store.DevicePage) []string {
	out := []string{}
	for _, d := range p.Devices {
		out = append(out, d.Hostname)
	}
	return out
}

// TestDeviceListInBrowser drives the device list as a viewer: its
// columns, filters (seen, agent version, failing rule, overdue, policy),
// sorting by a header both ways, and paging by next and previous, each
// compared with the store's own answer; then at phone width.
func TestDeviceListInBrowser(t *testing.T) {
	ctx := browser(t)
	var ahead atomic.Int64 // how far the dashboard's clock is ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	f := startFleet(t, func(c *dashboard.Config) { c.Now = clock })
	bg := context.Background()
	// Two devices enrolled with a newer agent that have not reported yet.
	for _, h := range []string{"new-a", "new-b"} {
		f.c.Enroll(bg, f.c.Token("hq", 1, time.Hour), &wardv1.DeviceInfo{
			Hostname: h, Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "2.0.0", MachineId: h,
		})
	}
	all := len(seed) + 2
	signIn := func() {
		run(t, ctx, "sign in",
			chromedp.Navigate(f.base+"/"),
			chromedp.WaitVisible(chromedp.CSS("#login")),
			chromedp.SendKeys(chromedp.CSS("#user"), "victor"),
			chromedp.SendKeys(chromedp.CSS("#password"), "victor-correct-horse"),
			chromedp.Click(chromedp.CSS("#signin")),
			chromedp.WaitVisible(chromedp.CSS("#counts")),
		)
	}
	signIn()
	run(t, ctx, "device list", chromedp.Navigate(f.base+"/devices"), chromedp.WaitVisible(chromedp.CSS("#devices")))
	if n := number(t, ctx, "#total"); n != all {
		t.Fatalf("total %d, want %d", n, all)
	}
	head := text(t, ctx, "#devices thead")
	for _, c := range []string{"Hostname", "Group", "OS", "Agent", "Status", "Failing rules", "Failing since", "Next deadline", "Last seen", "Certificate"} {
		if !strings.Contains(head, c) {
			t.Errorf("no %q column in %q", c, head)
		}
	}
	// The columns of lin-bad are the store's: its failing rules by name,
	// failing since, next deadline, agent version.
	p, err := f.st.ListDevices(bg, store.DeviceQuery{Now: clock(), StaleAfter: staleAfter, Search: "lin-bad",
		DeviceFilters: store.DeviceFilters{Deadlines: deadlinesOf(t, f)}})
	if err != nil || len(p.Devices) != 1 {
		t.Fatalf("lin-bad: %+v, %v", p, err)
	}
	l := p.Listing[p.Devices[0].ID]
	if len(l.Failing) == 0 || l.NextDeadline == nil || l.FailingSince == nil {
		t.Fatalf("lin-bad's listing has no failing rules or deadline: %+v", l)
	}
	row := text(t, ctx, fmt.Sprintf(`#devices tbody tr:has(a[href="/devices/%s"])`, p.Devices[0].ID))
	for _, fr := range l.Failing {
		if !strings.Contains(row, fr.RuleID) {
			t.Errorf("lin-bad's row %q does not name failing rule %s", row, fr.RuleID)
		}
	}
	if l.FailingMore > 0 && !strings.Contains(row, fmt.Sprintf("and %d more", l.FailingMore)) {
		t.Errorf("lin-bad's row %q does not say and %d more", row, l.FailingMore)
	}
	hosts, agents, nexts := column(t, ctx, 0), column(t, ctx, 3), column(t, ctx, 7)
	for i, h := range hosts {
		if h == "lin-bad" && (agents[i] != "test" || !strings.HasPrefix(nexts[i], "in ")) {
			t.Errorf("lin-bad's agent %q, next deadline %q; want test, in ...", agents[i], nexts[i])
		}
	}
	screenshot(t, ctx, "devices-list")

	filter := func(what string, steps ...chromedp.Action[chromedp.Void]) []string {
		t.Helper()
		steps = append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(f.base + "/devices"), chromedp.WaitVisible(chromedp.CSS("#filters"))}, steps...)
		steps = append(steps, clickLoads("#apply", "#filtered"))
		run(t, ctx, what, steps...)
		return column(t, ctx, 0)
	}
	if got := filter("never reported", chromedp.SetValue(chromedp.CSS("#f-seen"), "never")); strings.Join(got, " ") != "new-a new-b" {
		t.Errorf("never reported: %v, want new-a new-b", got)
	}
	if got := filter("agent 2.0.0", chromedp.SendKeys(chromedp.CSS("#f-agent"), "2.0.0")); strings.Join(got, " ") != "new-a new-b" {
		t.Errorf("agent version 2.0.0: %v, want new-a new-b", got)
	}
	got := filter("failing disk-encrypted", chromedp.SetValue(chromedp.CSS("#f-rule"), "disk-encrypted"))
	p, err = f.st.ListDevices(bg, store.DeviceQuery{Now: clock(), StaleAfter: staleAfter, RuleID: "disk-encrypted"})
	if err != nil || len(p.Devices) == 0 || strings.Join(got, " ") != strings.Join(hostnames(p), " ") {
		t.Errorf("failing disk-encrypted: %v, store has %v (%v)", got, hostnames(p), err)
	}
	// Every seeded group uses the embedded policy: the filter by it
	// keeps everyone; nobody is overdue yet.
	if got := filter("policy baseline", chromedp.SetValue(chromedp.CSS("#f-policy"), "baseline")); len(got) != all {
		t.Errorf("policy baseline: %v, want all %d", got, all)
	}
	if got := filter("overdue now", chromedp.Click(chromedp.CSS("#f-overdue"))); len(got) != 0 {
		t.Errorf("overdue now: %v, want none", got)
	}
	// Four days on, the 72-hour grace of disk encryption has passed.
	ahead.Store(int64(4 * 24 * time.Hour))
	signIn() // the session ended with the clock's jump
	got = filter("overdue later", chromedp.Click(chromedp.CSS("#f-overdue")))
	p, err = f.st.ListDevices(bg, store.DeviceQuery{Now: clock(), StaleAfter: staleAfter,
		DeviceFilters: store.DeviceFilters{Overdue: true, Deadlines: deadlinesOf(t, f)}})
	if err != nil || len(p.Devices) == 0 || strings.Join(got, " ") != strings.Join(hostnames(p), " ") {
		t.Errorf("overdue after four days: %v, store has %v (%v)", got, hostnames(p), err)
	}
	for i, c := range column(t, ctx, 7) {
		if !strings.HasPrefix(c, "overdue") {
			t.Errorf("overdue row %d's next deadline is %q", i, c)
		}
	}
	screenshot(t, ctx, "devices-overdue")
	ahead.Store(0)

	// Sort by failing since with the header, then the other way round.
	run(t, ctx, "sort by failing since",
		chromedp.Navigate(f.base+"/devices"),
		clickLoads("#sort-failing_since", "th .arrow"),
	)
	q := store.DeviceQuery{Now: clock(), StaleAfter: staleAfter, Sort: store.SortFailingSince}
	if p, err = f.st.ListDevices(bg, q); err != nil {
		t.Fatal(err)
	}
	if got := column(t, ctx, 0); strings.Join(got, " ") != strings.Join(hostnames(p), " ") || text(t, ctx, "th .arrow") != "▲" {
		t.Errorf("by failing since: %v, store has %v", got, hostnames(p))
	}
	run(t, ctx, "sort by failing since, descending",
		clickLoads("#sort-failing_since", "th .arrow"),
	)
	q.Sort = "-" + store.SortFailingSince
	if p, err = f.st.ListDevices(bg, q); err != nil {
		t.Fatal(err)
	}
	desc := column(t, ctx, 0)
	if strings.Join(desc, " ") != strings.Join(hostnames(p), " ") {
		t.Errorf("by failing since, descending: %v, store has %v", desc, hostnames(p))
	}

	// Pages of three by hostname: next, next, then previous twice.
	q = store.DeviceQuery{Now: clock(), StaleAfter: staleAfter, Limit: all}
	if p, err = f.st.ListDevices(bg, q); err != nil {
		t.Fatal(err)
	}
	want := hostnames(p)
	run(t, ctx, "first page", chromedp.Navigate(f.base+"/devices?limit=3&sort=hostname"), chromedp.WaitVisible(chromedp.CSS("#next")))
	pages := [][]string{column(t, ctx, 0)}
	for range 2 {
		run(t, ctx, "next page", clickLoads("#next", "#prev"))
		pages = append(pages, column(t, ctx, 0))
	}
	var seen []string
	for _, pg := range pages {
		seen = append(seen, pg...)
	}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("pages of three: %v, want %v", pages, want)
	}
	screenshot(t, ctx, "devices-last-page")
	run(t, ctx, "previous page", clickLoads("#prev", "#next"))
	if got := column(t, ctx, 0); strings.Join(got, " ") != strings.Join(pages[1], " ") {
		t.Errorf("previous page: %v, want %v", got, pages[1])
	}
	run(t, ctx, "previous page again", clickLoads("#prev", "#next"))
	if got := column(t, ctx, 0); strings.Join(got, " ") != strings.Join(pages[0], " ") {
		t.Errorf("back on the first page: %v, want %v", got, pages[0])
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#prev').length`)); err != nil || n != 0 {
		t.Errorf("the first page has a previous link (%d, %v)", n, err)
	}

	// At phone width the page does not overflow; the table scrolls in
	// its own box.
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(f.base+"/devices"), chromedp.WaitVisible(chromedp.CSS("#devices")))
	w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil || w > 390 {
		t.Errorf("at 390 px the page is %d px wide (%v)", w, err)
	}
	screenshot(t, ctx, "devices-phone")
}

// deadlinesOf is what the dashboard gives the store: every group's
// rules with a grace (all groups use the embedded baseline here).
func deadlinesOf(t *testing.T, f *fleet) []store.DeadlineRule {
	t.Helper()
	groups, err := f.st.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policies.Embedded(server.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.DeadlineRule
	for _, g := range groups {
		for _, r := range pol.Rules {
			if r.Grace > 0 {
				out = append(out, store.DeadlineRule{Group: g, RuleID: r.ID, Grace: r.Grace})
			}
		}
	}
	return out
}
