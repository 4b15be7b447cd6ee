package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// check titles a failing rule's fix with its problem in plain words, in the
// person's language; an UNKNOWN keeps its title (nothing is known to be
// wrong) and gets no fix steps.
func TestCheckTitlesFailuresWithTheirProblem(t *testing.T) {
	t.Setenv("COLUMNS", "200")
	dir := filepath.Join("..", "testdata", "bundles", "linux-plain-nft-empty")
	for lang, want := range map[string][]string{
		"en": {"disk-encrypted [FAIL, severity critical]: Your disk is not protected by encryption", "security-updates [UNKNOWN, severity high]: Security updates are installed"},
		"fr": {"Votre disque n'est pas protégé par le chiffrement", "Votre pare-feu est désactivé"},
	} {
		code, out, _ := run(t, "check", "--replay", dir, "--lang", lang)
		if code != ExitFail {
			t.Errorf("%s: exit %d, want %d", lang, code, ExitFail)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: check does not say %q:\n%s", lang, w, out)
			}
		}
		if lang == "en" && strings.Contains(out, "[FAIL, severity critical]: The system disk is encrypted") {
			t.Errorf("a failure is still titled with its goal:\n%s", out)
		}
	}
}
