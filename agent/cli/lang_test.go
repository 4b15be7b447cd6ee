package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChooseLang: a language the person asked for and Ward does not have
// is one line on stderr naming the shipped languages and the fallback; a
// shipped one, or an unsupported OS locale, says nothing.
func TestChooseLang(t *testing.T) {
	t.Setenv("LANGUAGE", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", "")
	for _, c := range []struct {
		flag, config, locale string
		want, notice         string
	}{
		{"de", "", "C", "en", `ward-agent: language "de" (from --lang) is not available; Ward has en, fr, es, ar, ru, uk, pt. Showing English (en) instead.` + "\n"},
		{"de_DE.UTF-8", "es", "C", "es", `ward-agent: language "de_DE.UTF-8" (from --lang) is not available; Ward has en, fr, es, ar, ru, uk, pt. Showing Spanish (es) instead.` + "\n"},
		{"", "klingon", "uk_UA.UTF-8", "uk", `ward-agent: language "klingon" (from the config file) is not available; Ward has en, fr, es, ar, ru, uk, pt. Showing Ukrainian (uk) instead.` + "\n"},
		{"pt_BR", "de", "C", "pt", ""},    // the flag wins; the config file's value is not used
		{"", "", "de_DE.UTF-8", "en", ""}, // the OS locale: no notice
		{"RU", "", "C", "ru", ""},
		{"", "", "C", "en", ""},
	} {
		t.Setenv("LC_ALL", c.locale)
		var w bytes.Buffer
		if got := chooseLang(&w, c.flag, c.config); got != c.want || w.String() != c.notice {
			t.Errorf("chooseLang(%q, %q) with LC_ALL=%s = %q, notice %q; want %q, %q", c.flag, c.config, c.locale, got, w.String(), c.want, c.notice)
		}
	}
}

// TestCheckUnsupportedLang runs `check --lang de` on a captured bundle: the
// notice is on stderr, the texts are English and the exit code is the one
// `--lang en` gives; `--lang pt` gives Portuguese texts and no notice.
func TestCheckUnsupportedLang(t *testing.T) {
	t.Setenv("LANGUAGE", "")
	t.Setenv("LC_ALL", "C")
	dir := bundles(t)[0]
	title := func(stdout string) string {
		var out jsonOutput
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Results) == 0 {
			t.Fatalf("output: %v\n%s", err, stdout)
		}
		return out.Results[0]["title"].(string)
	}
	args := []string{"check", "--json", "--policy", "embedded:high-risk", "--replay", dir, "--lang"}
	enCode, enOut, enErr := run(t, append(args, "en")...)
	deCode, deOut, deErr := run(t, append(args, "de")...)
	want := `ward-agent: language "de" (from --lang) is not available; Ward has en, fr, es, ar, ru, uk, pt. Showing English (en) instead.` + "\n"
	if enErr != "" || deErr != want {
		t.Errorf("stderr with --lang en: %q; with --lang de: %q, want %q", enErr, deErr, want)
	}
	if deCode != enCode || title(deOut) != title(enOut) || title(enOut) != "Every built-in disk is encrypted" {
		t.Errorf("--lang de: exit %d, title %q; --lang en: exit %d, title %q", deCode, title(deOut), enCode, title(enOut))
	}
	ptCode, ptOut, ptErr := run(t, append(args, "pt")...)
	if ptErr != "" || ptCode != enCode || title(ptOut) != "Todos os discos internos estão encriptados" {
		t.Errorf("--lang pt: exit %d, title %q, stderr %q", ptCode, title(ptOut), ptErr)
	}
}

// TestStatusAndPrivacyUnsupportedLang: `status` and `privacy` with no
// status to read, asked for German by --lang or by the config file, say so
// on stderr and answer in the fallback with their usual exit code.
func TestStatusAndPrivacyUnsupportedLang(t *testing.T) {
	t.Setenv("LANGUAGE", "")
	t.Setenv("LC_ALL", "C")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	empty := t.TempDir()
	notice := func(lang, from, name string) string {
		return `ward-agent: language "` + lang + `" (from ` + from + `) is not available; Ward has en, fr, es, ar, ru, uk, pt. Showing ` + name + " instead.\n"
	}
	code, stdout, stderr := run(t, "status", "--lang", "de", "--status-dir", empty)
	if code != ExitUnknown || stderr != notice("de", "--lang", "English (en)") || !strings.HasPrefix(stdout, "The Ward service is not running and has not saved a status yet.") {
		t.Errorf("status --lang de: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "status", "--lang", "ru", "--status-dir", empty)
	if code != ExitUnknown || stderr != "" || !strings.HasPrefix(stdout, "Служба Ward не работает и ещё не сохранила ни одного состояния.") {
		t.Errorf("status --lang ru: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	os.MkdirAll(filepath.Join(home, ".config", "ward"), 0o700)
	if err := os.WriteFile(filepath.Join(home, ".config", "ward", "config.json"), []byte(`{"lang": "de_AT"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LC_ALL", "pt_PT.UTF-8")
	code, stdout, stderr = run(t, "privacy", "--status-dir", empty)
	if code != ExitPass || stderr != notice("de_AT", "the config file", "Portuguese (pt)") || stdout != "O Ward ainda não preparou nenhum relatório neste computador, por isso nada foi enviado.\n" {
		t.Errorf("privacy with lang de_AT in the config file: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
