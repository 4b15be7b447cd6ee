package events_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/events"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// enrolAndReport enrols a device through the real enrolment path and
// reports the facts collected from a captured bundle over mTLS.
func enrolAndReport(t *testing.T, c *servertest.Collector, host, group, bundle string) string {
	t.Helper()
	ctx := context.Background()
	id, cert := c.Enroll(ctx, c.Token(group, 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: host, Platform: "windows", OsName: "Windows 11 Pro", OsVersion: "1", Architecture: "amd64", AgentVersion: "test", MachineId: host,
	})
	m, rec, err := source.OpenBundle(filepath.Join("..", "..", "agent", "testdata", "bundles", bundle))
	if err != nil {
		t.Fatal(err)
	}
	_, err = wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: 1, CollectedAt: timestamppb.Now(), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 1,
		Facts: collect.All(ctx, rec, m.CreatedAt),
	}})
	if err != nil {
		t.Fatalf("report %s: %v", host, err)
	}
	return id
}

// request is what the receiver got.
type request struct {
	attempt  int
	id       int64
	typ      string
	body     []byte
	verified error
	answered int
}

// receiver is an in-test webhook endpoint: it verifies every request's
// signature and answers 503 to the first failFirst requests.
type receiver struct {
	*httptest.Server
	mu        sync.Mutex
	failFirst int
	reqs      []request
}

func newReceiver(t *testing.T, secret []byte, failFirst int) *receiver {
	rc := &receiver{failFirst: failFirst}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rq := request{body: body, typ: r.Header.Get(events.EventHeader)}
		rq.attempt, _ = strconv.Atoi(r.Header.Get(events.AttemptHeader))
		rq.id, _ = strconv.ParseInt(r.Header.Get(events.IDHeader), 10, 64)
		rq.verified = events.Verify(secret, body, r.Header.Get(events.SignatureHeader), time.Now(), events.DefaultTolerance)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rq.answered = http.StatusNoContent
		if len(rc.reqs) < rc.failFirst {
			rq.answered = http.StatusServiceUnavailable
		}
		rc.reqs = append(rc.reqs, rq)
		w.WriteHeader(rq.answered)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// delivered is the bodies answered 2xx, in order.
func (rc *receiver) delivered() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []request
	for _, r := range rc.reqs {
		if r.answered/100 == 2 {
			out = append(out, r)
		}
	}
	return out
}

func (rc *receiver) all() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

// run starts a dispatcher with a webhook to url and a file sink at path;
// the returned stop ends it.
func run(t *testing.T, st store.Dashboard, clk *clock, url string, secret []byte, path string) (stop func()) {
	t.Helper()
	el := st.(store.EventLog)
	f, err := events.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &events.Webhook{URL: url, Secret: secret, Log: el, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	d, err := events.New(events.Config{Store: st, Sinks: []events.Sink{w, f}, DefaultPolicy: server.DefaultPolicy,
		Poll: 20 * time.Millisecond, OverdueEvery: 20 * time.Millisecond, GapWait: 100 * time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			f.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// readLines reads the JSON-lines file.
func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("the stream's last line has no newline")
	}
	return out
}

// TestWebhookAndStreamFromTheRealPaths seeds a fleet through the real
// enrolment and report path, revokes a device and lets deadlines pass,
// and checks what an in-test receiver got (signatures, retries after two
// failures, order), the delivery log, the JSON-lines file, and that a
// dispatcher started again resumes after what it sent.
func TestWebhookAndStreamFromTheRealPaths(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testWebhookAndStream(t, "") })
	// PostgreSQL's ids come from identities (gaps and all); under CI=true
	// a missing server fails the test.
	t.Run("postgres", func(t *testing.T) { testWebhookAndStream(t, pgtest.URL(t)) })
}

