// Package storetest is the conformance suite every store.Store backend
// runs: RunConformance(t, newStore) where newStore returns a fresh, empty
// store for each subtest (the suite closes it).
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunConformance runs the suite against stores made by newStore.
func RunConformance(t *testing.T, newStore func() store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"TokensRoundTrip", testTokens},
		{"EnrollConsumesUses", testEnrollUses},
		{"EnrollRefusesBadTokens", testEnrollRefuses},
		{"EnrollSignFailureWritesNothing", testEnrollSignFailure},
		{"RebindBySecretNotMachineID", testRebind},
		{"RevokeDevice", testRevokeDevice},
		{"SaveReportIdempotent", testSaveIdempotent},
		{"FailingSinceAndTransitions", testFailingSince},
		{"LateReportKeepsLatestState", testLateReport},
		{"Policies", testPolicies},
		{"ConcurrentReports", testConcurrent},
		{"CertificateRenewal", testRenewal},
	}
	tests = append(tests, reportIdentityTests...)
	tests = append(tests, ingestTests...)
	tests = append(tests, enrolTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func mkToken(t *testing.T, s store.Store, id, secret, group string, uses int, ttl time.Duration) {
	t.Helper()
	err := s.CreateToken(context.Background(), store.Token{ID: id, Hash: hash(secret), Group: group, Uses: uses, UsesLeft: uses, CreatedAt: t0, ExpiresAt: t0.Add(ttl)})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
}

var serials int

func signer(deviceID string) (store.Issued, error) {
	serials++
	return store.Issued{Serial: fmt.Sprintf("%x", 1000+serials), NotAfter: t0.AddDate(1, 0, 0), DER: []byte("cert-" + deviceID)}, nil
}

func enroll(t *testing.T, s store.Store, secret, newID, machine string, now time.Time) (store.Enrolment, error) {
	t.Helper()
	return s.Enroll(context.Background(), store.EnrollParams{
		TokenHash: hash(secret), Now: now, NewID: newID,
		Info: store.DeviceInfo{Hostname: "h-" + newID, Platform: "linux", OSName: "Debian", OSVersion: "12", MachineID: machine},
	}, signer)
}

func mustEnroll(t *testing.T, s store.Store, secret, newID, machine string) store.Enrolment {
	t.Helper()
	e, err := enroll(t, s, secret, newID, machine, t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return e
}

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret-a", "staff", 3, time.Hour)
	mkToken(t, s, "tok_b", "secret-b", "field", 1, time.Hour)
	ts, err := s.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("Tokens: got %d, want 2", len(ts))
	}
	byID := map[string]store.Token{}
	for _, tk := range ts {
		byID[tk.ID] = tk
	}
	a := byID["tok_a"]
	if a.Group != "staff" || a.Uses != 3 || a.UsesLeft != 3 || !a.ExpiresAt.Equal(t0.Add(time.Hour)) || !bytes.Equal(a.Hash, hash("secret-a")) || a.RevokedAt != nil {
		t.Errorf("tok_a = %+v", a)
	}
	if err := s.RevokeToken(ctx, "tok_b", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "tok_nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeToken(unknown) = %v, want ErrNotFound", err)
	}
	ts, _ = s.Tokens(ctx)
	for _, tk := range ts {
		if tk.ID == "tok_b" && (tk.RevokedAt == nil || tk.State(t0) != "revoked") {
			t.Errorf("tok_b after revoke = %+v", tk)
		}
	}
}

