package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// backends runs fn against a collector on SQLite and on PostgreSQL; args
// are the flags that point the CLI at its store.
func backends(t *testing.T, fn func(t *testing.T, c *servertest.Collector, args []string)) {
	t.Run("sqlite", func(t *testing.T) {
		c := servertest.Start(t)
		fn(t, c, []string{"--data", c.DataDir})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		c := servertest.Start(t, func(cfg *server.Config) { cfg.StoreSpec = url })
		fn(t, c, []string{"--data", c.DataDir, "--store", url})
	})
}

// lastAudit returns the newest audit entry with this action.
func lastAudit(t *testing.T, st store.Dashboard, action string) store.AuditEntry {
	t.Helper()
	es, err := st.AuditQuery(context.Background(), store.AuditFilter{Action: action, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		t.Fatalf("no audit entry %s", action)
	}
	return es[0]
}

func TestUserAdministration(t *testing.T) {
	backends(t, testUserAdministration)
}

func testUserAdministration(t *testing.T, c *servertest.Collector, flags []string) {
	ctx := context.Background()
	st := c.Store().(store.Dashboard)
	cmd := func(stdin string, want int, args ...string) (string, string) {
		t.Helper()
		out, errs, code := runIn(t, stdin, append(args, flags...)...)
		if code != want {
			t.Fatalf("ward-collector %s: exit %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, want, out, errs)
		}
		return out, errs
	}
	cmd("amina-long-password\n", 0, "user", "add", "--role", "admin", "amina")
	cmd("victor-long-password\n", 0, "user", "add", "--role", "viewer", "victor")
	add := lastAudit(t, st, "user.add")
	actor := add.Actor
	if !strings.HasPrefix(actor, "cli:") || len(actor) <= len("cli:") {
		t.Fatalf("user add's actor = %q, want cli:<OS user>", actor)
	}
	now := time.Now()
	for _, id := range []string{"s1", "s2"} {
		if err := st.CreateSession(ctx, store.Session{IDHash: []byte(id + "-hash-of-32-bytes-xxxxxxxxxxxxxx"), User: "victor", CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}

	out, _ := cmd("", 0, "user", "list", "--json")
	var us []store.UserInfo
	if err := json.Unmarshal([]byte(out), &us); err != nil {
		t.Fatalf("user list --json: %v\n%s", err, out)
	}
	if len(us) != 2 || us[0].Name != "amina" || us[0].Role != "admin" || us[1].Name != "victor" || us[1].Sessions != 2 {
		t.Errorf("user list = %+v", us)
	}
	if out, _ := cmd("", 0, "user", "list"); !strings.Contains(out, "victor") || !strings.Contains(out, "SESSIONS") {
		t.Errorf("user list:\n%s", out)
	}

	// Input errors exit 3 and say what was wrong; nothing changes.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "set-role", "victor", "--role", "root"}, "want admin or viewer"},
		{[]string{"user", "set-role", "nobody", "--role", "admin"}, "no user nobody"},
		{[]string{"user", "remove", "nobody"}, "no user nobody"},
		{[]string{"user", "end-sessions", "nobody"}, "no user nobody"},
		{[]string{"user", "frobnicate"}, "unknown command"},
		{[]string{"user", "add", "--role", "viewer", "amina"}, "already exists"},
		{[]string{"user", "add", "--role", "admin", "cli:root"}, "none of :"},
	} {
		if _, errs := cmd("another-long-password\n", 3, c.args...); !strings.Contains(errs, c.want) {
			t.Errorf("%v: stderr %q, want %q", c.args, errs, c.want)
		}
	}
	if _, errs := cmd("short\n", 3, "user", "reset-password", "victor"); !strings.Contains(errs, "at least") {
		t.Errorf("short password: %q", errs)
	}

	cmd("", 0, "user", "set-role", "victor", "--role", "admin")
	if e := lastAudit(t, st, "user.set-role"); e.Actor != actor || e.Target != "victor" || e.Detail != "viewer → admin" {
		t.Errorf("set-role entry = %+v", e)
	}
	if out, _ := cmd("", 0, "user", "set-role", "victor", "--role", "admin"); !strings.Contains(out, "nothing changed") {
		t.Errorf("same role again: %q", out)
	}
	if es, _ := st.AuditQuery(ctx, store.AuditFilter{Action: "user.set-role"}); len(es) != 1 {
		t.Errorf("a role set to what it was wrote an entry: %+v", es)
	}

	if out, _ := cmd("", 0, "user", "end-sessions", "victor"); !strings.Contains(out, "ended 2 live session(s)") {
		t.Errorf("end-sessions: %q", out)
	}
	if us, _ := st.UserList(ctx, time.Now()); us[1].Sessions != 0 {
		t.Errorf("victor's sessions after end-sessions: %d", us[1].Sessions)
	}
	lastAudit(t, st, "user.end-sessions")

	cmd("victor-new-password\n", 0, "user", "reset-password", "victor")
	if u, _ := st.User(ctx, "victor"); bcrypt.CompareHashAndPassword(u.Hash, []byte("victor-new-password")) != nil {
		t.Error("reset-password did not store the new password")
	}
	if e := lastAudit(t, st, "user.reset-password"); e.Actor != actor || e.Target != "victor" || strings.Contains(e.Detail, "victor-new-password") {
		t.Errorf("reset-password entry = %+v", e)
	}

	// Two admins: one may go; the one left may neither go nor be demoted.
	cmd("", 0, "user", "remove", "amina")
	if _, errs := cmd("", 3, "user", "set-role", "victor", "--role", "viewer"); !strings.Contains(errs, "only admin") {
		t.Errorf("demoting the last admin: %q", errs)
	}
	if _, errs := cmd("", 3, "user", "remove", "victor"); !strings.Contains(errs, "only admin") {
		t.Errorf("removing the last admin: %q", errs)
	}
	if u, err := st.User(ctx, "victor"); err != nil || u.Role != store.RoleAdmin {
		t.Errorf("victor after refusals = %+v, %v", u, err)
	}

	// audit list: filters, JSON, limits.
	out, _ = cmd("", 0, "audit", "list", "--json", "--actor", actor, "--action", "user.")
	var es []store.AuditEntry
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("audit list --json: %v\n%s", err, out)
	}
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action+" "+e.Target)
	}
	want := []string{"user.remove amina", "user.reset-password victor", "user.end-sessions victor", "user.set-role victor", "user.add victor", "user.add amina"}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("audit list --actor %s --action user.:\n got %q\nwant %q", actor, actions, want)
	}
	out, _ = cmd("", 0, "audit", "list", "--json", "--limit", "2")
	if err := json.Unmarshal([]byte(out), &es); err != nil || len(es) != 2 || es[0].Action != "user.remove" {
		t.Errorf("audit list --limit 2 = %+v, %v", es, err)
	}
	out, _ = cmd("", 0, "audit", "list", "--json", "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("audit list --since the future = %s, want []", out)
	}
	if out, _ := cmd("", 0, "audit", "list", "--since", "1h", "--target", "amina"); !strings.Contains(out, "user.remove") || strings.Contains(out, "victor") {
		t.Errorf("audit list --since 1h --target amina:\n%s", out)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--limit", "0"}, {"--limit", "x"}} {
		cmd("", 3, append([]string{"audit", "list"}, bad...)...)
	}
}

