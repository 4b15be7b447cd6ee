package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

var enrolTests = []struct {
	name string
	fn   func(*testing.T, store.Store)
}{
	{"ConcurrentEnrolmentsKeepTokenLimits", testConcurrentEnrolments},
	{"EnrollStartsEpoch", testEnrollStartsEpoch},
}

// testEnrollStartsEpoch: with StartEpoch an enrolment starts the device's
// first epoch, and a re-bind its next, as StartEpoch after it would; a
// refused enrolment starts none.
func testEnrollStartsEpoch(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_e", "e", "default", 2, time.Hour)
	at := t0.Add(time.Minute)
	e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("e"), Now: at, NewID: "dev_e", StartEpoch: true}, signer)
	if err != nil || e.Epoch != 1 {
		t.Fatalf("Enroll = epoch %d, %v; want 1", e.Epoch, err)
	}
	if ep, err := s.Epoch(ctx, "dev_e"); err != nil || ep.Number != 1 || !ep.StartedAt.Equal(at) {
		t.Fatalf("Epoch = %+v, %v; want 1 started at %v", ep, err, at)
	}
	if _, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("e"), Now: at, NewID: "dev_f"}, signer); err != nil {
		t.Fatal(err)
	}
	if ep, err := s.Epoch(ctx, "dev_f"); err != nil || ep.Number != 0 {
		t.Fatalf("Epoch without StartEpoch = %+v, %v; want 0", ep, err)
	}
	if e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("e"), Now: at, NewID: "dev_g", StartEpoch: true}, signer); !errors.Is(err, store.ErrTokenUsedUp) || e.Epoch != 0 {
		t.Fatalf("Enroll with a used-up token = %+v, %v", e, err)
	}
	if err := s.CreateToken(ctx, store.Token{ID: "tok_rb", Hash: hash("rb"), Group: "default", Uses: 1, UsesLeft: 1, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), RebindDevice: "dev_e"}); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(2 * time.Minute)
	e, err = s.Enroll(ctx, store.EnrollParams{TokenHash: hash("rb"), Now: later, NewID: "dev_h", StartEpoch: true}, signer)
	if err != nil || !e.Rebound || e.Device.ID != "dev_e" || e.Epoch != 2 {
		t.Fatalf("re-bind = %+v, %v; want dev_e at epoch 2", e, err)
	}
	if ep, err := s.Epoch(ctx, "dev_e"); err != nil || ep.Number != 2 || !ep.StartedAt.Equal(later) {
		t.Fatalf("Epoch after re-bind = %+v, %v", ep, err)
	}
}

// testConcurrentEnrolments enrols at once through a token with fewer uses
// than callers, a revoked one, an expired one and a roomy one whose
// devices all send one machine id: however the store orders, locks or
// batches them, exactly the token's uses succeed, the others are refused
// for the right reason, uses_left ends exact, and every device lists the
// ones of its machine enrolled before it as duplicates.
func testConcurrentEnrolments(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_few", "few", "default", 7, time.Hour)
	mkToken(t, s, "tok_rev", "rev", "default", 50, time.Hour)
	mkToken(t, s, "tok_old", "old", "default", 50, time.Minute)
	mkToken(t, s, "tok_dup", "dup", "staff", 100, time.Hour)
	if err := s.RevokeToken(ctx, "tok_rev", t0); err != nil {
		t.Fatal(err)
	}
	var serial atomic.Int64
	sign := func(id string) (store.Issued, error) {
		return store.Issued{Serial: fmt.Sprintf("c%x", serial.Add(1)), NotAfter: t0.AddDate(1, 0, 0), DER: []byte("cert-" + id)}, nil
	}
	type call struct {
		secret, id, machine string
		out                 store.Enrolment
		err                 error
	}
	var calls []*call
	add := func(secret string, n int, machine func(int) string) {
		for i := range n {
			calls = append(calls, &call{secret: secret, id: fmt.Sprintf("dev_%s_%02d", secret, i), machine: machine(i)})
		}
	}
	own := func(i int) string { return fmt.Sprintf("m-%d", i) }
	add("few", 30, own)
	add("rev", 10, own)
	add("old", 10, own)
	add("dup", 10, func(int) string { return "m-shared" })
	now := t0.Add(30 * time.Minute) // tok_old expired; the others not
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, c := range calls {
		wg.Go(func() {
			<-start
			c.out, c.err = s.Enroll(ctx, store.EnrollParams{
				TokenHash: hash(c.secret), Now: now, NewID: c.id,
				Info: store.DeviceInfo{Hostname: "h-" + c.id, Platform: "linux", MachineID: c.machine},
			}, sign)
		})
	}
	close(start)
	wg.Wait()

	ok := map[string]int{}
	var dupLens []int
	for _, c := range calls {
		want := map[string]error{"rev": store.ErrTokenRevoked, "old": store.ErrTokenExpired}[c.secret]
		switch {
		case c.err == nil:
			ok[c.secret]++
			if c.out.Device.ID != c.id || c.out.Rebound || c.out.Issued.Serial == "" || c.out.Device.CertSerial != c.out.Issued.Serial {
				t.Errorf("%s: enrolment %+v", c.id, c.out)
			}
			if c.secret == "dup" {
				dupLens = append(dupLens, len(c.out.Duplicates))
			} else if len(c.out.Duplicates) > 0 {
				t.Errorf("%s: duplicates %v", c.id, c.out.Duplicates)
			}
		case want != nil && !errors.Is(c.err, want):
			t.Errorf("%s: err %v, want %v", c.id, c.err, want)
		case want == nil && c.secret == "few" && !errors.Is(c.err, store.ErrTokenUsedUp):
			t.Errorf("%s: err %v, want %v", c.id, c.err, store.ErrTokenUsedUp)
		case want == nil && c.secret == "dup":
			t.Errorf("%s: err %v", c.id, c.err)
		}
	}
	if ok["few"] != 7 || ok["rev"] != 0 || ok["old"] != 0 || ok["dup"] != 10 {
		t.Errorf("enrolled per token %v, want few 7, dup 10", ok)
	}
	slices.Sort(dupLens)
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(dupLens, want) {
		t.Errorf("duplicates listed per device %v, want %v (each lists the ones before it)", dupLens, want)
	}
	toks, err := s.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]int{}
	for _, tk := range toks {
		left[tk.ID] = tk.UsesLeft
	}
	if left["tok_few"] != 0 || left["tok_rev"] != 50 || left["tok_old"] != 50 || left["tok_dup"] != 90 {
		t.Errorf("uses left %v", left)
	}
	devs, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]int{}
	for _, d := range devs {
		groups[d.Group]++
	}
	if len(devs) != 17 || groups["default"] != 7 || groups["staff"] != 10 {
		t.Errorf("devices by group %v (%d)", groups, len(devs))
	}
	// Once used up, the token refuses.
	if _, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("few"), Now: now, NewID: "dev_late"}, sign); !errors.Is(err, store.ErrTokenUsedUp) {
		t.Errorf("enrol after the last use: %v", err)
	}
}
