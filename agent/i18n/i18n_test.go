package i18n

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// TestCatalogueComplete fails when a message lacks a shipped language or
// a translation drops or adds a placeholder.
func TestCatalogueComplete(t *testing.T) {
	for _, id := range IDs() {
		want := placeholder.FindAllString(messages[id][Default], -1)
		slices.Sort(want)
		for _, lang := range Languages {
			s := messages[id][lang]
			if strings.TrimSpace(s) == "" {
				t.Errorf("message %s has no %s text", id, lang)
				continue
			}
			got := placeholder.FindAllString(s, -1)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("message %s in %s has placeholders %v, English has %v", id, lang, got, want)
			}
		}
		for lang := range messages[id] {
			if !slices.Contains(Languages, lang) {
				t.Errorf("message %s has a text in %q, which is not in Languages", id, lang)
			}
		}
	}
}

func TestT(t *testing.T) {
	if got := T("fr_FR.UTF-8", "status.deadline", "deadline", "2026-12-01"); got != "Date limite : 2026-12-01" {
		t.Errorf("fr: %q", got)
	}
	if got := T("de", "status.deadline", "deadline", "x"); got != "Deadline: x" {
		t.Errorf("unsupported language should fall back to English: %q", got)
	}
	if got := T("en", "no.such.message"); got != "no.such.message" {
		t.Errorf("unknown id: %q", got)
	}
}

func TestChooseAndNormalize(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"", "es_ES.UTF-8"}, "es"},
		{[]string{"ar-EG", "fr"}, "ar"},
		{[]string{"de_DE", "fr_CA"}, "fr"},
		{[]string{"C.UTF-8", "POSIX"}, "en"},
		{nil, "en"},
		{[]string{"zz9", "fr"}, "fr"},
		{[]string{"de", "pt_BR.UTF-8"}, "pt"},
		{[]string{"uk-UA", "ru"}, "uk"},
	} {
		if got := Choose(c.in...); got != c.want {
			t.Errorf("Choose(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEnvLocale(t *testing.T) {
	t.Setenv("LANGUAGE", "")
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "ar_SA.UTF-8")
	t.Setenv("LANG", "fr_FR.UTF-8")
	if got := envLocale(); got != "ar" {
		t.Errorf("LC_MESSAGES should win over LANG: %q", got)
	}
	t.Setenv("LANGUAGE", "de:es:en")
	if got := envLocale(); got != "es" {
		t.Errorf("LANGUAGE's first supported entry should win: %q", got)
	}
}

func TestRegisterRefusesDuplicates(t *testing.T) {
	register(map[string]map[string]string{"test.register.once": {"en": "once"}})
	defer delete(messages, "test.register.once")
	if got := T("fr", "test.register.once"); got != "once" {
		t.Errorf("registered message: %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering an id twice did not panic")
		}
	}()
	register(map[string]map[string]string{"test.register.once": {"en": "twice"}})
}

func TestName(t *testing.T) {
	for _, lang := range Languages {
		if n := Name(lang); n == lang || n == "" {
			t.Errorf("language %s has no name", lang)
		}
	}
	if got := Name("uk_UA.UTF-8"); got != "Ukrainian" {
		t.Errorf("Name(uk_UA.UTF-8) = %q", got)
	}
	if got := Name("de"); got != "de" {
		t.Errorf("Name(de) = %q", got)
	}
}