func testWebhookAndStream(t *testing.T, storeSpec string) {
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) { cfg.Events, cfg.StoreSpec = events.Recorder{}, storeSpec })
	st := c.Store().(store.Dashboard)
	el := c.Store().(store.EventLog)
	secret := []byte("webhook-secret-0123456789")
	rc := newReceiver(t, secret, 2)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	start := time.Now()
	clk := &clock{now: start}
	stop := run(t, st, clk, rc.URL, secret, path)
	eventually(t, "the cursors", func() bool {
		for _, n := range []string{"sink:webhook", "sink:file", "producer:transitions", "producer:overdue"} {
			if _, ok, _ := el.Cursor(ctx, n); !ok {
				return false
			}
		}
		return true
	})

	bad := enrolAndReport(t, c, "win-bad", "field", "windows-bitlocker-suspended-firewall-public-off")
	good := enrolAndReport(t, c, "win-ok", "field", "windows-compliant")
	if err := st.RevokeDevice(ctx, good, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := events.RecordRevoke(ctx, st, good, "amina", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	// What the events must be: the enrolments, every transition but a
	// first PASS, in the store's order, then the revocation.
	var failing []store.RuleState
	wantTypes := map[string]int{events.TypeEnrolled: 2, events.TypeRevoked: 1}
	for _, id := range []string{bad, good} {
		ts, err := st.Transitions(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range ts {
			if tr.To != store.Pass {
				wantTypes[events.TypeComplianceChanged]++
			}
		}
	}
	rs, err := st.RuleStates(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Collector == store.Fail {
			failing = append(failing, r)
		}
	}
	if len(failing) < 2 {
		t.Fatalf("win-bad fails %d rules; this test needs two", len(failing))
	}
	total := wantTypes[events.TypeEnrolled] + wantTypes[events.TypeRevoked] + wantTypes[events.TypeComplianceChanged]
	eventually(t, fmt.Sprintf("%d events delivered", total), func() bool {
		ds, _ := el.Deliveries(ctx, 0)
		return len(rc.delivered()) >= total && len(readLines(t, path)) >= total && len(ds) >= total+2
	})

	all := rc.all()
	if all[0].answered != http.StatusServiceUnavailable || all[1].answered != http.StatusServiceUnavailable || all[2].answered != http.StatusNoContent {
		t.Fatalf("first three answers: %d %d %d", all[0].answered, all[1].answered, all[2].answered)
	}
	for i := range 3 {
		if all[i].id != all[0].id || all[i].attempt != i+1 || !bytes.Equal(all[i].body, all[0].body) {
			t.Errorf("request %d: event %d attempt %d; want event %d attempt %d, same body", i, all[i].id, all[i].attempt, all[0].id, i+1)
		}
	}
	for i, r := range all {
		if r.verified != nil {
			t.Errorf("request %d (event %d): signature: %v", i, r.id, r.verified)
		}
	}

	got := rc.delivered()
	counts := map[string]int{}
	var lastID int64
	byType := map[string][]events.Envelope{}
	for _, r := range got {
		var env events.Envelope
		if err := json.Unmarshal(r.body, &env); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		if env.ID != r.id || env.Type != r.typ {
			t.Errorf("envelope id %d type %s; headers say %d %s", env.ID, env.Type, r.id, r.typ)
		}
		if env.ID <= lastID {
			t.Errorf("event %d after %d: out of order or repeated", env.ID, lastID)
		}
		lastID = env.ID
		counts[env.Type]++
		byType[env.Type] = append(byType[env.Type], env)
	}
	if fmt.Sprint(counts) != fmt.Sprint(wantTypes) {
		t.Errorf("delivered %v, want %v", counts, wantTypes)
	}
	var enrolled events.EnrolledData
	json.Unmarshal(byType[events.TypeEnrolled][0].Data, &enrolled)
	if enrolled.Device != (events.DeviceRef{ID: bad, Hostname: "win-bad", Group: "field"}) || enrolled.CertSerial == "" || enrolled.AgentVersion != "test" {
		t.Errorf("enrolled data = %+v", enrolled)
	}
	var revoked events.RevokedData
	json.Unmarshal(byType[events.TypeRevoked][0].Data, &revoked)
	if revoked.Device.ID != good || revoked.Device.Hostname != "win-ok" || revoked.Actor != "amina" {
		t.Errorf("revoked data = %+v", revoked)
	}
	fails := map[string]events.ComplianceData{}
	for _, env := range byType[events.TypeComplianceChanged] {
		var cd events.ComplianceData
		json.Unmarshal(env.Data, &cd)
		if cd.Device.ID == bad && cd.To == store.Fail {
			fails[cd.Rule.ID] = cd
		}
	}
	for _, r := range failing {
		cd, ok := fails[r.RuleID]
		if !ok {
			t.Errorf("no compliance.changed to FAIL for %s", r.RuleID)
			continue
		}
		if cd.From != "" || cd.Policy != (events.PolicyRef{Name: "baseline", Version: mustBaseline(t).Version}) || cd.Rule.Title != r.Title || cd.Rule.Severity != r.Severity ||
			cd.Observed != r.Observed || cd.Device.Hostname != "win-bad" || cd.Sequence != 1 {
			t.Errorf("compliance.changed %s = %+v; state %+v", r.RuleID, cd, r)
		}
	}

	// The delivery log: the first event took three attempts.
	ds, err := el.Deliveries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != total+2 {
		t.Fatalf("delivery log has %d attempts, want %d", len(ds), total+2)
	}
	first := ds[len(ds)-3:] // newest first: the oldest three at the end
	for i, want := range []struct {
		attempt, status int
		outcome         string
	}{{3, 204, store.DeliveryDelivered}, {2, 503, store.DeliveryRetry}, {1, 503, store.DeliveryRetry}} {
		d := first[i]
		if d.EventID != all[0].id || d.Attempt != want.attempt || d.Status != want.status || d.Outcome != want.outcome || d.URL != rc.URL || d.Sink != "webhook" {
			t.Errorf("delivery %d = %+v, want attempt %d status %d %s", i, d, want.attempt, want.status, want.outcome)
		}
		if want.outcome == store.DeliveryRetry && !strings.Contains(d.Error, "503") {
			t.Errorf("a failed attempt's error = %q", d.Error)
		}
	}
	// The stream holds the same envelopes, byte for byte, in order.
	lines := readLines(t, path)
	if len(lines) != len(got) {
		t.Fatalf("stream has %d lines, webhook got %d", len(lines), len(got))
	}
	for i := range lines {
		if !bytes.Equal(lines[i], got[i].body) {
			t.Errorf("line %d = %s; webhook body %s", i, lines[i], got[i].body)
		}
	}

	// Deadlines pass 40 days on; a waiver keeps one rule quiet.
	waived := failing[0]
	if err := st.CreateWaiver(ctx, store.Waiver{ID: "w1", DeviceID: bad, RuleID: waived.RuleID, Reason: "replacement ordered", CreatedBy: "amina",
		CreatedAt: start, ExpiresAt: start.Add(60 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	pol := mustBaseline(t)
	wantOverdue := map[string]time.Time{}
	for _, r := range failing[1:] {
		for _, pr := range pol.Rules {
			if pr.ID == r.RuleID && pr.Grace > 0 {
				wantOverdue[r.RuleID] = r.FailingSince.Add(pr.Grace).UTC()
			}
		}
	}
	if len(wantOverdue) == 0 {
		t.Fatal("no failing rule with a grace besides the waived one")
	}
	clk.Set(start.Add(40 * 24 * time.Hour))
	n := len(got)
	eventually(t, "overdue events", func() bool {
		return len(rc.delivered()) >= n+len(wantOverdue) && len(readLines(t, path)) >= n+len(wantOverdue)
	})
	time.Sleep(100 * time.Millisecond) // nothing more should come
	got = rc.delivered()
	gotOverdue := map[string]time.Time{}
	for _, r := range got[n:] {
		var env events.Envelope
		var od events.OverdueData
		json.Unmarshal(r.body, &env)
		json.Unmarshal(env.Data, &od)
		if env.Type != events.TypeOverdue || od.Device.ID != bad || od.Device.Hostname != "win-bad" || od.Policy.Name != "baseline" || !env.At.Equal(od.Deadline) {
			t.Errorf("overdue event = %s", r.body)
		}
		gotOverdue[od.Rule.ID] = od.Deadline
	}
	if fmt.Sprint(gotOverdue) != fmt.Sprint(wantOverdue) {
		t.Errorf("overdue events %v, want %v (the waived %s left out)", gotOverdue, wantOverdue, waived.RuleID)
	}

	// Stopped, an event recorded meanwhile (by the CLI, say) waits in the
	// store; a new dispatcher sends it and nothing it sent before.
	stop()
	n = len(rc.delivered())
	if err := st.RevokeDevice(ctx, bad, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := events.RecordRevoke(ctx, st, bad, "cli:root", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if len(rc.delivered()) != n {
		t.Fatal("delivered while stopped")
	}
	// Back to today: 40 days on, the restarted dispatcher would prune
	// the revocation (recorded today) as older than its 30 days.
	clk.Set(time.Now())
	run(t, st, clk, rc.URL, secret, path)
	eventually(t, "the event recorded while stopped", func() bool { return len(rc.delivered()) > n && len(readLines(t, path)) > n })
	time.Sleep(200 * time.Millisecond)
	got = rc.delivered()
	if len(got) != n+1 || !strings.Contains(string(got[n].body), `"actor":"cli:root"`) {
		t.Fatalf("after the restart: %d new requests, last %s; want exactly the revocation", len(got)-n, got[len(got)-1].body)
	}
	if l := readLines(t, path); len(l) != len(got) || !bytes.Equal(l[len(l)-1], got[n].body) {
		t.Errorf("stream after the restart: %d lines, webhook %d", len(l), len(got))
	}
}

func mustBaseline(t *testing.T) *policies.Policy {
	t.Helper()
	p, err := policies.Embedded(server.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
