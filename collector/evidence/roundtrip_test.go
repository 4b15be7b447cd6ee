package evidence_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/agent/service"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/token"
	ev "github.com/wardhq/ward/evidence"
)

// simClock is the one clock agent and collector share in the round trip.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *simClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// switchable is a replayed machine whose recording the test changes
// between rounds (the disk was encrypted, then it was not).
type switchable struct{ check.Source }

func replay(t *testing.T, name string) check.Source {
	t.Helper()
	_, rec, err := source.OpenBundle(filepath.Join("..", "..", "agent", "testdata", "bundles", name))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestRoundTrip is the round trip with real parts: a real agent
// (service, sealed outbox, enrolment, renewal, re-bind) reports over
// mTLS to a real collector (SQLite), which exports the evidence that
// ward-verify's checks (evidence.Verify) accept without the collector.
//
// Day 0–2 the disk is encrypted and the device online. It renews its
// certificate. Day 3–12 it is offline with the disk not encrypted; its
// outbox holds 6 reports, so it drops some (an honest gap). Day 13 it is
// back and delivers what it kept. An administrator's token re-binds it
// (a new epoch); day 14–15 it is encrypted again.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	day0 := time.Now().UTC().Truncate(time.Hour).Add(-20 * 24 * time.Hour)
	day := func(n int) time.Time { return day0.Add(time.Duration(n) * 24 * time.Hour) }
	clk := &simClock{t: day0.Add(-time.Hour)}
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.Now = clk.Now
		cfg.RateLimit, cfg.RateBurst = rate.Inf, 1<<20
	})
	encrypted, plain := replay(t, "linux-luks2-nft-drop"), replay(t, "linux-plain-nft-empty")
	state := filepath.Join(t.TempDir(), "state")
	id, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: c.Token("staff", 1, time.Hour), Fingerprint: c.Fingerprint,
		StateDir: state, Source: encrypted, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	src := &switchable{encrypted}
	newService := func(maxEntries int) *service.Service {
		t.Helper()
		s, err := service.New(service.Config{StateDir: state, Source: src, AgentVersion: "1.0.0", Now: clk.Now, NoUpdateProbe: true,
			Outbox: outbox.Options{Now: clk.Now, MaxEntries: maxEntries}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	round := func(s *service.Service, n int, online bool) {
		t.Helper()
		clk.Set(day(n))
		out, err := s.Once(ctx)
		if err != nil {
			t.Fatalf("day %d: %v", n, err)
		}
		if online && (out.DeliveryErr != nil || out.Waiting != 0) {
			t.Fatalf("day %d: %+v, want everything delivered", n, out)
		}
		if !online && out.DeliveryErr == nil {
			t.Fatalf("day %d: delivered while the collector is down", n)
		}
	}

	s := newService(0)
	for n := 0; n <= 2; n++ {
		round(s, n, true)
	}
	s.Close()

	clk.Set(day(2).Add(time.Hour))
	loaded, err := enroll.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := report.Dial(loaded, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.Now = clk.Now
	if err := cl.Renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	cl.Close()

	src.Source = plain
	s = newService(6)
	c.Stop()
	for n := 3; n <= 12; n++ {
		round(s, n, false)
	}
	c.Restart()
	round(s, 13, true)
	// The next round's seal counts the drop the day-13 report's append
	// made (a seal counts the drops made before its report was queued).
	clk.Set(day(13).Add(12 * time.Hour))
	if out, err := s.Once(ctx); err != nil || out.DeliveryErr != nil {
		t.Fatalf("day 13, second round: %+v, %v", out, err)
	}
	s.Close()

	clk.Set(day(13).Add(13 * time.Hour))
	rebind, _, err := token.CreateRebind(ctx, c.Store(), id.DeviceID, time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	again, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: rebind, Fingerprint: c.Fingerprint,
		StateDir: state, Source: encrypted, Now: clk.Now})
	if err != nil {
		t.Fatalf("re-bind: %v", err)
	}
	if again.Epoch <= id.Epoch {
		t.Fatalf("re-bind kept epoch %d", again.Epoch)
	}
	src.Source = encrypted
	s = newService(0)
	for n := 14; n <= 15; n++ {
		round(s, n, true)
	}
	s.Close()

	st, err := evidence.For(c.Store())
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(day(16))
	res, err := evidence.Build(ctx, st, evidence.Options{DeviceID: id.DeviceID, From: day(0), To: day(16), Now: clk.Now(),
		GeneratedBy: "test", CA: [][]byte{c.CACertDER}})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := evidence.Write(&file, res.File); err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(c.CACertDER)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(b []byte) (*ev.Result, error) {
		f, err := ev.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return ev.Verify(f, ev.VerifyOptions{CA: []*x509.Certificate{ca}})
	}
	got, err := verify(file.Bytes())
	if err != nil {
		t.Fatalf("the exported file does not verify: %v\n%v", err, got.Problems)
	}

	d := res.File.Devices[0]
	kinds := map[string]int{}
	for _, cert := range d.Certificates {
		kinds[cert.Kind]++
		if cert.Kind == "renew" && len(cert.Handover) == 0 {
			t.Error("the renewed certificate has no key handover")
		}
	}
	if kinds["enrol"] != 1 || kinds["renew"] != 1 || kinds["rebind"] != 1 {
		t.Errorf("certificates by kind %v, want one enrolment, one renewal, one re-bind", kinds)
	}
	if len(d.Enrolments) != 2 || d.Enrolments[0].Kind != "enrol" || d.Enrolments[1].Kind != "rebind-token" {
		t.Errorf("enrolment records %+v, want the enrolment and the token re-bind", d.Enrolments)
	}
	// 17 rounds, 11 queued while offline into an outbox of 6: 5 dropped,
	// told apart as the agent's own drops by its signed counts.
	var missing, dropped uint64
	for _, g := range d.Gaps {
		missing += g.Before - g.After - 1
		dropped += g.Dropped
	}
	if len(d.Reports) != 12 || missing != 5 || dropped != 5 {
		t.Errorf("%d reports, gaps %+v (%d missing, %d dropped); want 12 reports and 5 missing, all dropped by the agent", len(d.Reports), d.Gaps, missing, dropped)
	}

	// The offline days are FAIL by when they were collected, though
	// delivered on day 13; nothing in them is PASS.
	var disk *ev.RuleSummary
	for i, r := range got.Summary.Devices[0].Rules {
		if r.RuleID == "disk-encrypted" {
			disk = &got.Summary.Devices[0].Rules[i]
		}
	}
	if disk == nil {
		t.Fatalf("no disk-encrypted rule in the summary %+v", got.Summary.Devices[0])
	}
	statusAt := func(at time.Time) string {
		for _, p := range disk.Periods {
			if !at.Before(p.From) && at.Before(p.To) {
				return p.Status
			}
		}
		return "unobserved"
	}
	for n, want := range map[int]string{0: "PASS", 1: "PASS", 2: "PASS", 3: "FAIL", 12: "FAIL", 13: "FAIL", 14: "PASS", 15: "PASS"} {
		if got := statusAt(day(n).Add(time.Hour)); got != want {
			t.Errorf("disk-encrypted on day %d: %s, want %s (periods %+v)", n, got, want, disk.Periods)
		}
	}
	for _, p := range disk.Periods {
		if p.Status == "PASS" && p.To.After(day(3)) && p.From.Before(day(14)) {
			t.Errorf("a PASS period %v–%v while the disk was not encrypted", p.From, p.To)
		}
	}
	if u := got.Summary.Devices[0].UnobservedSeconds; u <= 0 {
		t.Errorf("unobserved %ds: the dropped days are not observed", u)
	}
	text := strings.Join(got.Summary.Devices[0].Text, "\n")
	if !strings.Contains(text, "unobserved") {
		t.Errorf("summary text names no unobserved time:\n%s", text)
	}

	// Any change to the file fails, at its place.
	flip := func(mutate func(f *ev.File)) error {
		f, err := ev.Decode(bytes.NewReader(file.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		mutate(f)
		var b bytes.Buffer
		if err := ev.Encode(&b, f); err != nil {
			t.Fatal(err)
		}
		res, err := verify(b.Bytes())
		if err == nil {
			return nil
		}
		if res != nil && len(res.Problems) > 0 {
			return errors.New(res.Problems[0].String())
		}
		return err
	}
	for name, tc := range map[string]struct {
		mutate func(f *ev.File)
		place  string
	}{
		"facts byte": {func(f *ev.File) { f.Devices[0].Reports[5].Facts[3] ^= 1 }, "devices[0].reports[5]"},
		"removed report": {func(f *ev.File) {
			r := f.Devices[0].Reports
			f.Devices[0].Reports = append(r[:2:2], r[3:]...)
		}, "devices[0].reports[2]"},
		"reordered pair": {func(f *ev.File) {
			r := f.Devices[0].Reports
			r[1], r[2] = r[2], r[1]
		}, "devices[0].reports[1]"},
	} {
		err := flip(tc.mutate)
		if err == nil || !strings.Contains(err.Error(), tc.place) {
			t.Errorf("%s: %v, want a failure at %s", name, err, tc.place)
		}
	}
}
