package policies

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// baselineLangs are the languages the agent ships (agent/i18n.Languages
// once ru, uk and pt are merged into it); the baseline gives every text of
// every rule in each of them.
var baselineLangs = []string{"en", "fr", "es", "ar", "ru", "uk", "pt"}

// keptNames are the product names, commands' tools and paths a translation
// keeps as they are in English: when the English text of a field has one,
// every translation of that field has it too.
var keptNames = []string{
	"BitLocker", "FileVault", "Windows Update", "Microsoft Defender", "Windows", "macOS", "Mac",
	"Linux", "Debian", "Ubuntu", "Fedora", "RHEL", "Red Hat Enterprise Linux", "Sonoma",
	"zram", "firewalld", "C:", "Ward",
}

var (
	numberRE     = regexp.MustCompile(`\d+(?:\.\d+)*`)
	latinWordRE  = regexp.MustCompile(`[A-Za-z]+`)
	cyrillicRE   = regexp.MustCompile(`\p{Cyrillic}`)
	arabicRE     = regexp.MustCompile(`\p{Arabic}`)
	russianOnly  = regexp.MustCompile(`[ыэёъЫЭЁЪ]`) // letters Ukrainian does not have
	ukrainianOne = regexp.MustCompile(`[іїєґІЇЄҐ]`) // letters Russian does not have
)

// regionalPortuguese are words that mark one variety of Portuguese (Brazil
// or Portugal): the baseline's Portuguese is neutral and avoids both.
var regionalPortuguese = []string{
	// Brazil
	"contato", "contatos", "arquivo", "arquivos", "tela", "usuário", "celular", "notebook",
	"planejar", "registro", "com você", "acessar", "acessem",
	// Portugal
	"contacto", "contactos", "ficheiro", "ficheiros", "ecrã", "utilizador", "telemóvel",
	"planear", "registo", "palavra-passe", "consigo", "aceder", "acedam", "à espera", "portátil",
}

// ruleText is one text of a rule in every language: a field, or the
// remediation for one platform.
type ruleText struct {
	what  string
	texts map[string]string
}

func baselineTexts(r Rule) []ruleText {
	out := []ruleText{{"title", r.Titles}, {"problem", r.Problem}, {"expected", r.Expected}, {"why", r.Why}}
	for _, pl := range r.Platforms {
		byLang := map[string]string{}
		for lang, m := range r.Remediation {
			byLang[lang] = m[pl]
		}
		out = append(out, ruleText{"remediation for " + pl, byLang})
	}
	return out
}

// TestBaselineTexts fails when a baseline rule lacks a text (title,
// problem, expected, why, remediation for one of its platforms) in one of
// the shipped languages, or when a translation drops a command, a product
// name or a number of the English text, is in the wrong script, leaves an
// English word untranslated (Russian, Ukrainian), mixes Russian into
// Ukrainian (or the reverse), or uses a word of only one variety of
// Portuguese.
func TestBaselineTexts(t *testing.T) {
	p := mustEmbedded(t, "baseline")
	for _, r := range p.Rules {
		for _, rt := range baselineTexts(r) {
			en := rt.texts["en"]
			for lang := range rt.texts {
				if !slices.Contains(baselineLangs, lang) {
					t.Errorf("rule %s: %s has a text in %q, which Ward does not ship", r.ID, rt.what, lang)
				}
			}
			for _, lang := range baselineLangs {
				text := strings.TrimSpace(rt.texts[lang])
				if text == "" {
					t.Errorf("rule %s has no %s %s", r.ID, lang, rt.what)
					continue
				}
				for _, pr := range textProblems(rt.what, lang, text, en) {
					t.Errorf("rule %s: %s %s: %s: %q", r.ID, lang, rt.what, pr, text)
				}
			}
		}
		for _, lang := range baselineLangs {
			if r.Problem[lang] != "" && r.Problem[lang] == r.Titles[lang] {
				t.Errorf("rule %s: the %s problem is the title: %q", r.ID, lang, r.Problem[lang])
			}
		}
		if !ukrainianOne.MatchString(allTexts(r, "uk")) {
			t.Errorf("rule %s: the Ukrainian texts have none of і, ї, є, ґ: Russian?", r.ID)
		}
	}
}

// allTexts joins every text of a rule in one language.
func allTexts(r Rule, lang string) string {
	var b strings.Builder
	for _, rt := range baselineTexts(r) {
		b.WriteString(rt.texts[lang] + "\n")
	}
	return b.String()
}

