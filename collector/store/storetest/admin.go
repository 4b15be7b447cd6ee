package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunAdminConformance runs the suite for store.Admin: users, the audit
// log's filters, hostnames and token rollouts.
func RunAdminConformance(t *testing.T, newStore func() store.Dashboard) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Dashboard)
	}{
		{"UserChangesAreAudited", testUserChanges},
		{"LastAdminStays", testLastAdmin},
		{"LastAdminStaysUnderConcurrency", testLastAdminConcurrent},
		{"AuditQueryFilters", testAuditQuery},
		{"HostnamesAndRollout", testRollout},
		{"DeviceAndWaiverChangesAudited", testAuditedChanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func mkUser(t *testing.T, s store.Dashboard, name, role string) {
	t.Helper()
	if err := s.CreateUser(context.Background(), store.User{Name: name, Role: role, Hash: []byte("hash-" + name), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

func mkSession(t *testing.T, s store.Dashboard, id, user string, at time.Time, ttl time.Duration) {
	t.Helper()
	if err := s.CreateSession(context.Background(), store.Session{IDHash: hash(id), User: user, CSRF: "c", CreatedAt: at, ExpiresAt: at.Add(ttl)}); err != nil {
		t.Fatal(err)
	}
}

// entries returns the audit log's actions on target, oldest first.
func entries(t *testing.T, s store.Dashboard, target string) []string {
	t.Helper()
	es, err := s.AuditQuery(context.Background(), store.AuditFilter{Target: target, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Actor+" "+e.Action+" "+e.Detail)
	}
	slices.Reverse(out)
	return out
}

func entry(actor, action, detail string) store.AuditEntry {
	return store.AuditEntry{At: t0.Add(time.Hour), Actor: actor, Action: action, Detail: detail}
}

func testUserChanges(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	mkUser(t, s, "amina", store.RoleAdmin)
	if err := s.CreateUserAudited(ctx, store.User{Name: "victor", Role: store.RoleViewer, Hash: []byte("hash-victor"), CreatedAt: t0}, entry("amina", "user.add", "role viewer")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUserAudited(ctx, store.User{Name: "victor", Role: store.RoleAdmin, Hash: []byte("x"), CreatedAt: t0}, entry("amina", "user.add", "again")); !errors.Is(err, store.ErrExists) {
		t.Errorf("second victor: %v, want ErrExists", err)
	}
	mkSession(t, s, "v1", "victor", t0, time.Hour)
	mkSession(t, s, "v2", "victor", t0.Add(20*time.Minute), time.Hour)
	mkSession(t, s, "v-old", "victor", t0.Add(-2*time.Hour), time.Hour) // expired at t0+30m
	mkSession(t, s, "a1", "amina", t0.Add(20*time.Minute), time.Hour)

	us, err := s.UserList(ctx, t0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 || us[0].Name != "amina" || us[1].Name != "victor" {
		t.Fatalf("UserList = %+v", us)
	}
	if v := us[1]; v.Role != store.RoleViewer || v.Sessions != 2 || v.LastSession == nil || !v.LastSession.Equal(t0.Add(20*time.Minute)) || !v.CreatedAt.Equal(t0) {
		t.Errorf("victor = %+v, want 2 live sessions, the last at t0+20m", v)
	}

	// A role change: sessions keep going with the new role.
	changed, err := s.SetUserRole(ctx, "victor", store.RoleAdmin, entry("amina", "user.set-role", "viewer → admin"))
	if err != nil || !changed {
		t.Fatalf("SetUserRole: %v, %v", changed, err)
	}
	if se, err := s.Session(ctx, hash("v1"), t0.Add(30*time.Minute)); err != nil || se.Role != store.RoleAdmin {
		t.Errorf("victor's session after promotion = %+v, %v", se, err)
	}
	if changed, err := s.SetUserRole(ctx, "victor", store.RoleAdmin, entry("amina", "user.set-role", "again")); err != nil || changed {
		t.Errorf("setting the same role: changed %v, %v", changed, err)
	}
	if _, err := s.SetUserRole(ctx, "nobody", store.RoleAdmin, entry("amina", "user.set-role", "")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetUserRole(nobody) = %v, want ErrNotFound", err)
	}

	// End sessions: the live ones are counted, every one is gone.
	n, err := s.EndSessions(ctx, "victor", store.AuditEntry{At: t0.Add(30 * time.Minute), Actor: "cli:root", Action: "user.end-sessions"})
	if err != nil || n != 2 {
		t.Fatalf("EndSessions = %d, %v, want 2", n, err)
	}
	for _, id := range []string{"v1", "v2"} {
		if _, err := s.Session(ctx, hash(id), t0.Add(30*time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %s after EndSessions: %v", id, err)
		}
	}
	if _, err := s.Session(ctx, hash("a1"), t0.Add(30*time.Minute)); err != nil {
		t.Errorf("amina's session ended with victor's: %v", err)
	}

	// A new password replaces the hash and signs the user out.
	mkSession(t, s, "v3", "victor", t0.Add(40*time.Minute), time.Hour)
	if err := s.SetUserPassword(ctx, "victor", []byte("new-hash"), entry("cli:root", "user.reset-password", "")); err != nil {
		t.Fatal(err)
	}
	if u, err := s.User(ctx, "victor"); err != nil || string(u.Hash) != "new-hash" {
		t.Errorf("victor after reset = %+v, %v", u, err)
	}
	if _, err := s.Session(ctx, hash("v3"), t0.Add(45*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after password reset: %v, want ended", err)
	}
	if err := s.SetUserPassword(ctx, "nobody", []byte("x"), entry("cli:root", "user.reset-password", "")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetUserPassword(nobody) = %v", err)
	}

	// Remove: the user and their sessions go.
	mkSession(t, s, "v4", "victor", t0.Add(50*time.Minute), time.Hour)
	if err := s.RemoveUser(ctx, "victor", entry("amina", "user.remove", "was admin")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User(ctx, "victor"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("User(victor) after remove: %v", err)
	}
	if _, err := s.Session(ctx, hash("v4"), t0.Add(55*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of a removed user: %v", err)
	}
	if err := s.RemoveUser(ctx, "victor", entry("amina", "user.remove", "")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second RemoveUser = %v, want ErrNotFound", err)
	}
	// A user of the same name later is a new user, with no old sessions.
	mkUser(t, s, "victor", store.RoleViewer)
	if us, _ := s.UserList(ctx, t0.Add(55*time.Minute)); len(us) != 2 || us[1].Sessions != 0 {
		t.Errorf("UserList after re-adding victor = %+v", us)
	}

	// Every change, and only changes, wrote one entry, with the target
	// filled in.
	want := []string{
		"amina user.add role viewer",
		"amina user.set-role viewer → admin",
		"cli:root user.end-sessions ",
		"cli:root user.reset-password ",
		"amina user.remove was admin",
	}
	if got := entries(t, s, "victor"); !slices.Equal(got, want) {
		t.Errorf("audit entries on victor:\n got %q\nwant %q", got, want)
	}
}

func testLastAdmin(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	mkUser(t, s, "amina", store.RoleAdmin)
	mkUser(t, s, "victor", store.RoleViewer)
	if _, err := s.SetUserRole(ctx, "amina", store.RoleViewer, entry("amina", "user.set-role", "")); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("demoting the only admin: %v, want ErrLastAdmin", err)
	}
	if err := s.RemoveUser(ctx, "amina", entry("amina", "user.remove", "")); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("removing the only admin: %v, want ErrLastAdmin", err)
	}
	if u, err := s.User(ctx, "amina"); err != nil || u.Role != store.RoleAdmin {
		t.Errorf("amina after refusals = %+v, %v", u, err)
	}
	if got := entries(t, s, "amina"); len(got) != 0 {
		t.Errorf("refused changes wrote audit entries: %q", got)
	}
	// A viewer can always go; with a second admin, the first can too.
	if err := s.RemoveUser(ctx, "victor", entry("amina", "user.remove", "")); err != nil {
		t.Errorf("removing a viewer: %v", err)
	}
	mkUser(t, s, "zoe", store.RoleAdmin)
	if _, err := s.SetUserRole(ctx, "amina", store.RoleViewer, entry("zoe", "user.set-role", "")); err != nil {
		t.Errorf("demoting one of two admins: %v", err)
	}
	if err := s.RemoveUser(ctx, "zoe", entry("zoe", "user.remove", "")); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("removing the admin left: %v, want ErrLastAdmin", err)
	}
}

// testLastAdminConcurrent demotes and removes every admin at once: the
// store must let all but one through, whatever the interleaving.
func testLastAdminConcurrent(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	const admins = 6
	for i := range admins {
		mkUser(t, s, fmt.Sprintf("admin%d", i), store.RoleAdmin)
	}
	var wg sync.WaitGroup
	errs := make([]error, admins)
	for i := range admins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("admin%d", i)
			if i%2 == 0 {
				_, errs[i] = s.SetUserRole(ctx, name, store.RoleViewer, entry("x", "user.set-role", ""))
			} else {
				errs[i] = s.RemoveUser(ctx, name, entry("x", "user.remove", ""))
			}
		}()
	}
	wg.Wait()
	refused := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, store.ErrLastAdmin):
			refused++
		case err != nil:
			t.Errorf("admin%d: %v", i, err)
		}
	}
	us, err := s.UserList(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, u := range us {
		if u.Role == store.RoleAdmin {
			left++
		}
	}
	if left != 1 || refused != 1 {
		t.Errorf("%d admins left, %d refusals; want exactly 1 and 1 (users %+v)", left, refused, us)
	}
	es, _ := s.AuditQuery(ctx, store.AuditFilter{Action: "user.", Limit: 100})
	if len(es) != admins-1 {
		t.Errorf("%d audit entries, want %d (one per change made)", len(es), admins-1)
	}
}

func testAuditQuery(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	add := func(min int, actor, action, target string) {
		t.Helper()
		if err := s.AddAudit(ctx, store.AuditEntry{At: t0.Add(time.Duration(min) * time.Minute), Actor: actor, Action: action, Target: target, Detail: fmt.Sprint(min)}); err != nil {
			t.Fatal(err)
		}
	}
	add(0, "cli:root", "token.create", "tok_1")
	add(1, "token tok_1", "device.enrol", "dev_1")
	add(2, "amina", "user.add", "victor")
	add(3, "amina", "user.set-role", "victor")
	add(4, "cli:root", "device.revoke", "dev_1")
	add(5, "amina", "user-ish", "x") // not a user. action: the prefix ends at the dot
	add(6, "cli:root", "policy.apply", "hq")
	details := func(f store.AuditFilter) []string {
		t.Helper()
		es, err := s.AuditQuery(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Detail)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    store.AuditFilter
		want []string
	}{
		{"all, newest first", store.AuditFilter{}, []string{"6", "5", "4", "3", "2", "1", "0"}},
		{"actor", store.AuditFilter{Actor: "cli:root"}, []string{"6", "4", "0"}},
		{"action", store.AuditFilter{Action: "user.add"}, []string{"2"}},
		{"action prefix", store.AuditFilter{Action: "user."}, []string{"3", "2"}},
		{"actor and prefix", store.AuditFilter{Actor: "cli:root", Action: "device."}, []string{"4"}},
		{"target", store.AuditFilter{Target: "dev_1"}, []string{"4", "1"}},
		{"since", store.AuditFilter{Since: t0.Add(4 * time.Minute)}, []string{"6", "5", "4"}},
		{"limit", store.AuditFilter{Limit: 2}, []string{"6", "5"}},
		{"nothing", store.AuditFilter{Actor: "nobody"}, nil},
	} {
		if got := details(c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// Paging by id: the page after the first two.
	first, _ := s.AuditQuery(ctx, store.AuditFilter{Limit: 2})
	if got := details(store.AuditFilter{Limit: 2, Before: first[1].ID}); !slices.Equal(got, []string{"4", "3"}) {
		t.Errorf("second page: %q", got)
	}
	if e := first[0]; e.Actor != "cli:root" || e.Action != "policy.apply" || e.Target != "hq" || !e.At.Equal(t0.Add(6*time.Minute)) {
		t.Errorf("newest entry = %+v", e)
	}
}

func testRollout(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret-a", "field", 5, time.Hour)
	mkToken(t, s, "tok_b", "secret-b", "field", 5, time.Hour)
	for i, id := range []string{"dev_3", "dev_1", "dev_2"} {
		if _, err := enroll(t, s, "secret-a", id, "m-"+id, t0.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := enroll(t, s, "secret-b", "dev_9", "", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// dev_1 reports with a newer agent than it enrolled with.
	r := report("dev_1", 1, t0.Add(10*time.Minute), store.Pass)
	r.AgentVersion = "1.4.0"
	if _, err := s.SaveReport(ctx, r); err != nil {
		t.Fatal(err)
	}
	ro, err := s.TokenRollout(ctx, "tok_a")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range ro.Devices {
		ids = append(ids, d.ID+" "+d.By+" "+d.Hostname)
	}
	if want := []string{"dev_3 device.enrol h-dev_3", "dev_1 device.enrol h-dev_1", "dev_2 device.enrol h-dev_2"}; !slices.Equal(ids, want) {
		t.Errorf("rollout of tok_a: %q, want %q (in enrolment order)", ids, want)
	}
	if ro.Token.ID != "tok_a" || ro.Token.UsesLeft != 2 {
		t.Errorf("rollout token = %+v", ro.Token)
	}
	if !ro.Devices[0].At.Equal(t0.Add(time.Minute)) {
		t.Errorf("dev_3 enrolled at %v, want %v", ro.Devices[0].At, t0.Add(time.Minute))
	}
	if n := ro.NeverReported(); n != 2 {
		t.Errorf("never reported = %d, want 2", n)
	}
	if v := ro.AgentVersions(); v["1.4.0"] != 1 || v[""] != 2 || len(v) != 2 {
		t.Errorf("agent versions = %v, want 1.4.0 once and the enrolment's (empty) twice", v)
	}
	// A revoked device stays in its rollout.
	if err := s.RevokeDevice(ctx, "dev_2", t0.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ro, _ := s.TokenRollout(ctx, "tok_a"); len(ro.Devices) != 3 || !ro.Devices[2].Revoked() {
		t.Errorf("rollout after revoking dev_2 = %+v", ro.Devices)
	}
	if ro, err := s.TokenRollout(ctx, "tok_b"); err != nil || len(ro.Devices) != 1 || ro.Devices[0].ID != "dev_9" {
		t.Errorf("rollout of tok_b = %+v, %v", ro, err)
	}
	if _, err := s.TokenRollout(ctx, "tok_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rollout of an unknown token: %v, want ErrNotFound", err)
	}

	hs, err := s.Hostnames(ctx, []string{"dev_1", "dev_9", "dev_missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs["dev_1"] != "h-dev_1" || hs["dev_9"] != "h-dev_9" {
		t.Errorf("Hostnames = %v", hs)
	}
	if hs, err := s.Hostnames(ctx, nil); err != nil || len(hs) != 0 {
		t.Errorf("Hostnames(nil) = %v, %v", hs, err)
	}
}

func testAuditedChanges(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret-a", "field", 5, time.Hour)
	mustEnroll(t, s, "secret-a", "dev_1", "")
	mustEnroll(t, s, "secret-a", "dev_2", "")
	at := t0.Add(time.Hour)

	if err := s.RevokeDeviceAudited(ctx, "dev_1", false, store.AuditEntry{At: at, Actor: "amina", Action: "device.revoke", Detail: "hostname h-dev_1"}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Device(ctx, "dev_1"); d.RevokedAt == nil || !d.RevokedAt.Equal(at) {
		t.Errorf("dev_1 after revoke = %+v", d)
	}
	if revoked, _ := s.SerialRevoked(ctx, mustDevice(t, s, "dev_1").CertSerial); !revoked {
		t.Error("dev_1's certificate is not revoked")
	}
	if err := s.RevokeDeviceAudited(ctx, "dev_2", true, store.AuditEntry{At: at, Actor: "cli:root", Action: "device.retire"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.FleetCounts(ctx, at, time.Hour); c.Revoked != 2 || c.Devices != 0 {
		t.Errorf("fleet after revoking both = %+v", c)
	}
	if err := s.RevokeDeviceAudited(ctx, "dev_nope", false, store.AuditEntry{At: at, Actor: "amina", Action: "device.revoke"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking an unknown device: %v, want ErrNotFound", err)
	}

	w := store.Waiver{ID: "wvr_1", DeviceID: "dev_1", RuleID: "rule-0", Reason: "r", CreatedBy: "amina", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := s.CreateWaiverAudited(ctx, w, store.AuditEntry{At: at, Actor: "amina", Action: "waiver.create", Detail: "rule-0 on dev_1"}); err != nil {
		t.Fatal(err)
	}
	if ws, _ := s.Waivers(ctx); len(ws) != 1 || ws[0].ID != "wvr_1" || !ws[0].ActiveAt(at) {
		t.Errorf("waivers = %+v", ws)
	}
	if err := s.CreateWaiverAudited(ctx, w, store.AuditEntry{At: at, Actor: "amina", Action: "waiver.create", Detail: "again"}); err == nil {
		t.Error("a second waiver with the same id was stored")
	}
	if err := s.RevokeWaiverAudited(ctx, "wvr_1", store.AuditEntry{At: at.Add(time.Minute), Actor: "cli:root", Action: "waiver.revoke"}); err != nil {
		t.Fatal(err)
	}
	if ws, _ := s.Waivers(ctx); ws[0].ActiveAt(at.Add(2 * time.Minute)) {
		t.Error("the waiver is still active after its revocation")
	}
	if err := s.RevokeWaiverAudited(ctx, "wvr_nope", store.AuditEntry{At: at, Actor: "cli:root", Action: "waiver.revoke"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking an unknown waiver: %v, want ErrNotFound", err)
	}

	// Tokens and policies.
	tk := store.Token{ID: "tok_z", Hash: hash("secret-z"), Group: "hq", Uses: 2, UsesLeft: 2, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := s.CreateTokenAudited(ctx, tk, store.AuditEntry{At: at, Actor: "amina", Action: "token.create", Detail: "group hq"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTokenAudited(ctx, tk, store.AuditEntry{At: at, Actor: "amina", Action: "token.create", Detail: "again"}); err == nil {
		t.Error("a second token with the same id was stored")
	}
	if err := s.RevokeTokenAudited(ctx, "tok_z", store.AuditEntry{At: at, Actor: "cli:root", Action: "token.revoke"}); err != nil {
		t.Fatal(err)
	}
	if _, err := enroll(t, s, "secret-z", "dev_z", "", at); !errors.Is(err, store.ErrTokenRevoked) {
		t.Errorf("enrolling with the revoked token: %v, want ErrTokenRevoked", err)
	}
	if err := s.RevokeTokenAudited(ctx, "tok_nope", store.AuditEntry{At: at, Actor: "cli:root", Action: "token.revoke"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking an unknown token: %v, want ErrNotFound", err)
	}
	gp := store.GroupPolicy{Group: "hq", Name: "tight", Version: 2, Document: []byte("doc"), UpdatedAt: at}
	if err := s.SetPolicyAudited(ctx, gp, store.AuditEntry{At: at, Actor: "cli:root", Action: "policy.apply", Detail: "tight version 2"}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Policy(ctx, "hq"); err != nil || p.Name != "tight" || p.Version != 2 || string(p.Document) != "doc" {
		t.Errorf("policy of hq = %+v, %v", p, err)
	}

	// One entry per change made, none for the refusals, targets filled in.
	es, err := s.AuditQuery(ctx, store.AuditFilter{Actor: "amina"})
	if err != nil {
		t.Fatal(err)
	}
	es2, _ := s.AuditQuery(ctx, store.AuditFilter{Actor: "cli:root"})
	var got []string
	for _, e := range append(es, es2...) {
		got = append(got, e.Action+" "+e.Target+" "+e.Detail)
	}
	want := []string{"token.create tok_z group hq", "waiver.create wvr_1 rule-0 on dev_1", "device.revoke dev_1 hostname h-dev_1",
		"policy.apply hq tight version 2", "token.revoke tok_z ", "waiver.revoke wvr_1 ", "device.retire dev_2 "}
	if !slices.Equal(got, want) {
		t.Errorf("audit entries:\n got %q\nwant %q", got, want)
	}
}

func mustDevice(t *testing.T, s store.Store, id string) store.Device {
	t.Helper()
	d, err := s.Device(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