func testEnrollUses(t *testing.T, s store.Store) {
	mkToken(t, s, "tok_a", "secret", "staff", 2, time.Hour)
	e1 := mustEnroll(t, s, "secret", "dev_1", "")
	e2 := mustEnroll(t, s, "secret", "dev_2", "")
	if e1.Device.ID != "dev_1" || e2.Device.ID != "dev_2" || e1.Rebound || e2.Rebound {
		t.Fatalf("enrolments: %+v / %+v", e1.Device, e2.Device)
	}
	if e1.Device.Group != "staff" || e1.Device.Hostname != "h-dev_1" || e1.Device.CertSerial != e1.Issued.Serial || !e1.Device.EnrolledAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("device 1 = %+v", e1.Device)
	}
	if _, err := enroll(t, s, "secret", "dev_3", "", t0.Add(time.Minute)); !errors.Is(err, store.ErrTokenUsedUp) {
		t.Errorf("third use: %v, want ErrTokenUsedUp", err)
	}
	ts, _ := s.Tokens(context.Background())
	if len(ts) != 1 || ts[0].UsesLeft != 0 {
		t.Errorf("tokens after two uses: %+v", ts)
	}
	ds, _ := s.Devices(context.Background())
	if len(ds) != 2 {
		t.Errorf("devices: %d, want 2", len(ds))
	}
}

func testEnrollRefuses(t *testing.T, s store.Store) {
	mkToken(t, s, "tok_exp", "expiring", "staff", 5, time.Hour)
	mkToken(t, s, "tok_rev", "revoked", "staff", 5, time.Hour)
	if err := s.RevokeToken(context.Background(), "tok_rev", t0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		secret string
		now    time.Time
		want   error
	}{
		{"never-issued", t0, store.ErrTokenInvalid},
		{"expiring", t0.Add(time.Hour), store.ErrTokenExpired},
		{"revoked", t0, store.ErrTokenRevoked},
	}
	for _, c := range cases {
		if _, err := enroll(t, s, c.secret, "dev_x", "", c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.secret, err, c.want)
		}
	}
	ds, _ := s.Devices(context.Background())
	if len(ds) != 0 {
		t.Errorf("refused enrolments created %d devices", len(ds))
	}
}

func testEnrollSignFailure(t *testing.T, s store.Store) {
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	_, err := s.Enroll(context.Background(), store.EnrollParams{TokenHash: hash("secret"), Now: t0, NewID: "dev_1"},
		func(string) (store.Issued, error) { return store.Issued{}, errors.New("boom") })
	if err == nil {
		t.Fatal("Enroll with a failing signer succeeded")
	}
	ts, _ := s.Tokens(context.Background())
	if ts[0].UsesLeft != 1 {
		t.Errorf("uses left after failed enrolment = %d, want 1", ts[0].UsesLeft)
	}
	ds, _ := s.Devices(context.Background())
	if len(ds) != 0 {
		t.Errorf("failed enrolment created %d devices", len(ds))
	}
}

