package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Webhook headers.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>",
	// the HMAC keyed with the shared secret over "<t>." followed by the
	// body: the timestamp is signed with the body, so a receiver that
	// refuses an old t refuses a replayed request (Verify).
	SignatureHeader = "Ward-Signature"
	// EventHeader, IDHeader and AttemptHeader carry the event's type,
	// its id and the attempt's number (1 for the first).
	EventHeader   = "Ward-Event"
	IDHeader      = "Ward-Event-Id"
	AttemptHeader = "Ward-Delivery-Attempt"
)

// DefaultTolerance is how far from now Verify accepts a signature's time.
const DefaultTolerance = 5 * time.Minute

// Sign is the SignatureHeader value of body signed at t with secret.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Verification errors.
var (
	ErrBadSignature = errors.New("webhook signature does not verify")
	ErrStale        = errors.New("webhook signature is too old or too far ahead")
)

// Verify checks a SignatureHeader value for body: one of its v1 values is
// the HMAC with secret, and its t is within tolerance of now. It is what
// a receiver written in Go runs (docs/integrations.md shows others).
func Verify(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrBadSignature)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		ok = ok || hmac.Equal(s, want)
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now", ErrStale, time.Unix(sec, 0).UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	return nil
}

// Webhook POSTs each event to URL, signed, retrying a failed attempt
// with exponential backoff and jitter; every attempt is written to the
// delivery log.
type Webhook struct {
	URL    string
	Secret []byte
	// Types, if set, are the event types to send; others are passed over.
	Types map[string]bool
	// MaxAttempts bounds the attempts per event (default 8); after the
	// last the event is given up (outcome "failed" in the log).
	MaxAttempts int
	// Backoff is the wait after the first failed attempt (default 1 s),
	// doubled after each one up to MaxBackoff (default 5 min); each wait
	// is drawn between half of it and all of it, so receivers coming back
	// are not hit by every collector at once.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// Client sends the requests (default: one without redirects).
	Client *http.Client
	// Log is the delivery log (the store).
	Log    store.EventLog
	Logger *slog.Logger
	Now    func() time.Time
}

// Name implements Sink.
func (w *Webhook) Name() string { return "webhook" }

func (w *Webhook) defaults() {
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 8
	}
	if w.Backoff <= 0 {
		w.Backoff = time.Second
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = 5 * time.Minute
	}
	if w.Timeout <= 0 {
		w.Timeout = 10 * time.Second
	}
	if w.Client == nil {
		w.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	if w.Now == nil {
		w.Now = time.Now
	}
}

// Send implements Sink: the first event (after any it passes over) is
// delivered or given up before it returns.
func (w *Webhook) Send(ctx context.Context, evs []store.Event) (int, error) {
	w.defaults()
	n := 0
	for n < len(evs) && w.Types != nil && !w.Types[evs[n].Type] {
		n++
	}
	if n == len(evs) {
		return n, nil
	}
	e := evs[n]
	body, err := Encode(e)
	if err != nil {
		w.logAttempt(ctx, e, 1, 0, err, store.DeliveryFailed, 0)
		return n + 1, nil
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, retryAfter, err := w.post(ctx, e, body, attempt)
		took := time.Since(start)
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if err == nil {
			w.logAttempt(ctx, e, attempt, status, nil, store.DeliveryDelivered, took)
			return n + 1, nil
		}
		if attempt >= w.MaxAttempts || !retryable(status) {
			w.logAttempt(ctx, e, attempt, status, err, store.DeliveryFailed, took)
			w.Logger.Error("webhook: event given up", "event_id", e.ID, "type", e.Type, "attempts", attempt, "status", status, "err", err)
			return n + 1, nil
		}
		w.logAttempt(ctx, e, attempt, status, err, store.DeliveryRetry, took)
		wait := w.backoff(attempt)
		if retryAfter > wait && retryAfter <= w.MaxBackoff {
			wait = retryAfter
		}
		w.Logger.Warn("webhook: attempt failed; retrying", "event_id", e.ID, "type", e.Type, "attempt", attempt, "status", status, "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is the wait after failed attempt n: Backoff·2^(n-1), capped,
// drawn from its upper half.
func (w *Webhook) backoff(n int) time.Duration {
	d := w.Backoff
	for i := 1; i < n && d < w.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// retryable says whether an attempt that got status (0: no answer) may
// succeed again: no answer, 408, 429 and 5xx; any other 4xx would not.
func retryable(status int) bool {
	return status == 0 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// post makes one attempt. It returns the answer's status, its
// Retry-After, and an error unless the answer was 2xx.
func (w *Webhook) post(ctx context.Context, e store.Event, body []byte, attempt int) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ward-collector")
	req.Header.Set(EventHeader, e.Type)
	req.Header.Set(IDHeader, strconv.FormatInt(e.ID, 10))
	req.Header.Set(AttemptHeader, strconv.Itoa(attempt))
	req.Header.Set(SignatureHeader, Sign(w.Secret, body, w.Now()))
	resp, err := w.Client.Do(req)
	if err != nil {
		// Not *url.Error's text: it quotes the URL, query and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, 0, nil
	}
	var after time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		after = time.Duration(s) * time.Second
	}
	return resp.StatusCode, after, fmt.Errorf("receiver answered %s", resp.Status)
}

// logAttempt writes an attempt to the delivery log.
func (w *Webhook) logAttempt(ctx context.Context, e store.Event, attempt, status int, err error, outcome string, took time.Duration) {
	d := store.Delivery{EventID: e.ID, EventType: e.Type, Sink: w.Name(), URL: RedactURL(w.URL), Attempt: attempt, At: w.Now().UTC(),
		Status: status, Outcome: outcome, Duration: took}
	if err != nil {
		d.Error = truncate(err.Error(), 500)
	}
	if w.Log == nil {
		return
	}
	if lerr := w.Log.AddDelivery(context.WithoutCancel(ctx), d); lerr != nil {
		w.Logger.Error("webhook: write the delivery log", "event_id", e.ID, "err", lerr)
	}
}

// RedactURL is u without its query, fragment and user info, which may
// hold a token: what the delivery log and the logs show.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
