package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunSignInConformance runs the suite for store.SignIn: the dashboard's
// TOTP second factor, sign-ins waiting for it, and OpenID Connect links.
// newStore's stores must implement store.SignIn. deleteUser removes a
// user the way the backend's schema does (the rows of this suite must go
// with it).
func RunSignInConformance(t *testing.T, newStore func() store.Dashboard, deleteUser func(store.Dashboard, string) error) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Dashboard, store.SignIn)
	}{
		{"TOTPEnrolConfirmReset", testTOTPLifecycle},
		{"TOTPStepUsedOnce", testTOTPStepOnce},
		{"PendingSignIns", testPendingSignIns},
		{"OIDCLinks", testOIDCLinks},
		{"GoneWithTheirUser", func(t *testing.T, s store.Dashboard, si store.SignIn) { testSignInCascade(t, s, si, deleteUser) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			si, ok := s.(store.SignIn)
			if !ok {
				t.Fatalf("%T does not implement store.SignIn", s)
			}
			tc.fn(t, s, si)
		})
	}
}

func mkViewer(t *testing.T, s store.Dashboard, name string) {
	t.Helper()
	if err := s.CreateUser(context.Background(), store.User{Name: name, Role: store.RoleViewer, Hash: []byte("$2a$hash"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

func testTOTPLifecycle(t *testing.T, s store.Dashboard, si store.SignIn) {
	ctx := context.Background()
	if err := si.SetTOTP(ctx, "nobody", []byte("x"), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetTOTP for a missing user: %v, want ErrNotFound", err)
	}
	mkViewer(t, s, "amina")
	if _, err := si.TOTP(ctx, "amina"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TOTP before enrolment: %v, want ErrNotFound", err)
	}
	if err := si.ConfirmTOTP(ctx, "amina", 5, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ConfirmTOTP with nothing to confirm: %v, want ErrNotFound", err)
	}
	if err := si.SetTOTP(ctx, "amina", []byte("first"), t0); err != nil {
		t.Fatal(err)
	}
	// An unconfirmed secret may be replaced (the user started over).
	if err := si.SetTOTP(ctx, "amina", []byte("second"), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := si.TOTP(ctx, "amina")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Secret, []byte("second")) || got.ConfirmedAt != nil || !got.CreatedAt.Equal(t0.Add(time.Minute)) || got.LastStep != 0 {
		t.Fatalf("pending TOTP = %+v", got)
	}
	// Not confirmed: no code counts.
	if ok, err := si.UseTOTPStep(ctx, "amina", 10); err != nil || ok {
		t.Fatalf("UseTOTPStep before confirmation = %v, %v; want false", ok, err)
	}
	if err := si.ConfirmTOTP(ctx, "amina", 100, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := si.ConfirmTOTP(ctx, "amina", 101, t0.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second ConfirmTOTP: %v, want ErrNotFound", err)
	}
	got, err = si.TOTP(ctx, "amina")
	if err != nil {
		t.Fatal(err)
	}
	if got.ConfirmedAt == nil || !got.ConfirmedAt.Equal(t0.Add(2*time.Minute)) || got.LastStep != 100 {
		t.Fatalf("confirmed TOTP = %+v", got)
	}
	// A confirmed secret is never replaced by enrolling again.
	if err := si.SetTOTP(ctx, "amina", []byte("third"), t0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("SetTOTP over a confirmed one: %v, want ErrExists", err)
	}
	if got, _ := si.TOTP(ctx, "amina"); !bytes.Equal(got.Secret, []byte("second")) {
		t.Fatalf("secret after refused SetTOTP = %q", got.Secret)
	}
	if err := si.DeleteTOTP(ctx, "amina"); err != nil {
		t.Fatal(err)
	}
	if err := si.DeleteTOTP(ctx, "amina"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteTOTP: %v, want ErrNotFound", err)
	}
	if _, err := si.TOTP(ctx, "amina"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TOTP after reset: %v, want ErrNotFound", err)
	}
	// After a reset the user enrols afresh.
	if err := si.SetTOTP(ctx, "amina", []byte("fourth"), t0); err != nil {
		t.Fatal(err)
	}
}

func testTOTPStepOnce(t *testing.T, s store.Dashboard, si store.SignIn) {
	ctx := context.Background()
	mkViewer(t, s, "amina")
	if err := si.SetTOTP(ctx, "amina", []byte("k"), t0); err != nil {
		t.Fatal(err)
	}
	if err := si.ConfirmTOTP(ctx, "amina", 100, t0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		step int64
		ok   bool
	}{{100, false}, {99, false}, {101, true}, {101, false}, {103, true}, {102, false}} {
		ok, err := si.UseTOTPStep(ctx, "amina", c.step)
		if err != nil || ok != c.ok {
			t.Fatalf("UseTOTPStep(%d) = %v, %v; want %v", c.step, ok, err, c.ok)
		}
	}
	// Eight collectors given the same code at once: one takes it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Go(func() {
			ok, err := si.UseTOTPStep(ctx, "amina", 200)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if ok {
				won++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d of 8 concurrent uses of one step succeeded, want 1", won)
	}
	if got, _ := si.TOTP(ctx, "amina"); got.LastStep != 200 {
		t.Fatalf("LastStep = %d, want 200", got.LastStep)
	}
}

func testPendingSignIns(t *testing.T, s store.Dashboard, si store.SignIn) {
	ctx := context.Background()
	mkViewer(t, s, "amina")
	p := store.PendingSignIn{IDHash: hash("p1"), User: "amina", CSRF: "c1", CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	if err := si.CreatePendingSignIn(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := si.PendingSignIn(ctx, hash("p1"), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "amina" || got.CSRF != "c1" || !got.ExpiresAt.Equal(p.ExpiresAt) || !got.CreatedAt.Equal(t0) || !bytes.Equal(got.IDHash, hash("p1")) {
		t.Fatalf("PendingSignIn = %+v", got)
	}
	if _, err := si.PendingSignIn(ctx, hash("p1"), t0.Add(5*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired pending sign-in: %v, want ErrNotFound", err)
	}
	if _, err := si.PendingSignIn(ctx, hash("other"), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown pending sign-in: %v, want ErrNotFound", err)
	}
	// A later one sweeps the expired ones.
	if err := si.CreatePendingSignIn(ctx, store.PendingSignIn{IDHash: hash("p2"), User: "amina", CSRF: "c2", CreatedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Hour + 5*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := si.PendingSignIn(ctx, hash("p1"), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("swept pending sign-in still there: %v", err)
	}
	if err := si.DeletePendingSignIn(ctx, hash("p2")); err != nil {
		t.Fatal(err)
	}
	if err := si.DeletePendingSignIn(ctx, hash("p2")); err != nil {
		t.Fatalf("deleting a missing pending sign-in: %v", err)
	}
	if _, err := si.PendingSignIn(ctx, hash("p2"), t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted pending sign-in: %v, want ErrNotFound", err)
	}
	// A TOTP reset ends the user's half-done sign-ins.
	if err := si.SetTOTP(ctx, "amina", []byte("k"), t0); err != nil {
		t.Fatal(err)
	}
	if err := si.CreatePendingSignIn(ctx, store.PendingSignIn{IDHash: hash("p3"), User: "amina", CSRF: "c3", CreatedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := si.DeleteTOTP(ctx, "amina"); err != nil {
		t.Fatal(err)
	}
	if _, err := si.PendingSignIn(ctx, hash("p3"), t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pending sign-in after TOTP reset: %v, want ErrNotFound", err)
	}
}

func testOIDCLinks(t *testing.T, s store.Dashboard, si store.SignIn) {
	ctx := context.Background()
	mkViewer(t, s, "dana@example.com") // a local account
	l := store.OIDCLink{Issuer: "https://idp.example", Subject: "s-1", Name: "amina@example.com", Role: store.RoleViewer, At: t0}
	u, err := si.LinkOIDC(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "amina@example.com" || u.Role != store.RoleViewer || len(u.Hash) != 0 || !u.CreatedAt.Equal(t0) {
		t.Fatalf("first LinkOIDC = %+v", u)
	}
	// The next sign-in finds the user by (issuer, subject), whatever its
	// e-mail address is now, and takes the role it maps to now.
	l.Name, l.Role, l.At = "amina.k@example.com", store.RoleAdmin, t0.Add(time.Hour)
	u, err = si.LinkOIDC(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "amina@example.com" || u.Role != store.RoleAdmin || !u.CreatedAt.Equal(t0) {
		t.Fatalf("second LinkOIDC = %+v", u)
	}
	if got, _ := s.User(ctx, "amina@example.com"); got.Role != store.RoleAdmin {
		t.Fatalf("stored role = %q, want admin", got.Role)
	}
	// An identity never takes over a local account of the same name.
	_, err = si.LinkOIDC(ctx, store.OIDCLink{Issuer: "https://idp.example", Subject: "s-2", Name: "dana@example.com", Role: store.RoleAdmin, At: t0})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("LinkOIDC onto a local account: %v, want ErrExists", err)
	}
	if got, _ := s.User(ctx, "dana@example.com"); got.Role != store.RoleViewer || string(got.Hash) != "$2a$hash" {
		t.Fatalf("local account changed: %+v", got)
	}
	// Nor another provider's identity that has the name.
	_, err = si.LinkOIDC(ctx, store.OIDCLink{Issuer: "https://other.example", Subject: "s-1", Name: "amina@example.com", Role: store.RoleAdmin, At: t0})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("LinkOIDC from another issuer onto a linked name: %v, want ErrExists", err)
	}
}

func testSignInCascade(t *testing.T, s store.Dashboard, si store.SignIn, deleteUser func(store.Dashboard, string) error) {
	ctx := context.Background()
	u, err := si.LinkOIDC(ctx, store.OIDCLink{Issuer: "https://idp.example", Subject: "s-1", Name: "amina@example.com", Role: store.RoleViewer, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := si.SetTOTP(ctx, u.Name, []byte("k"), t0); err != nil {
		t.Fatal(err)
	}
	if err := si.CreatePendingSignIn(ctx, store.PendingSignIn{IDHash: hash("p"), User: u.Name, CSRF: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := deleteUser(s, u.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := si.TOTP(ctx, u.Name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TOTP of a removed user: %v", err)
	}
	if _, err := si.PendingSignIn(ctx, hash("p"), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pending sign-in of a removed user: %v", err)
	}
	// The identity is free again: its next sign-in makes a new user.
	u2, err := si.LinkOIDC(ctx, store.OIDCLink{Issuer: "https://idp.example", Subject: "s-1", Name: "amina@example.com", Role: store.RoleAdmin, At: t0.Add(time.Hour)})
	if err != nil || !u2.CreatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("LinkOIDC after removal = %+v, %v", u2, err)
	}
}