func testRebind(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 9, time.Hour)
	mkToken(t, s, "tok_f", "field", "field", 5, time.Hour)
	first := mustEnroll(t, s, "secret", "dev_1", "machine-1")

	// The machine id alone never re-binds: a new device, flagged.
	again := mustEnroll(t, s, "secret", "dev_2", "machine-1")
	if again.Rebound || again.Device.ID != "dev_2" || len(again.Duplicates) != 1 || again.Duplicates[0] != "dev_1" {
		t.Fatalf("same machine id: rebound=%v id=%s duplicates=%v, want new dev_2 duplicating dev_1", again.Rebound, again.Device.ID, again.Duplicates)
	}
	if r, _ := s.SerialRevoked(ctx, first.Issued.Serial); r {
		t.Error("first device's serial revoked by another enrolment")
	}
	sets, err := s.Duplicates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 1 || sets[0].Group != "staff" || sets[0].MachineID != "machine-1" || len(sets[0].Devices) != 2 || sets[0].Devices[0].ID != "dev_1" || sets[0].Devices[1].ID != "dev_2" {
		t.Fatalf("Duplicates = %+v", sets)
	}

	// A proof of dev_1's current certificate re-binds it.
	proven := func(newID, dev, serial, secret string) store.Enrolment {
		t.Helper()
		e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash(secret), Now: t0.Add(30 * time.Minute), NewID: newID,
			Info: store.DeviceInfo{Hostname: "h-" + newID, MachineID: "machine-1"}, ProvenDevice: dev, ProvenSerial: serial}, signer)
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		return e
	}
	re := proven("dev_3", "dev_1", first.Issued.Serial, "secret")
	if !re.Rebound || re.RebindBy != store.RebindByProof || re.Device.ID != "dev_1" || re.Device.CertSerial != re.Issued.Serial || re.Device.Hostname != "h-dev_3" {
		t.Fatalf("proven re-bind = %+v", re)
	}
	if r, _ := s.SerialRevoked(ctx, first.Issued.Serial); !r {
		t.Error("old serial not revoked after re-bind")
	}
	// The superseded serial, a wrong serial and another group prove nothing.
	for _, e := range []store.Enrolment{
		proven("dev_4", "dev_1", first.Issued.Serial, "secret"),
		proven("dev_5", "dev_1", "bogus", "secret"),
		proven("dev_6", "dev_1", re.Issued.Serial, "field"),
	} {
		if e.Rebound || e.Device.ID == "dev_1" {
			t.Errorf("%s: re-bound dev_1", e.Device.ID)
		}
	}
	if d, _ := s.Device(ctx, "dev_1"); d.CertSerial != re.Issued.Serial {
		t.Errorf("dev_1 serial = %s, want %s", d.CertSerial, re.Issued.Serial)
	}

	// A re-bind token re-binds its device, once, whatever is claimed.
	if err := s.CreateToken(ctx, store.Token{ID: "tok_r", Hash: hash("rebind"), Group: "staff", Uses: 1, UsesLeft: 1, CreatedAt: t0, ExpiresAt: t0.Add(2 * time.Hour), RebindDevice: "dev_2"}); err != nil {
		t.Fatal(err)
	}
	if ts, _ := s.Tokens(ctx); !containsToken(ts, "tok_r", "dev_2") {
		t.Errorf("Tokens lost the re-bind device: %+v", ts)
	}
	byTok := mustEnroll(t, s, "rebind", "dev_7", "other-machine")
	if !byTok.Rebound || byTok.RebindBy != store.RebindByToken || byTok.Device.ID != "dev_2" {
		t.Fatalf("re-bind token: %+v", byTok)
	}
	if _, err := enroll(t, s, "rebind", "dev_8", "", t0.Add(time.Minute)); !errors.Is(err, store.ErrTokenUsedUp) {
		t.Errorf("second use of a re-bind token: %v", err)
	}
	if err := s.CreateToken(ctx, store.Token{ID: "tok_r2", Hash: hash("rebind2"), Group: "staff", Uses: 1, UsesLeft: 1, CreatedAt: t0, ExpiresAt: t0.Add(2 * time.Hour), RebindDevice: "dev_2"}); err != nil {
		t.Fatal(err)
	}

	// Retiring keeps the row, revokes it and its certificate, and ends
	// the duplicate; a re-bind token for it then fails.
	if err := s.RetireDevice(ctx, "dev_2", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireDevice(ctx, "dev_nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RetireDevice(unknown) = %v", err)
	}
	d, err := s.Device(ctx, "dev_2")
	if err != nil || !d.Revoked() {
		t.Errorf("retired device = %+v, %v", d, err)
	}
	if r, _ := s.SerialRevoked(ctx, byTok.Issued.Serial); !r {
		t.Error("retired device's serial not revoked")
	}
	if _, err := enroll(t, s, "rebind2", "dev_9", "", t0.Add(time.Minute)); !errors.Is(err, store.ErrRebindTarget) {
		t.Errorf("re-bind token of a retired device: %v, want ErrRebindTarget", err)
	}
	sets, _ = s.Duplicates(ctx)
	for _, set := range sets {
		for _, d := range set.Devices {
			if d.ID == "dev_2" {
				t.Errorf("retired device still listed as a duplicate: %+v", sets)
			}
		}
	}
	// Empty machine ids are never duplicates.
	mustEnroll(t, s, "secret", "dev_10", "")
	mustEnroll(t, s, "secret", "dev_11", "")
	sets, _ = s.Duplicates(ctx)
	for _, set := range sets {
		if set.MachineID == "" {
			t.Errorf("empty machine id listed: %+v", set)
		}
	}
}

