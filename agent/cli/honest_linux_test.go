package cli

import (
	"os"
	"regexp"
	"strings"
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
	code, out := agentAs(t, deskUID, home, "check", "--lang", "en")
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
