package events_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/events"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
)

func TestVerifyRefusesTamperingAndReplays(t *testing.T) {
	secret, body := []byte("s3cret-0123456789abcdef"), []byte(`{"id":7,"type":"device.revoked"}`)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sig := events.Sign(secret, body, now)
	if !strings.HasPrefix(sig, "t=1796126400,v1=") || len(sig) != len("t=1796126400,v1=")+64 {
		t.Fatalf("signature header = %q", sig)
	}
	if err := events.Verify(secret, body, sig, now.Add(time.Minute), events.DefaultTolerance); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for name, c := range map[string]struct {
		secret, body []byte
		header       string
		at           time.Time
		want         error
	}{
		"tampered body":     {secret, []byte(`{"id":7,"type":"device.enrolled"}`), sig, now, events.ErrBadSignature},
		"wrong secret":      {[]byte("another-secret-0123456"), body, sig, now, events.ErrBadSignature},
		"replayed later":    {secret, body, sig, now.Add(6 * time.Minute), events.ErrStale},
		"from the future":   {secret, body, sig, now.Add(-6 * time.Minute), events.ErrStale},
		"timestamp changed": {secret, body, strings.Replace(sig, "t=1796126400", "t=1796126460", 1), now, events.ErrBadSignature},
		"no signature":      {secret, body, "t=1796126400", now, events.ErrBadSignature},
		"garbage":           {secret, body, "sha256=abc", now, events.ErrBadSignature},
	} {
		if err := events.Verify(c.secret, c.body, c.header, c.at, events.DefaultTolerance); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// During a secret rotation a receiver may be sent two v1 values.
	other := events.Sign([]byte("old-secret-0123456789"), body, now)
	two := sig + ",v1=" + strings.SplitN(other, "v1=", 2)[1]
	if err := events.Verify(secret, body, two, now, events.DefaultTolerance); err != nil {
		t.Errorf("two v1 values, one good: %v", err)
	}
}

func openStore(t *testing.T) store.Dashboard {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func addEvent(t *testing.T, st store.Store, typ string) store.Event {
	t.Helper()
	e := store.Event{At: time.Now(), Type: typ, DeviceID: "dev_1", Payload: []byte(`{"device":{"id":"dev_1"}}`)}
	id, err := st.(store.EventLog).AddEvent(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	e.ID = id
	return e
}

// TestWebhookGivesUp: a receiver that keeps failing gets MaxAttempts
// attempts, one that refuses (4xx) gets one; either way the event is
// handled (the cursor moves on) and the log says "failed". Event types
// outside Types are passed over without a request.
func TestWebhookGivesUp(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	el := st.(store.EventLog)
	var hits atomic.Int32
	status := atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	w := &events.Webhook{URL: srv.URL + "/hook?token=do-not-log", Secret: []byte("secret-0123456789abc"), Log: el, MaxAttempts: 3,
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Types: map[string]bool{events.TypeRevoked: true}}

	status.Store(http.StatusInternalServerError)
	evs := []store.Event{addEvent(t, st, events.TypeEnrolled), addEvent(t, st, events.TypeRevoked), addEvent(t, st, events.TypeRevoked)}
	n, err := w.Send(ctx, evs)
	if err != nil || n != 2 || hits.Load() != 3 {
		t.Fatalf("Send = %d, %v after %d requests; want 2 handled (one passed over, one given up) after 3", n, err, hits.Load())
	}
	status.Store(http.StatusBadRequest)
	if n, err := w.Send(ctx, evs[2:]); err != nil || n != 1 || hits.Load() != 4 {
		t.Fatalf("Send on 400 = %d, %v after %d requests; want one attempt", n, err, hits.Load())
	}
	ds, err := el.Deliveries(ctx, 0)
	if err != nil || len(ds) != 4 {
		t.Fatalf("Deliveries = %d, %v", len(ds), err)
	}
	want := []struct {
		event   int64
		attempt int
		status  int
		outcome string
	}{{evs[2].ID, 1, 400, store.DeliveryFailed}, {evs[1].ID, 3, 500, store.DeliveryFailed}, {evs[1].ID, 2, 500, store.DeliveryRetry}, {evs[1].ID, 1, 500, store.DeliveryRetry}}
	for i, w := range want {
		d := ds[i]
		if d.EventID != w.event || d.Attempt != w.attempt || d.Status != w.status || d.Outcome != w.outcome {
			t.Errorf("delivery %d = %+v, want %+v", i, d, w)
		}
		if d.URL != srv.URL+"/hook" {
			t.Errorf("delivery log URL %q keeps the query", d.URL)
		}
	}

	// A receiver that is not there: no status, an error without the URL's query.
	srv.Close()
	w.MaxAttempts = 1
	if n, err := w.Send(ctx, evs[2:]); err != nil || n != 1 {
		t.Fatalf("Send to nobody = %d, %v", n, err)
	}
	ds, _ = el.Deliveries(ctx, 1)
	if d := ds[0]; d.Status != 0 || d.Outcome != store.DeliveryFailed || d.Error == "" || strings.Contains(d.Error, "do-not-log") {
		t.Errorf("delivery to nobody = %+v", d)
	}
	// A cancelled context stops between attempts and hands nothing back as handled.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	w.MaxAttempts = 5
	if n, err := w.Send(cctx, evs[2:]); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context = %d, %v", n, err)
	}
}

func TestFileStreamAppendsAndReopensAfterRotation(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(path, []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := events.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e1, e2 := addEvent(t, st, events.TypeEnrolled), addEvent(t, st, events.TypeRevoked)
	if n, err := f.Send(context.Background(), []store.Event{e1}); err != nil || n != 1 {
		t.Fatalf("Send = %d, %v", n, err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Send(context.Background(), []store.Event{e2}); err != nil || n != 1 {
		t.Fatalf("Send after rotation = %d, %v", n, err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	l1, _ := events.Encode(e1)
	l2, _ := events.Encode(e2)
	if string(old) != "kept\n"+string(l1)+"\n" || string(cur) != string(l2)+"\n" {
		t.Errorf("rotated file %q, new file %q", old, cur)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("new stream file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestSyslogStream(t *testing.T) {
	st := openStore(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := events.DialSyslog("udp://"+pc.LocalAddr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := addEvent(t, st, events.TypeRevoked)
	if n, err := s.Send(context.Background(), []store.Event{e}); err != nil || n != 1 {
		t.Fatalf("Send = %d, %v", n, err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := events.Encode(e)
	msg := string(buf[:n])
	// <PRI> of auth (4) × 8 + info (6) = 38; tag; the JSON line.
	if !strings.HasPrefix(msg, "<38>") || !strings.Contains(msg, "ward-collector") || !strings.HasSuffix(strings.TrimSuffix(msg, "\n"), string(line)) {
		t.Errorf("syslog message %q, want <38> … ward-collector … %s", msg, line)
	}
	for _, bad := range []string{"udp:/x", "http://h:1", "tcp://"} {
		if _, err := events.DialSyslog(bad, nil); err == nil {
			t.Errorf("DialSyslog(%q) accepted", bad)
		}
	}
}

// TestDispatcherDoesNotWaitBetweenEvents: with a poll of an hour, a
// backlog recorded after Init still goes out at once, one request after
// the other, in order, each to the webhook and the file.
func TestDispatcherDoesNotWaitBetweenEvents(t *testing.T) {
	st := openStore(t)
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get(events.IDHeader))
		mu.Unlock()
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "e.jsonl")
	f, err := events.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &events.Webhook{URL: srv.URL, Secret: []byte("secret-0123456789abc"), Log: st.(store.EventLog)}
	d, err := events.New(events.Config{Store: st, Sinks: []events.Sink{w, f}, Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Init(ctx); err != nil {
		t.Fatal(err)
	}
	var want []string
	for range 150 {
		want = append(want, strconv.FormatInt(addEvent(t, st, events.TypeRevoked).ID, 10))
	}
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(ids)
		mu.Unlock()
		b, _ := os.ReadFile(path)
		if n >= len(want) && strings.Count(string(b), "\n") >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d of %d requests, %d lines", n, len(want), strings.Count(string(b), "\n"))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("requests for %v, want %v", ids, want)
	}
}