// textProblems lists what is wrong with text, the translation into lang of
// one of a rule's texts whose English is en.
func textProblems(what, lang, text, en string) []string {
	var out []string
	switch what {
	case "why":
		if strings.Contains(text, ". ") {
			out = append(out, "more than one sentence")
		}
	case "problem":
		if strings.Contains(text, ". ") || strings.HasSuffix(text, ".") {
			out = append(out, "not one sentence without a final full stop, like a title")
		}
	}
	for _, cmd := range shellCommands(en) {
		if !strings.Contains(text, cmd) {
			out = append(out, "lacks the command "+cmd)
		}
	}
	for _, name := range keptNames {
		if strings.Contains(en, name) && !strings.Contains(text, name) {
			out = append(out, "lacks "+name)
		}
	}
	for _, n := range numberRE.FindAllString(en, -1) {
		if !strings.Contains(text, n) {
			out = append(out, "lacks the number "+n)
		}
	}
	switch lang {
	case "ar":
		if !arabicRE.MatchString(text) {
			out = append(out, "no Arabic letter")
		}
	case "ru", "uk":
		if !cyrillicRE.MatchString(text) {
			out = append(out, "no Cyrillic letter")
		}
		// A Latin word must be a name, a command or an English menu
		// label of the English text, never an untranslated word.
		enWords := map[string]bool{}
		for _, w := range latinWordRE.FindAllString(en, -1) {
			enWords[strings.ToLower(w)] = true
		}
		for _, w := range latinWordRE.FindAllString(text, -1) {
			if !enWords[strings.ToLower(w)] {
				out = append(out, "Latin word "+w+" is not in the English text")
			}
		}
		if lang == "uk" && russianOnly.MatchString(text) {
			out = append(out, "a Russian letter (ы, э, ё, ъ) in Ukrainian")
		}
		if lang == "ru" && ukrainianOne.MatchString(text) {
			out = append(out, "a Ukrainian letter (і, ї, є, ґ) in Russian")
		}
	default:
		if cyrillicRE.MatchString(text) || arabicRE.MatchString(text) {
			out = append(out, "Cyrillic or Arabic letters in a Latin-script language")
		}
	}
	if lang == "pt" {
		lower := " " + strings.ToLower(text) + " "
		for _, w := range regionalPortuguese {
			if regexp.MustCompile(`[^\p{L}-]` + regexp.QuoteMeta(w) + `[^\p{L}-]`).MatchString(lower) {
				out = append(out, "the regional word "+w)
			}
		}
	}
	return out
}

// TestBaselineTextsCatch: the checks of TestBaselineTexts find the mistakes
// they are for, so the test can fail.
func TestBaselineTextsCatch(t *testing.T) {
	tests := []struct {
		what, lang, text, en, want string
	}{
		{"why", "pt", "Uma frase. Outra frase.", "One sentence.", "more than one sentence"},
		{"problem", "ru", "Диск не зашифрован.", "The disk is not encrypted", "final full stop"},
		{"remediation for linux", "uk", "Виконайте «sudo ufw start».", `Run "sudo ufw enable".`, "lacks the command sudo ufw enable"},
		{"remediation for windows", "ru", "Откройте «Центр обновления».", "Open Windows Update.", "lacks Windows Update"},
		{"expected", "pt", "Nenhuma há mais de 15 dias.", "None for more than 14 days.", "lacks the number 14"},
		{"title", "ru", "Брандмауэр enabled", "The firewall is on", "Latin word enabled"},
		{"title", "uk", "Брандмауэр увімкнено", "The firewall is on", "a Russian letter"},
		{"title", "ru", "Брандмауер увімкнено", "The firewall is on", "a Ukrainian letter"},
		{"title", "uk", "The firewall is on", "The firewall is on", "no Cyrillic letter"},
		{"title", "ar", "The firewall is on", "The firewall is on", "no Arabic letter"},
		{"title", "pt", "O ficheiro está encriptado", "The file is encrypted", "the regional word ficheiro"},
		{"title", "pt", "Fale com o seu contato", "Talk to your contact", "the regional word contato"},
		{"title", "es", "Брандмауэр", "The firewall", "Cyrillic or Arabic"},
	}
	for _, tt := range tests {
		got := strings.Join(textProblems(tt.what, tt.lang, tt.text, tt.en), "; ")
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s %s %q: problems %q, want %q", tt.lang, tt.what, tt.text, got, tt.want)
		}
	}
	if got := textProblems("title", "pt", "O seu computador está encriptado", "Your laptop is encrypted"); len(got) != 0 {
		t.Errorf("a good Portuguese title: %v", got)
	}
}
