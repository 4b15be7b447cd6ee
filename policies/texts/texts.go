// Package texts is the catalogue of the words Ward uses to describe what it
// observed on a device and why a check could not tell: "/ on /dev/vda: not
// encrypted", "the firewall rules need administrator rights to read". The
// policy engine and the agent's collectors produce Texts (a message id and
// its parameters) instead of English strings; the agent renders them in the
// reader's language, the collector in English.
//
// Parameters are data (paths, device names, versions, counts, a program's
// own error message), never words to translate. A message exists in every
// language of Languages with the same {placeholders}; TestCatalogueComplete
// holds that.
package texts

import (
	"maps"
	"slices"
	"strings"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Default is the language every message exists in and the fallback.
const Default = "en"

// Languages lists the languages of the catalogue, the agent's languages
// (agent/i18n.Languages, which a test keeps equal).
var Languages = []string{"en", "fr", "es", "ar", "ru", "uk", "pt"}

// Text is one catalogue message: its id and parameters.
type Text struct {
	ID     string            `json:"id"`
	Params map[string]string `json:"params,omitempty"`
}

// New returns the Text id with parameters given as name, value pairs.
func New(id string, pairs ...string) Text {
	t := Text{ID: id}
	if len(pairs) > 1 {
		t.Params = make(map[string]string, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			t.Params[pairs[i]] = pairs[i+1]
		}
	}
	return t
}

// messages holds, per id, the message in each language.
var messages = map[string]map[string]string{}

// register adds the messages of one area, kept in its own file
// (catalogue_<area>.go, from an init function). An id defined twice is a
// programming error.
func register(m map[string]map[string]string) {
	for id, texts := range m {
		if _, dup := messages[id]; dup {
			panic("texts: message " + id + " is defined twice")
		}
		messages[id] = texts
	}
}

// Known reports whether id is in the catalogue.
func Known(id string) bool { _, ok := messages[id]; return ok }

// IDs returns every message id, sorted.
func IDs() []string { return slices.Sorted(maps.Keys(messages)) }

// Message returns the template of id in lang, falling back to English; ok
// is false when id is not in the catalogue.
func Message(lang, id string) (template string, ok bool) {
	m, ok := messages[id]
	if !ok {
		return "", false
	}
	if s := m[lang]; s != "" {
		return s, true
	}
	return m[Default], true
}

// String renders t in lang: its template with each {name} replaced by the
// parameter. An id the catalogue does not hold (a newer agent's message
// read by an older collector) renders as its parameters' values, so no
// data is lost; it never renders as an empty string.
func (t Text) String(lang string) string {
	s, ok := Message(lang, t.ID)
	if !ok {
		vals := make([]string, 0, len(t.Params))
		for _, k := range slices.Sorted(maps.Keys(t.Params)) {
			vals = append(vals, t.Params[k])
		}
		if len(vals) == 0 {
			return t.ID
		}
		return t.ID + ": " + strings.Join(vals, ", ")
	}
	if len(t.Params) == 0 {
		return s
	}
	args := make([]string, 0, 2*len(t.Params))
	for k, v := range t.Params {
		args = append(args, "{"+k+"}", v)
	}
	return strings.NewReplacer(args...).Replace(s)
}

// separators are the languages' own semicolons where they differ from
// "; ": Arabic's (U+061B), a right-to-left character, also keeps two
// left-to-right parameters on either side apart in a bidi terminal.
var separators = map[string]string{"ar": "؛ "}

// Render renders parts in lang, joined by "; " (the language's own
// semicolon) or by a space after a part that ends with a colon, which
// introduces the next one.
func Render(lang string, parts []Text) string {
	sep := "; "
	if s, ok := separators[lang]; ok {
		sep = s
	}
	var b strings.Builder
	for i, p := range parts {
		s := p.String(lang)
		if i > 0 {
			prev := parts[i-1].String(lang)
			if strings.HasSuffix(prev, ":") || strings.HasSuffix(prev, "：") {
				b.WriteString(" ")
			} else {
				b.WriteString(sep)
			}
		}
		b.WriteString(s)
	}
	return b.String()
}

// FromProto converts catalogue messages from the wire.
func FromProto(ts []*wardv1.Text) []Text {
	if len(ts) == 0 {
		return nil
	}
	out := make([]Text, 0, len(ts))
	for _, t := range ts {
		out = append(out, Text{ID: t.GetId(), Params: maps.Clone(t.GetParams())})
	}
	return out
}

// ToProto converts catalogue messages for the wire.
func ToProto(ts []Text) []*wardv1.Text {
	if len(ts) == 0 {
		return nil
	}
	out := make([]*wardv1.Text, 0, len(ts))
	for _, t := range ts {
		out = append(out, &wardv1.Text{Id: t.ID, Params: maps.Clone(t.Params)})
	}
	return out
}