func containsToken(ts []store.Token, id, device string) bool {
	for _, t := range ts {
		if t.ID == id && t.RebindDevice == device {
			return true
		}
	}
	return false
}

func testRevokeDevice(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	e := mustEnroll(t, s, "secret", "dev_1", "")
	if err := s.RevokeDevice(ctx, "dev_1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, err := s.Device(ctx, "dev_1")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Revoked() || !d.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("revoked device = %+v", d)
	}
	if r, _ := s.SerialRevoked(ctx, e.Issued.Serial); !r {
		t.Error("serial of revoked device not revoked")
	}
	if d.Status(t0.Add(time.Hour), time.Hour) != store.StatusRevoked {
		t.Errorf("status = %s", d.Status(t0, time.Hour))
	}
	if err := s.RevokeDevice(ctx, "dev_nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeDevice(unknown) = %v", err)
	}
	if _, err := s.Device(ctx, "dev_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Device(unknown) = %v", err)
	}
}

func report(dev string, seq uint64, at time.Time, verdicts ...store.Verdict) store.Report {
	r := store.Report{DeviceID: dev, Sequence: seq, ReceivedAt: at, CollectedAt: at.Add(-time.Second), AgentVersion: "1.0",
		PolicyName: "baseline", PolicyVersion: 1, Facts: []byte{0x0a, 0x00}}
	for i, v := range verdicts {
		r.Results = append(r.Results, store.RuleResult{RuleID: fmt.Sprintf("rule-%d", i), Title: "t", Family: "f", Severity: "high", Collector: v, Agent: v, Observed: "o", Expected: "e"})
	}
	return r
}

func testSaveIdempotent(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	r := report("dev_1", 1, t0.Add(time.Hour), store.Pass, store.Fail)
	stored, err := s.SaveReport(ctx, r)
	if err != nil || !stored {
		t.Fatalf("first save: stored=%v err=%v", stored, err)
	}
	changed := report("dev_1", 1, t0.Add(2*time.Hour), store.Pass, store.Pass)
	stored, err = s.SaveReport(ctx, changed)
	if err != nil || stored {
		t.Fatalf("second save of seq 1: stored=%v err=%v", stored, err)
	}
	rs, _ := s.Reports(ctx, "dev_1", 0)
	if len(rs) != 1 || !rs[0].ReceivedAt.Equal(t0.Add(time.Hour)) || len(rs[0].Results) != 2 || rs[0].Results[1].Collector != store.Fail {
		t.Fatalf("reports after re-delivery: %+v", rs)
	}
	if !bytes.Equal(rs[0].Facts, r.Facts) || rs[0].PolicyName != "baseline" || rs[0].AgentVersion != "1.0" {
		t.Errorf("stored report = %+v", rs[0])
	}
	d, _ := s.Device(ctx, "dev_1")
	if d.Pass != 1 || d.Fail != 1 || d.LastSequence != 1 || d.LastSeen == nil || !d.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("device after report = %+v", d)
	}
	if got := d.Status(t0.Add(time.Hour), 3*time.Hour); got != store.StatusFailing {
		t.Errorf("status = %s, want failing", got)
	}
	if got := d.Status(t0.Add(5*time.Hour), 3*time.Hour); got != store.StatusStale {
		t.Errorf("status later = %s, want stale", got)
	}
}

