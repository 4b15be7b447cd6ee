package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/wardhq/ward/policies"
)

// TestCheckAsAnotherUser runs the live `check` of this machine as a user
// who is not root (uid 65534): the kernel refuses the firewall's ruleset,
// so firewall-on is UNKNOWN, gets no fix steps, and the end says that it
// needs administrator rights and what to do.
func TestCheckAsAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs check as another user")
	}
	home := openTempDir(t)
	code, out := ownAgentAs(t, deskUID, home, "check", "--lang", "en")
	if !regexp.MustCompile(`(?m)^UNKNOWN\s+firewall-on\s`).MatchString(out) {
		t.Fatalf("check as uid %d: firewall-on is not UNKNOWN:\n%s", deskUID, out)
	}
	if code != ExitFail && code != ExitUnknown {
		t.Errorf("exit %d, want %d or %d", code, ExitFail, ExitUnknown)
	}
	i := strings.Index(out, "\n  firewall-on [UNKNOWN")
	item := out[i:]
	item = item[:strings.Index(item[1:], "\n\n")+1]
	pol, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pol.Rules {
		if r.ID == "firewall-on" && strings.Contains(item, strings.Fields(r.Remediation["en"]["linux"])[0]+" "+strings.Fields(r.Remediation["en"]["linux"])[1]) {
			t.Errorf("fix steps for a firewall Ward could not read:\n%s", item)
		}
	}
	if !strings.Contains(item, "Not checked: this needs administrator rights (see the end).") {
		t.Errorf("firewall-on item:\n%s", item)
	}
	hint := out[strings.LastIndex(out, "\n\n")+2:]
	if !strings.HasPrefix(hint, "Checks that need administrator rights: ") || !strings.Contains(hint, "firewall-on") ||
		!strings.Contains(strings.Join(strings.Fields(hint), " "), "Run sudo ward-agent check as an administrator, or see what the Ward service found with ward-agent status") {
		t.Errorf("check as uid %d ends:\n%s", deskUID, hint)
	}
}

// ownAgentAs is agentAs with a copy of ward-agent of this test's own (the
// shared copy is removed when the first test using it ends).
func ownAgentAs(t *testing.T, uid int, home string, args ...string) (int, string) {
	t.Helper()
	bin := filepath.Join(openTempDir(t), "ward-agent")
	data, err := os.ReadFile(os.Args[0])
	if err != nil || os.WriteFile(bin, data, 0o755) != nil {
		t.Fatal("cannot copy ward-agent where other users may run it")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"WARD_AGENT_MAIN=1", "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"PATH=/usr/bin:/bin", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ward-agent %v as uid %d: %v", args, uid, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}
