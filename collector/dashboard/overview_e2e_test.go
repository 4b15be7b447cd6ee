package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// testClock is the collector's and the dashboard's clock: at start, the
// time the fleet first reported; Now lets it run on from the real time.
type testClock struct {
	mu  sync.Mutex
	at  time.Time
	set time.Time // when at was set, real time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at.Add(time.Since(c.set))
}

func (c *testClock) to(t time.Time) {
	c.mu.Lock()
	c.at, c.set = t, time.Now()
	c.mu.Unlock()
}

// agedFleet is a fleet of seven devices in three groups that first
// reported 3 days and 2 hours ago: field holds to the high-risk policy,
// hq and travel to the embedded baseline. Every device but lin-away
// reported again just now; lin-away is stale.
type agedFleet struct {
	*fleet
	clock *testClock
	t0    time.Time
}

func startAgedFleet(t *testing.T) *agedFleet {
	t.Helper()
	ctx := context.Background()
	t0 := time.Now().Add(-(3*24 + 2) * time.Hour)
	clock := &testClock{}
	clock.to(t0)
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.Now = clock.now
		cfg.Web = func(st store.Store) (http.Handler, error) {
			return dashboard.New(dashboard.Config{Store: st, StaleAfter: staleAfter, Logger: cfg.Logger, Now: clock.now, CacheFor: -1})
		}
	})
	f := &agedFleet{fleet: &fleet{c: c, st: c.Store().(store.Dashboard), base: "http://" + c.HTTPAddr, devices: map[string]string{}}, clock: clock, t0: t0}
	highRisk, err := os.ReadFile(filepath.Join("..", "..", "policies", "high-risk.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hr, err := policies.Parse("high-risk.yaml", highRisk)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetPolicy(ctx, store.GroupPolicy{Group: "field", Name: hr.Name, Version: hr.Version, Document: highRisk, UpdatedAt: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	devices := append(seed[:len(seed):len(seed)], struct{ host, group, bundle, platform, osName string }{"lin-away", "travel", "linux-plain-nft-empty", "linux", "Debian GNU/Linux"})
	certs := map[string]*wardv1grpc.AgentServiceClient{}
	facts := map[string]*wardv1.Facts{}
	for _, s := range devices {
		m, rec, err := source.OpenBundle(filepath.Join("..", "..", "agent", "testdata", "bundles", s.bundle))
		if err != nil {
			t.Fatal(err)
		}
		facts[s.host] = collect.All(ctx, rec, m.CreatedAt)
		id, cert := c.Enroll(ctx, c.Token(s.group, 1, time.Hour), &wardv1.DeviceInfo{
			Hostname: s.host, Platform: s.platform, OsName: s.osName, OsVersion: "1", Architecture: "amd64", AgentVersion: "test", MachineId: s.host,
		})
		cl := wardv1grpc.NewAgentServiceClient(c.Dial(&cert))
		certs[s.host] = &cl
		f.devices[s.host] = id
	}
	report := func(host string, seq uint64) {
		t.Helper()
		name, version := "baseline", int32(1)
		if slices.ContainsFunc(devices, func(s struct{ host, group, bundle, platform, osName string }) bool {
			return s.host == host && s.group == "field"
		}) {
			name, version = hr.Name, int32(hr.Version)
		}
		_, err := (*certs[host]).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
			Sequence: seq, CollectedAt: timestamppb.New(clock.now()), AgentVersion: "test", PolicyName: name, PolicyVersion: version, Facts: facts[host],
		}})
		if err != nil {
			t.Fatalf("report %s %d: %v", host, seq, err)
		}
	}
	for _, s := range devices {
		report(s.host, 1)
	}
	clock.to(time.Now())
	for _, s := range devices {
		if s.host != "lin-away" {
			report(s.host, 2)
		}
	}
	for _, u := range []struct{ name, role string }{{"amina", store.RoleAdmin}, {"victor", store.RoleViewer}} {
		hash, err := dashboard.HashPassword(u.name + "-correct-horse")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.CreateUser(ctx, store.User{Name: u.name, Role: u.role, Hash: hash, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// eval runs a script in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// tableRow is a failing-now row as the browser shows it.
type tableRow struct {
	Device, Rule, Host, Group, Severity, Since, SinceTitle, SinceISO, Deadline, DeadlineISO, Seen string
	Overdue                                                                                       bool
}

const readRows = `(sel) => [...document.querySelectorAll(sel + ' table.failing tbody tr')].map(tr => {
	const c = tr.querySelectorAll('td'), t = (i) => c[i].querySelector('time');
	return {Device: tr.dataset.device, Rule: tr.dataset.rule, Host: c[0].innerText.trim(), Group: c[1].innerText.trim(),
		Severity: c[3].innerText.trim(), Since: c[4].innerText.trim(), SinceTitle: t(4) ? t(4).title : '', SinceISO: t(4) ? t(4).dateTime : '',
		Deadline: c[5].innerText.trim(), DeadlineISO: t(5) ? t(5).dateTime : '', Seen: c[6].innerText.trim(), Overdue: tr.classList.contains('overdue')};
})`

func rowsOf(t *testing.T, ctx context.Context, section string) []tableRow {
	t.Helper()
	return eval[[]tableRow](t, ctx, "("+readRows+")("+fmt.Sprintf("%q", section)+")")
}

// wantFailing is what the store lists as failing now for the groups
// under policy p, as the overview asks it.
func wantFailing(t *testing.T, st store.Dashboard, p *policies.Policy, now time.Time, groups ...string) store.FailingPage {
	t.Helper()
	var rules []store.DeadlineRule
	for _, g := range groups {
		for _, r := range p.Rules {
			rules = append(rules, store.DeadlineRule{Group: g, RuleID: r.ID, Grace: r.Grace})
		}
	}
	fp, err := st.FailingNow(context.Background(), store.FailingQuery{Rules: rules, Now: now, Limit: 25})
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// noPageOverflow checks the page is no wider than the phone's screen.
func noPageOverflow(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		wide := eval[[]string](t, ctx, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.scroll, table')).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)`)
		t.Errorf("%s: page is %d px wide at 390 px; too wide: %v", what, w, wide)
	}
}

func TestOverviewInBrowser(t *testing.T) {
	ctx := browser(t)
	f := startAgedFleet(t)
	bg := context.Background()
	now := f.clock.now()
	baseline, err := policies.Embedded(server.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	hrDoc, _ := f.st.Policy(bg, "field")
	highRisk, err := policies.Parse("field", hrDoc.Document)
	if err != nil {
		t.Fatal(err)
	}
	// A waiver on one of win-bad's failing rules: left out, counted.
	rs, _ := f.st.RuleStates(bg, f.devices["win-bad"])
	waivedRule := ""
	for _, r := range rs {
		if r.Collector == store.Fail && waivedRule == "" {
			waivedRule = r.RuleID
		}
	}
	if waivedRule == "" {
		t.Fatal("win-bad fails no rule")
	}
	if err := f.st.CreateWaiver(bg, store.Waiver{ID: "wvr_test", DeviceID: f.devices["win-bad"], RuleID: waivedRule, Reason: "laptop being replaced", CreatedBy: "amina", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	for _, role := range []string{"victor", "amina"} {
		t.Run(role, func(t *testing.T) {
			ctx, cancel := chromedp.NewContext(ctx)
			defer cancel()
			run(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))
			signIn(t, ctx, f.base, role)
			now := f.clock.now()

			// Status cards are the store's counts; lin-away is stale.
			want, _ := f.st.FleetCounts(bg, now, staleAfter)
			if n := number(t, ctx, "#n-stale"); n != 1 || want.Stale != 1 {
				t.Errorf("stale card %d, store %d; want 1 (lin-away)", n, want.Stale)
			}
			if n := number(t, ctx, "#n-devices"); n != 7 {
				t.Errorf("devices card %d, want 7", n)
			}
			if s := text(t, ctx, "#stale-hint"); !strings.Contains(s, "3 hours") || strings.Contains(s, "3h0m0s") {
				t.Errorf("stale hint = %q, want the threshold as 3 hours", s)
			}
			if s := text(t, ctx, "#policies-apart"); !strings.Contains(s, "2 policies") {
				t.Errorf("policies note = %q", s)
			}

			// Each policy its own section, rows as the store lists them.
			overdue := 0
			for _, sec := range []struct {
				id     string
				p      *policies.Policy
				groups []string
			}{{"#policy-1", highRisk, []string{"field"}}, {"#policy-2", baseline, []string{"hq", "travel"}}} {
				head := text(t, ctx, sec.id+" h3")
				if !strings.Contains(head, fmt.Sprintf("Policy %s version %d", sec.p.Name, sec.p.Version)) {
					t.Errorf("%s heading = %q, want policy %s version %d", sec.id, head, sec.p.Name, sec.p.Version)
				}
				wf := wantFailing(t, f.st, sec.p, now, sec.groups...)
				overdue += wf.Overdue
				got := rowsOf(t, ctx, sec.id)
				if len(got) != len(wf.Rows) || len(got) == 0 {
					t.Fatalf("%s: %d rows, store lists %d", sec.id, len(got), len(wf.Rows))
				}
				for i, w := range wf.Rows {
					g := got[i]
					if g.Device != w.DeviceID || g.Rule != w.RuleID || g.Host != w.Hostname || g.Group != w.Group || g.Severity != w.Severity {
						t.Errorf("%s row %d = %+v, want %s %s %s %s %s", sec.id, i, g, w.DeviceID, w.RuleID, w.Hostname, w.Group, w.Severity)
					}
					if g.Device == f.devices["win-bad"] && g.Rule == waivedRule {
						t.Errorf("the waived rule is listed: %+v", g)
					}
					// Failing since in words, the absolute time on hover.
					if g.Since != "3 days" || g.SinceTitle != w.FailingSince.UTC().Format("2006-01-02 15:04 UTC") || g.SinceISO != w.FailingSince.UTC().Format(time.RFC3339) {
						t.Errorf("%s row %d failing since %q (title %q, %s), want \"3 days\" and %v", sec.id, i, g.Since, g.SinceTitle, g.SinceISO, w.FailingSince)
					}
					switch {
					case w.Deadline == nil:
						if !strings.Contains(g.Deadline, "no grace period") {
							t.Errorf("%s row %d deadline %q, want none", sec.id, i, g.Deadline)
						}
					case w.Overdue(now):
						if !g.Overdue || !strings.HasPrefix(g.Deadline, "overdue") || !strings.HasSuffix(g.Deadline, "ago") || g.DeadlineISO != w.Deadline.UTC().Format(time.RFC3339) {
							t.Errorf("%s row %d = %+v, want overdue since %v", sec.id, i, g, w.Deadline)
						}
					default:
						if g.Overdue || !strings.HasPrefix(g.Deadline, "in ") {
							t.Errorf("%s row %d deadline %q, want in the future (%v)", sec.id, i, g.Deadline, w.Deadline)
						}
					}
					if stale := strings.Contains(g.Seen, "stale"); stale != (g.Host == "lin-away") {
						t.Errorf("%s row %d last report %q: stale %v", sec.id, i, g.Seen, stale)
					}
				}
				// Overdue first.
				for i := 1; i < len(got); i++ {
					if got[i].Overdue && !got[i-1].Overdue {
						t.Errorf("%s: overdue row %d after a row not overdue", sec.id, i)
					}
				}
				// The bars: one per rule of the policy, with the store's counts.
				bars := eval[[]string](t, ctx, `[...document.querySelectorAll('`+sec.id+` svg.bars g.bar')].map(g => g.dataset.rule + '|' + g.querySelector('title').textContent)`)
				if len(bars) != len(sec.p.Rules) {
					t.Errorf("%s: %d bars, policy has %d rules", sec.id, len(bars), len(sec.p.Rules))
				}
				for _, r := range sec.p.Rules {
					n, o := 0, 0
					for _, c := range wf.Counts {
						if c.RuleID == r.ID {
							n, o = n+c.Failing, o+c.Overdue
						}
					}
					want := fmt.Sprintf("%s|%s (%s): %d failing, %d overdue", r.ID, r.ID, r.Title, n, o)
					if !slices.Contains(bars, want) {
						t.Errorf("%s: no bar %q in %v", sec.id, want, bars)
					}
				}
				if ticks := eval[[]string](t, ctx, `[...document.querySelectorAll('`+sec.id+` svg.bars .x-tick')].map(e => e.textContent)`); len(ticks) < 2 || ticks[0] != "0" {
					t.Errorf("%s: bar chart axis ticks %v", sec.id, ticks)
				}
			}
			if n := number(t, ctx, "#n-overdue"); n != overdue || n == 0 {
				t.Errorf("overdue card %d, store %d", n, overdue)
			}

			// The trend starts at the first data, with dated axes and the stale band.
			days := eval[[]string](t, ctx, `[...document.querySelectorAll('#trend g.day')].map(g => g.dataset.day)`)
			first, today := f.t0.UTC().Format("2006-01-02"), now.UTC().Format("2006-01-02")
			if len(days) < 4 || days[0] != first || days[len(days)-1] != today {
				t.Errorf("trend days %v, want %s to %s", days, first, today)
			}
			xt := eval[[]string](t, ctx, `[...document.querySelectorAll('#trend .x-tick')].map(e => e.textContent)`)
			if len(xt) < 2 || xt[0] != f.t0.UTC().Format("2 Jan") || xt[len(xt)-1] != now.UTC().Format("2 Jan") {
				t.Errorf("trend date ticks %v", xt)
			}
			if yt := eval[[]string](t, ctx, `[...document.querySelectorAll('#trend .y-tick')].map(e => e.textContent)`); len(yt) < 2 || yt[0] != "0" {
				t.Errorf("trend value ticks %v", yt)
			}
			if s := eval[string](t, ctx, `document.querySelector('#stale-band title').textContent`); !strings.HasPrefix(s, "stale now: 1 devices") {
				t.Errorf("stale band = %q", s)
			}
			if s := text(t, ctx, "#trend-note"); !strings.Contains(s, "first data is from "+first) {
				t.Errorf("trend note = %q", s)
			}
			if n := eval[int](t, ctx, `document.querySelectorAll('#trend polyline').length`); n != 4 {
				t.Errorf("%d trend lines, want 4", n)
			}
			if n := eval[int](t, ctx, `document.scripts.length`); n != 0 {
				t.Errorf("the overview has %d scripts, want none", n)
			}
			screenshot(t, ctx, "overview-desktop")

			// One group alone.
			run(t, ctx, "group travel", chromedp.Navigate(f.base+"/?group=travel"), chromedp.WaitVisible(chromedp.CSS("#counts")))
			for _, r := range rowsOf(t, ctx, "#policy-1") {
				if r.Group != "travel" {
					t.Errorf("group travel shows a row of %s", r.Group)
				}
			}

			// The device page: failing first, then unknown, waived, passing.
			run(t, ctx, "open lin-bad", chromedp.Navigate(f.base+"/devices/"+f.devices["lin-bad"]), chromedp.WaitVisible(chromedp.CSS("#rules")))
			statuses := eval[[]string](t, ctx, `[...document.querySelectorAll('#rules tbody td.status')].map(e => e.firstChild.textContent.trim())`)
			rank := map[string]int{"FAIL": 0, "UNKNOWN": 1, "WAIVED": 2, "PASS": 3}
			if len(statuses) == 0 || statuses[0] != "FAIL" || !slices.IsSortedFunc(statuses, func(a, b string) int { return rank[a] - rank[b] }) {
				t.Errorf("lin-bad rule order %v, want FAIL, then UNKNOWN, WAIVED, PASS", statuses)
			}
			tl := strings.ToLower(text(t, ctx, "#timeline"))
			if !strings.Contains(tl, "enrolment") || !strings.Contains(tl, "verdict") {
				t.Errorf("timeline lacks the enrolment or verdicts:\n%s", tl)
			}
			waiveLinks := eval[int](t, ctx, `document.querySelectorAll('#rules a[href^="/waivers?device="]').length`)
			if (role == "amina") != (waiveLinks > 0) {
				t.Errorf("%s sees %d waive links", role, waiveLinks)
			}
			screenshot(t, ctx, "device-desktop")

			// Phone width: no page overflows 390 px.
			run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
			pages := []string{"/", "/?days=90", "/?group=hq", "/devices/no-such-device", "/devices", "/devices/" + f.devices["lin-bad"], "/devices/" + f.devices["win-bad"], "/policies", "/waivers"}
			if role == "amina" {
				pages = append(pages, "/tokens", "/audit")
			}
			for _, p := range pages {
				run(t, ctx, "open "+p, chromedp.Navigate(f.base+p), chromedp.WaitVisible(chromedp.CSS("main")))
				noPageOverflow(t, ctx, p)
			}
			run(t, ctx, "overview", chromedp.Navigate(f.base+"/"), chromedp.WaitVisible(chromedp.CSS("#counts")))
			screenshot(t, ctx, "overview-phone")
			run(t, ctx, "device", chromedp.Navigate(f.base+"/devices/"+f.devices["lin-bad"]), chromedp.WaitVisible(chromedp.CSS("#rules")))
			screenshot(t, ctx, "device-phone")
		})
	}
}

// A stale device whose group changes policy: its FAIL rows show a
// deadline under the new policy's grace, or say why there is none; the
// timeline shows the change, the waiver and the renewal.
func TestStaleDeviceAfterPolicyChange(t *testing.T) {
	ctx := browser(t)
	f := startAgedFleet(t)
	bg := context.Background()
	id := f.devices["lin-away"]
	signIn(t, ctx, f.base, "amina")
	hr, _ := os.ReadFile(filepath.Join("..", "..", "policies", "high-risk.yaml"))
	run(t, ctx, "apply high-risk to travel",
		chromedp.Navigate(f.base+"/policies"),
		chromedp.SetValue(chromedp.CSS("#p-group"), "travel"),
		chromedp.SetValue(chromedp.CSS("#p-document"), string(hr)),
		chromedp.Click(chromedp.CSS("#p-apply")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	now := f.clock.now()
	dev, _ := f.st.Device(bg, id)
	if _, err := f.st.RenewCertificate(bg, id, dev.CertSerial, func() (store.Issued, error) {
		return store.Issued{Serial: "feed01", NotAfter: now.AddDate(0, 3, 0), DER: []byte("renewed")}, nil
	}, now); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateWaiver(bg, store.Waiver{ID: "wvr_away", DeviceID: id, RuleID: "firewall-on", Reason: "travelling", CreatedBy: "amina", CreatedAt: now, ExpiresAt: now.Add(7 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "open lin-away", chromedp.Navigate(f.base+"/devices/"+id), chromedp.WaitVisible(chromedp.CSS("#rules")))
	if s := text(t, ctx, "#status"); !strings.HasPrefix(s, "stale") {
		t.Errorf("status = %q, want stale", s)
	}
	if s := text(t, ctx, "#policy-changed"); !strings.Contains(s, "baseline version 1") || !strings.Contains(s, "high-risk version 5") {
		t.Errorf("policy change note = %q", s)
	}
	p, _ := policies.Parse("hr", hr)
	grace := map[string]time.Duration{}
	for _, r := range p.Rules {
		grace[r.ID] = r.Grace
	}
	type cell struct{ Rule, Status, Deadline, ISO string }
	cells := eval[[]cell](t, ctx, `[...document.querySelectorAll('#rules tbody tr')].map(tr => ({Rule: tr.id.slice(5), Status: tr.querySelector('td.status').firstChild.textContent.trim(), Deadline: tr.querySelector('td.deadline').innerText.trim(), ISO: (tr.querySelector('td.deadline time') || {}).dateTime || ''}))`)
	states, _ := f.st.RuleStates(bg, id)
	since := map[string]time.Time{}
	for _, s := range states {
		if s.FailingSince != nil {
			since[s.RuleID] = *s.FailingSince
		}
	}
	fails, withDeadline, without := 0, 0, 0
	for _, c := range cells {
		if c.Status != "FAIL" {
			continue
		}
		fails++
		g, ok := grace[c.Rule]
		switch {
		case ok && g > 0:
			withDeadline++
			if want := since[c.Rule].Add(g).UTC().Format(time.RFC3339); c.ISO != want {
				t.Errorf("%s deadline %q (%s), want %s: failing since + high-risk's %s", c.Rule, c.Deadline, c.ISO, want, g)
			}
		case !ok:
			without++
			if c.Deadline != "none: policy high-risk version 5 has no rule "+c.Rule {
				t.Errorf("%s deadline %q, want why there is none", c.Rule, c.Deadline)
			}
		}
	}
	if fails == 0 || without == 0 {
		t.Errorf("lin-away: %d FAIL rows, %d with a deadline, %d without; want both kinds", fails, withDeadline, without)
	}
	tl := eval[[]string](t, ctx, `[...document.querySelectorAll('#timeline li')].map(li => li.className + ' ' + li.innerText)`)
	for _, want := range []string{"ev-policy policy just now: group travel policy set: high-risk version 5 (was baseline version 3) (by amina)", "ev-certificate", "ev-waiver", "ev-enrolment", "ev-verdict"} {
		if !slices.ContainsFunc(tl, func(s string) bool { return strings.HasPrefix(strings.ToLower(s), strings.ToLower(want)) }) {
			t.Errorf("timeline lacks %q:\n%s", want, strings.Join(tl, "\n"))
		}
	}
	screenshot(t, ctx, "stale-device-policy-changed")

	// A re-bind (the machine re-installed, re-enrolled with a re-bind
	// token) is on the device's timeline.
	plain, _, err := token.CreateRebind(bg, f.st, f.devices["win-ok"], time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := f.c.Enroll(bg, plain, &wardv1.DeviceInfo{Hostname: "win-ok", Platform: "windows", OsName: "Windows 11 Pro", OsVersion: "1", Architecture: "amd64", AgentVersion: "test", MachineId: "win-ok"}); id != f.devices["win-ok"] {
		t.Fatalf("re-bind enrolled %s, want %s", id, f.devices["win-ok"])
	}
	run(t, ctx, "open win-ok", chromedp.Navigate(f.base+"/devices/"+f.devices["win-ok"]), chromedp.WaitVisible(chromedp.CSS("#timeline")))
	if s := text(t, ctx, "#timeline li.ev-enrolment"); !strings.Contains(s, "re-bound: by re-bind token") {
		t.Errorf("newest enrolment entry = %q, want the re-bind", s)
	}
}

// On a new collector the trend is the days since the first report, with
// a note, never a flat line and a spike.
func TestTrendOnANewCollector(t *testing.T) {
	ctx := browser(t)
	f := startFleet(t)
	run(t, ctx, "sign-in page at phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(f.base+"/login"), chromedp.WaitVisible(chromedp.CSS("#login")))
	noPageOverflow(t, ctx, "/login")
	signIn(t, ctx, f.base, "victor")
	noPageOverflow(t, ctx, "/ on a new collector")
	today := time.Now().UTC()
	if days := eval[[]string](t, ctx, `[...document.querySelectorAll('#trend g.day')].map(g => g.dataset.day)`); !slices.Equal(days, []string{today.Format("2006-01-02")}) {
		t.Errorf("trend days %v, want today only", days)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#trend polyline').length`); n != 0 {
		t.Errorf("%d lines drawn from one day of data", n)
	}
	if s := text(t, ctx, "#trend-note"); !strings.Contains(s, "one day of data so far") {
		t.Errorf("trend note = %q", s)
	}
	if xt := eval[[]string](t, ctx, `[...document.querySelectorAll('#trend .x-tick')].map(e => e.textContent)`); !slices.Equal(xt, []string{today.Format("2 Jan")}) {
		t.Errorf("date ticks %v", xt)
	}
	total := eval[string](t, ctx, `document.querySelector('#trend g.day title').textContent`)
	c, _ := f.st.FleetCounts(context.Background(), time.Now(), staleAfter)
	if want := fmt.Sprintf("%s: %d compliant, %d failing, %d unknown", today.Format("2006-01-02"), c.Compliant, c.Failing, c.Unknown); total != want {
		t.Errorf("today's point %q, want %q", total, want)
	}
	screenshot(t, ctx, "overview-new-collector")
}

// Grace periods and the stale threshold read in days and hours, not as
// Go durations.
func TestDurationsInWords(t *testing.T) {
	f := startFleet(t)
	viewer := newClient(t, f.base)
	viewer.login("victor", "victor-correct-horse")
	_, page := viewer.do("GET", "/policies", nil)
	for _, want := range []string{"<td>3 days</td>", "<td>14 days</td>", "<td>1 day</td>", "<td>30 days</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("policies page lacks %s", want)
		}
	}
	_, home := viewer.do("GET", "/", nil)
	for _, p := range []string{page, home} {
		if m := regexp.MustCompile(`\d+h\d+m\d+s`).FindString(p); m != "" {
			t.Errorf("a Go duration on a page: %s", m)
		}
	}
	if !strings.Contains(home, "no report for more than 3 hours") {
		t.Error("the overview does not give the stale threshold in hours")
	}
}
