package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// enrolAndReport enrols a device through the real enrolment path and,
// unless bundle is empty, reports the facts collected from that captured
// bundle through the real report path (mTLS).
func enrolAndReport(t *testing.T, c *servertest.Collector, host, group, bundle string, at time.Time) string {
	t.Helper()
	ctx := context.Background()
	id, cert := c.Enroll(ctx, c.Token(group, 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: host, Platform: "linux", OsName: "test", OsVersion: "1", Architecture: "amd64", AgentVersion: "test", MachineId: host,
	})
	if bundle == "" {
		return id
	}
	m, rec, err := source.OpenBundle(filepath.Join("..", "..", "agent", "testdata", "bundles", bundle))
	if err != nil {
		t.Fatal(err)
	}
	_, err = wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: 1, CollectedAt: timestamppb.New(at), AgentVersion: "test",
		PolicyName: "baseline", PolicyVersion: 1, Facts: collect.All(ctx, rec, m.CreatedAt),
	}})
	if err != nil {
		t.Fatalf("report %s: %v", host, err)
	}
	return id
}

// scrape reads /metrics' samples: "name{labels}" → value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %s %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestComplianceGauges seeds a fleet through the real enrolment and
// report path and checks every compliance gauge against the devices and
// rule states read one by one, the caps and the cache.
func TestComplianceGauges(t *testing.T) {
	ctx := context.Background()
	base := time.Now().UTC()
	clk := &clock{now: base.Add(-5 * time.Hour)} // retention_test.go
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.Now = clk.Now
		cfg.Interval = time.Hour // stale after 3h
		cfg.Gauges = server.GaugeOptions{TopGroups: 2, TopRules: 2, CacheFor: time.Minute}
	})
	st := c.Store().(store.Dashboard)
	// Group hq is held to high-risk, the others to the embedded baseline.
	doc, err := os.ReadFile(filepath.Join("..", "..", "policies", "high-risk.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hr, err := policies.Parse("high-risk.yaml", doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPolicy(ctx, store.GroupPolicy{Group: "hq", Name: hr.Name, Version: hr.Version, Document: doc, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	// Group field is held to the baseline (as a version 99) without its
	// OS rules, which
	// judge by the release feed: the bundles' OS releases have reached
	// their end of support by now, and a fleet with a compliant device
	// must have one whatever the day.
	bdoc, err := os.ReadFile(filepath.Join("..", "..", "policies", "baseline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Index(string(bdoc), "\n  - id: os-supported-windows\n")
	if cut < 0 {
		t.Fatal("baseline.yaml has no rule os-supported-windows")
	}
	fieldDoc := []byte(regexp.MustCompile(`(?m)^version: .*$`).ReplaceAllString(string(bdoc[:cut+1]), "version: 99"))
	fp, err := policies.Parse("baseline-no-os.yaml", fieldDoc)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPolicy(ctx, store.GroupPolicy{Group: "field", Name: fp.Name, Version: fp.Version, Document: fieldDoc, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	enrolAndReport(t, c, "lin-stale", "remote", "linux-plain-nft-empty", clk.Now())
	clk.Set(base)
	for _, d := range []struct{ host, group, bundle string }{
		{"win-ok", "field", "windows-compliant"},
		{"win-bad", "field", "windows-bitlocker-suspended-firewall-public-off"},
		{"mac-bad", "hq", "darwin-encrypting-firewall-off-updates-pending"},
		{"lin-ok", "hq", "linux-luks2-nft-drop"},
		{"lin-unknown", "hq", "linux-overlay-unknown"},
		{"silent", "hq", ""},
	} {
		enrolAndReport(t, c, d.host, d.group, d.bundle, base)
	}
	revoked := enrolAndReport(t, c, "mac-revoked", "field", "darwin-filevault-on-compliant", base)
	if err := st.RevokeDevice(ctx, revoked, base); err != nil {
		t.Fatal(err)
	}

	got := scrape(t, c.HTTPAddr)
	want := truth(t, st, base, 3*time.Hour, 2, 2)
	if want[`ward_fleet_devices{status="revoked"}`] != 1 || want[`ward_fleet_devices{status="stale"}`] != 1 ||
		want["ward_fleet_devices_never_reported"] != 1 || want[`ward_fleet_devices{status="failing"}`] < 2 || want[`ward_fleet_devices{status="compliant"}`] < 1 {
		t.Fatalf("the seeded fleet is not the one this test is about: %v", want)
	}
	compare(t, "first scrape", got, want)
	hq := 0.0
	for _, s := range []string{"compliant", "failing", "unknown", "stale", "revoked"} {
		hq += got[`ward_fleet_policy_devices{policy="high-risk",status="`+s+`"}`]
	}
	if hq != 4 {
		t.Errorf("hq's four devices are not under high-risk (%v): %v", hq, got)
	}
	if got[`ward_fleet_rule_failing_devices{rule="(other)"}`] < 1 {
		t.Errorf("the third failing rule is not summed under (other): %v", got)
	}
	if got[`ward_fleet_group_devices{group="(other)",status="stale"}`] != 1 {
		t.Errorf("group remote (the smallest, beyond the top 2) is not under (other): %v", got)
	}

	// Cached: a new device does not show within CacheFor…
	enrolAndReport(t, c, "lin-new", "hq", "linux-luks2-nft-drop", base)
	if again := scrape(t, c.HTTPAddr); again[`ward_fleet_group_devices{group="hq",status="compliant"}`] != got[`ward_fleet_group_devices{group="hq",status="compliant"}`] {
		t.Errorf("gauges recomputed within CacheFor")
	}
	// …and does after it. A month on every device is stale and every
	// failing rule with a grace is overdue.
	later := base.Add(30 * 24 * time.Hour)
	clk.Set(later)
	got = scrape(t, c.HTTPAddr)
	want = truth(t, st, later, 3*time.Hour, 2, 2)
	if want["ward_fleet_overdue"] < 2 || want[`ward_fleet_devices{status="stale"}`] != 8 {
		t.Fatalf("a month on: %v", want)
	}
	compare(t, "a month on", got, want)
}

// compare checks that every compliance series of want is in got with
// its value, and that got has no other.
func compare(t *testing.T, when string, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: %s = %v (present %v), want %v", when, k, g, ok, v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "ward_fleet_") && !strings.HasPrefix(k, "ward_fleet_gauges_computed") {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: unexpected series %s = %v", when, k, got[k])
			}
		}
	}
}

// truth computes the gauges from the devices and their rule states read
// one by one (no aggregate), with the baseline's graces.
func truth(t *testing.T, st store.Dashboard, now time.Time, staleAfter time.Duration, topGroups, topRules int) map[string]float64 {
	t.Helper()
	ctx := context.Background()
	pol, err := policies.Embedded(server.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	policyOf := func(group string) *policies.Policy {
		gp, err := st.Policy(ctx, group)
		if err != nil {
			return pol
		}
		p, err := policies.Parse("group "+group, gp.Document)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	graceOf := func(group, rule string) time.Duration {
		for _, r := range policyOf(group).Rules {
			if r.ID == rule {
				return r.Grace
			}
		}
		return 0
	}
	devs, err := st.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	statuses := []store.DeviceStatus{store.StatusCompliant, store.StatusFailing, store.StatusUnknown, store.StatusStale, store.StatusRevoked}
	for _, s := range statuses {
		out[fmt.Sprintf("ward_fleet_devices{status=%q}", s)] = 0
	}
	groups := map[string]map[store.DeviceStatus]int{}
	size := map[string]int{}
	rules := map[string]int{}
	overdue, never := 0, 0
	for _, d := range devs {
		s := d.Status(now, staleAfter)
		out[fmt.Sprintf("ward_fleet_devices{status=%q}", s)]++
		if groups[d.Group] == nil {
			groups[d.Group] = map[store.DeviceStatus]int{}
		}
		groups[d.Group][s]++
		size[d.Group]++
		if d.Revoked() {
			continue
		}
		rs, err := st.RuleStates(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			never++
		}
		for _, r := range rs {
			if r.Collector != store.Fail {
				continue
			}
			if s != store.StatusStale {
				rules[r.RuleID]++
			}
			if g := graceOf(d.Group, r.RuleID); g > 0 && r.FailingSince != nil && !r.FailingSince.Add(g).After(now) {
				overdue++
			}
		}
	}
	out["ward_fleet_devices_never_reported"] = float64(never)
	out["ward_fleet_overdue"] = float64(overdue)
	type kv struct {
		k string
		n int
	}
	var rs []kv
	for k, n := range rules {
		rs = append(rs, kv{k, n})
	}
	sortKV := func(s []kv) {
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j].n > s[i].n || (s[j].n == s[i].n && s[j].k < s[i].k) {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
	}
	sortKV(rs)
	other := 0
	for i, r := range rs {
		if i < topRules {
			out[fmt.Sprintf("ward_fleet_rule_failing_devices{rule=%q}", r.k)] = float64(r.n)
		} else {
			other += r.n
		}
	}
	if len(rs) > topRules {
		out[fmt.Sprintf("ward_fleet_rule_failing_devices{rule=%q}", server.OtherLabel)] = float64(other)
	}
	var gs []kv
	for g, n := range size {
		gs = append(gs, kv{g, n})
	}
	sortKV(gs)
	for i, g := range gs {
		label := g.k
		if i >= topGroups {
			label = server.OtherLabel
		}
		for _, s := range statuses {
			out[fmt.Sprintf("ward_fleet_group_devices{group=%q,status=%q}", label, s)] += float64(groups[g.k][s])
			out[fmt.Sprintf("ward_fleet_policy_devices{policy=%q,status=%q}", policyOf(g.k).Name, s)] += float64(groups[g.k][s])
		}
	}
	return out
}
