package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/wardhq/ward/agent/i18n"
)

// chooseLang returns the language for a command's output: the --lang flag,
// then the user's config file, then the OS locale, then English. When the
// person asked for a language Ward does not ship (with --lang, or in the
// config file when there is no --lang), it says so on w in one line, in
// English, naming the languages Ward has and the one it uses instead,
// rather than switching silently. An unsupported OS locale falls back
// without a notice: the person did not ask Ward for it.
func chooseLang(w io.Writer, flag, config string) string {
	lang := i18n.Choose(flag, config, i18n.Lang())
	asked, from := flag, "--lang"
	if strings.TrimSpace(flag) == "" {
		asked, from = config, "the config file"
	}
	if strings.TrimSpace(asked) != "" && !i18n.Supported(asked) {
		fmt.Fprintf(w, "ward-agent: language %q (from %s) is not available; Ward has %s. Showing %s (%s) instead.\n",
			asked, from, languageList(), i18n.Name(lang), lang)
	}
	return lang
}

// languageList is the languages Ward ships, for a --lang flag's help.
func languageList() string { return strings.Join(i18n.Languages, ", ") }
