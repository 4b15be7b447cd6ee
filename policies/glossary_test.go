package policies

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/i18n"
)

// glossary is the part of docs/prompts.md's glossary a test can hold texts
// to: for an English term, the word (a stem, to allow for grammar; any of
// several) each translation must then use.
var glossary = []struct {
	en    string
	words map[string][]string
}{
	{"firewall", map[string][]string{"fr": {"pare-feu"}, "es": {"cortafuegos"}, "ar": {"جدار الحماية"},
		"ru": {"брандмауэр"}, "uk": {"брандмауер"}, "pt": {"firewall"}}},
	{"encrypt", map[string][]string{"fr": {"chiffr"}, "es": {"cifr"}, "ar": {"تشفير", "مشفّر"},
		"ru": {"шифр"}, "uk": {"шифр"}, "pt": {"encript"}}},
	{"disk", map[string][]string{"fr": {"disque"}, "es": {"disco"}, "ar": {"قرص", "أقراص"},
		"ru": {"диск"}, "uk": {"диск"}, "pt": {"disco"}}},
	{"update", map[string][]string{"fr": {"mise à jour", "mises à jour"}, "es": {"actualiz"}, "ar": {"تحديث"},
		"ru": {"обновлен"}, "uk": {"оновлен"}, "pt": {"atualiza"}}},
	{"deadline", map[string][]string{"fr": {"date limite"}, "es": {"fecha límite"}, "ar": {"الموعد النهائي"},
		"ru": {"срок"}, "uk": {"термін"}, "pt": {"prazo"}}},
	{"IT contact", map[string][]string{"fr": {"contact informatique"}, "es": {"contacto de informática"}, "ar": {"مسؤول تقنية المعلومات"},
		"ru": {"ИТ-специалист"}, "uk": {"ІТ-фахів"}, "pt": {"responsável de informática"}}},
}

// placeholders are a message's {name}s, which are no words of it.
var placeholders = regexp.MustCompile(`\{[a-z_]+\}`)

// ruledOut are the variants the glossary rules out, by language.
var ruledOut = map[string][]string{
	"fr": {"cryptage", "crypté"},
	"ru": {"межсетевой экран", "файрвол", "фаервол", "ноутбук"},
	"uk": {"файрвол", "фаєрвол", "міжмережевий екран", "ноутбук"},
	"pt": {"criptograf", "contato", "você", "portátil", "notebook"},
}

// glossaryCheck reports how the translation of en into lang strays from
// the glossary.
func glossaryCheck(en, lang, text string) []string {
	var bad []string
	lower := strings.ToLower(text)
	en = placeholders.ReplaceAllString(en, "")
	for _, g := range glossary {
		// "IT" only in capitals: "it contacts" is not the IT contact.
		if g.en == "IT contact" && !strings.Contains(en, g.en) || !strings.Contains(strings.ToLower(en), strings.ToLower(g.en)) {
			continue
		}
		if !slices.ContainsFunc(g.words[lang], func(w string) bool { return strings.Contains(lower, strings.ToLower(w)) }) {
			bad = append(bad, "speaks of "+g.en+" without "+strings.Join(g.words[lang], " or "))
		}
	}
	for _, w := range ruledOut[lang] {
		if strings.Contains(lower, w) {
			bad = append(bad, "uses "+w+", which the glossary rules out")
		}
	}
	return bad
}

// TestGlossary holds the agent's messages and the shipped policies' texts
// to the glossary in docs/prompts.md. Remediation steps are held only to
// the ruled-out variants: they name menus in English ("Firewall & network
// protection"), so an English term there need not be translated.
func TestGlossary(t *testing.T) {
	for _, lang := range i18n.Languages[1:] {
		for _, id := range i18n.IDs() {
			for _, bad := range glossaryCheck(i18n.T("en", id), lang, i18n.T(lang, id)) {
				t.Errorf("message %s in %s %s: %q", id, lang, bad, i18n.T(lang, id))
			}
		}
	}
	for _, name := range Names() {
		p, err := Embedded(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Rules {
			for _, lang := range i18n.Languages[1:] {
				for what, texts := range map[string]map[string]string{"title": r.Titles, "problem": r.Problem, "expected": r.Expected, "why": r.Why} {
					if texts[lang] == "" {
						continue // TestShippedTranslations reports it
					}
					for _, bad := range glossaryCheck(texts["en"], lang, texts[lang]) {
						t.Errorf("%s: rule %s: %s %s %s: %q", name, r.ID, lang, what, bad, texts[lang])
					}
				}
				for pl, text := range r.Remediation[lang] {
					for _, w := range ruledOut[lang] {
						if strings.Contains(strings.ToLower(text), w) {
							t.Errorf("%s: rule %s: %s remediation for %s uses %s, which the glossary rules out", name, r.ID, lang, pl, w)
						}
					}
				}
			}
		}
	}
}
