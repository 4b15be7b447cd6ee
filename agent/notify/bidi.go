package notify

import (
	"github.com/wardhq/ward/agent/bidi"
	"github.com/wardhq/ward/agent/i18n"
)

// forDesktop lays a notice out for the desktop in lang: for a language
// written right to left, its summary and body have their left-to-right
// runs (dates, commands, "Ward") isolated and lead with a right-to-left
// mark when they start with such a run (bidi.Paragraph), so that the
// notification shows them in order. The desktop wraps the text itself.
func forDesktop(n Notice, lang string) Notice {
	if i18n.RTL(lang) {
		n.Summary = bidi.Paragraph(n.Summary)
		n.Body = bidi.Paragraph(n.Body)
	}
	return n
}