func testFailingSince(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	steps := []store.Verdict{store.Pass, store.Fail, store.Fail, store.Pass, store.Fail}
	for i, v := range steps {
		if _, err := s.SaveReport(ctx, report("dev_1", uint64(i+1), at(i+1), v)); err != nil {
			t.Fatal(err)
		}
		fs, err := s.FailingSince(ctx, "dev_1")
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]int{1: 2, 2: 2, 4: 5} // step index -> hour failing began
		if h, failing := want[i]; failing {
			if got, ok := fs["rule-0"]; !ok || !got.Equal(at(h).Add(-time.Second)) {
				t.Errorf("step %d: failing_since = %v, want %v", i, got, at(h).Add(-time.Second))
			}
		} else if len(fs) != 0 {
			t.Errorf("step %d: failing_since = %v, want none", i, fs)
		}
	}
	tr, err := s.Transitions(ctx, "dev_1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range tr {
		got = append(got, fmt.Sprintf("%d:%s>%s", x.Sequence, x.From, x.To))
	}
	want := "[1:>PASS 2:PASS>FAIL 4:FAIL>PASS 5:PASS>FAIL]"
	if fmt.Sprint(got) != want {
		t.Errorf("transitions = %v, want %s", got, want)
	}
	st, _ := s.RuleStates(ctx, "dev_1")
	if len(st) != 1 || st[0].Collector != store.Fail || st[0].FailingSince == nil || st[0].Sequence != 5 || st[0].Agent != store.Fail {
		t.Errorf("rule states = %+v", st)
	}
}

func testLateReport(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	if _, err := s.SaveReport(ctx, report("dev_1", 5, t0.Add(5*time.Hour), store.Pass)); err != nil {
		t.Fatal(err)
	}
	stored, err := s.SaveReport(ctx, report("dev_1", 3, t0.Add(6*time.Hour), store.Fail))
	if err != nil || !stored {
		t.Fatalf("late report: stored=%v err=%v", stored, err)
	}
	st, _ := s.RuleStates(ctx, "dev_1")
	if len(st) != 1 || st[0].Collector != store.Pass || st[0].Sequence != 5 {
		t.Errorf("late report changed latest state: %+v", st)
	}
	rs, _ := s.Reports(ctx, "dev_1", 0)
	if len(rs) != 2 || rs[0].Sequence != 5 || rs[1].Sequence != 3 {
		t.Errorf("reports = %d", len(rs))
	}
	if rs, _ := s.Reports(ctx, "dev_1", 1); len(rs) != 1 || rs[0].Sequence != 5 {
		t.Errorf("Reports(limit 1) = %+v", rs)
	}
	d, _ := s.Device(ctx, "dev_1")
	if d.LastSequence != 5 || !d.LastSeen.Equal(t0.Add(6*time.Hour)) {
		t.Errorf("device = last_sequence %d last_seen %v", d.LastSequence, d.LastSeen)
	}
}

func testPolicies(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Policy(ctx, "staff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Policy(none) = %v", err)
	}
	for v := 1; v <= 2; v++ {
		err := s.SetPolicy(ctx, store.GroupPolicy{Group: "staff", Name: "strict", Version: v, Document: []byte(fmt.Sprintf("version: %d", v)), UpdatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.Policy(ctx, "staff")
	if err != nil || p.Name != "strict" || p.Version != 2 || string(p.Document) != "version: 2" {
		t.Errorf("Policy = %+v, %v", p, err)
	}
	ps, _ := s.Policies(ctx)
	if len(ps) != 1 {
		t.Errorf("Policies = %d", len(ps))
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 4, time.Hour)
	for i := range 4 {
		mustEnroll(t, s, "secret", fmt.Sprintf("dev_%d", i), "")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*20*2)
	for i := range 4 {
		for seq := 1; seq <= 20; seq++ {
			for range 2 { // every report delivered twice, concurrently
				wg.Go(func() {
					_, err := s.SaveReport(ctx, report(fmt.Sprintf("dev_%d", i), uint64(seq), t0.Add(time.Duration(seq)*time.Minute), store.Pass))
					if err != nil {
						errs <- err
					}
				})
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range 4 {
		rs, _ := s.Reports(ctx, fmt.Sprintf("dev_%d", i), 0)
		if len(rs) != 20 {
			t.Errorf("dev_%d: %d reports, want 20", i, len(rs))
		}
	}
}