// TestCLIChangesAreAudited: token create, policy set, device revoke and
// retire, waiver grant and revoke each write an entry naming the OS user;
// token show is the token's rollout.
func TestCLIChangesAreAudited(t *testing.T) {
	backends(t, testCLIChangesAudited)
}

func testCLIChangesAudited(t *testing.T, c *servertest.Collector, flags []string) {
	ctx := context.Background()
	st := c.Store().(store.Dashboard)
	cmd := func(want int, args ...string) string {
		t.Helper()
		out, errs, code := runIn(t, "", append(args, flags...)...)
		if code != want {
			t.Fatalf("ward-collector %s: exit %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, want, out, errs)
		}
		return out
	}
	var tok struct{ Token, ID string }
	if err := json.Unmarshal([]byte(cmd(0, "token", "create", "--group", "staff", "--uses", "3", "--json")), &tok); err != nil {
		t.Fatal(err)
	}
	e := lastAudit(t, st, "token.create")
	actor := e.Actor
	if !strings.HasPrefix(actor, "cli:") || e.Target != tok.ID || !strings.Contains(e.Detail, "group staff, 3 uses") {
		t.Errorf("token.create entry = %+v", e)
	}
	if me, err := user.Current(); err != nil || actor != "cli:"+me.Username {
		t.Errorf("actor %q, want cli: and the OS user (%v)", actor, err)
	}

	// Two devices enrol with the token; one reports with agent 2.1.0.
	id1, cert1 := c.Enroll(ctx, tok.Token, &wardv1.DeviceInfo{Hostname: "lap-1", Platform: "linux", AgentVersion: "2.0.0"})
	id2, _ := c.Enroll(ctx, tok.Token, &wardv1.DeviceInfo{Hostname: "lap-2", Platform: "linux", AgentVersion: "2.0.0"})
	if _, err := wardv1grpc.NewAgentServiceClient(c.Dial(&cert1)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: 1, CollectedAt: timestamppb.Now(), AgentVersion: "2.1.0", PolicyName: "baseline", PolicyVersion: 1, Facts: &wardv1.Facts{CollectedAt: timestamppb.Now()}}}); err != nil {
		t.Fatal(err)
	}
	var ro struct {
		Token struct {
			ID       string `json:"id"`
			UsesLeft int    `json:"uses_left"`
		} `json:"token"`
		Devices []struct {
			ID, Hostname, By string
			AgentVersion     string `json:"agent_version"`
		} `json:"devices"`
		Enrolled      int            `json:"enrolled"`
		NeverReported int            `json:"never_reported"`
		AgentVersions map[string]int `json:"agent_versions"`
	}
	if err := json.Unmarshal([]byte(cmd(0, "token", "show", tok.ID, "--json")), &ro); err != nil {
		t.Fatal(err)
	}
	if ro.Token.ID != tok.ID || ro.Token.UsesLeft != 1 || ro.Enrolled != 2 || ro.NeverReported != 1 ||
		ro.AgentVersions["2.1.0"] != 1 || ro.AgentVersions["2.0.0"] != 1 || len(ro.Devices) != 2 {
		t.Errorf("token show = %+v", ro)
	}
	hosts := map[string]string{}
	for _, d := range ro.Devices {
		hosts[d.ID] = d.Hostname + " " + d.By + " " + d.AgentVersion
	}
	if hosts[id1] != "lap-1 device.enrol 2.1.0" || hosts[id2] != "lap-2 device.enrol 2.0.0" {
		t.Errorf("rollout devices = %v", hosts)
	}
	if out := cmd(0, "token", "show", tok.ID); !strings.Contains(out, "2 device(s) enrolled with it, 1 never reported") || !strings.Contains(out, "lap-2") {
		t.Errorf("token show:\n%s", out)
	}
	cmd(3, "token", "show", "tok_nope")

	// policy set.
	doc := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(doc, []byte(strings.Replace(adminPolicy, "VERSION", "2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd(0, "policy", "set", "--group", "staff", doc)
	if e := lastAudit(t, st, "policy.apply"); e.Actor != actor || e.Target != "staff" || !strings.Contains(e.Detail, "tight version 2") {
		t.Errorf("policy.apply entry = %+v", e)
	}

	// Waivers show the device's hostname.
	cmd(0, "waiver", "grant", "--device", id2, "--rule", "disk-encrypted", "--reason", "new disk on order", "--for", "240h")
	w := lastAudit(t, st, "waiver.create")
	if w.Actor != actor || !strings.Contains(w.Detail, "new disk on order") {
		t.Errorf("waiver.create entry = %+v", w)
	}
	if out := cmd(0, "waiver", "list"); !strings.Contains(out, "lap-2") || !strings.Contains(out, "HOSTNAME") {
		t.Errorf("waiver list without the hostname:\n%s", out)
	}
	var ws []struct {
		ID, Hostname string
		Device       string `json:"device_id"`
		CreatedBy    string `json:"created_by"`
	}
	if err := json.Unmarshal([]byte(cmd(0, "waiver", "list", "--json")), &ws); err != nil || len(ws) != 1 || ws[0].Hostname != "lap-2" || ws[0].Device != id2 || ws[0].CreatedBy != actor {
		t.Errorf("waiver list --json = %+v, %v", ws, err)
	}
	cmd(0, "waiver", "revoke", w.Target)
	if e := lastAudit(t, st, "waiver.revoke"); e.Actor != actor || e.Target != w.Target {
		t.Errorf("waiver.revoke entry = %+v", e)
	}

	// device revoke and retire.
	cmd(0, "device", "revoke", id1)
	if e := lastAudit(t, st, "device.revoke"); e.Actor != actor || e.Target != id1 {
		t.Errorf("device.revoke entry = %+v", e)
	}
	cmd(3, "device", "revoke", "dev_nope")
	cmd(0, "device", "retire", id2)
	if e := lastAudit(t, st, "device.retire"); e.Actor != actor || e.Target != id2 {
		t.Errorf("device.retire entry = %+v", e)
	}
	// Revoked devices stay in the token's rollout.
	if err := json.Unmarshal([]byte(cmd(0, "token", "show", tok.ID, "--json")), &ro); err != nil || ro.Enrolled != 2 {
		t.Errorf("rollout after revoking: %+v, %v", ro, err)
	}
	out := cmd(0, "audit", "list", "--actor", actor)
	for _, a := range []string{"token.create", "policy.apply", "waiver.create", "waiver.revoke", "device.revoke", "device.retire"} {
		if !strings.Contains(out, a) {
			t.Errorf("audit list --actor %s lacks %s:\n%s", actor, a, out)
		}
	}
	if out := cmd(0, "audit", "list", "--actor", "token "+tok.ID); strings.Count(out, "device.enrol") != 2 {
		t.Errorf("the token's enrolments in the audit log:\n%s", out)
	}
}

const adminPolicy = `name: tight
version: VERSION
rules:
  - id: disk-encrypted
    title: System disk is encrypted
    family: disk_encryption
    platforms: [windows, darwin, linux]
    require: disk.system_volume.protected
    expected: The system disk is encrypted.
    severity: critical
    remediation:
      en:
        windows: Turn on BitLocker.
        darwin: Turn on FileVault.
        linux: Use LUKS.
`
