package texts

import (
	"regexp"
	"slices"
	"testing"
)

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// TestCatalogueComplete: every message is in every language, with the same
// placeholders as in English.
func TestCatalogueComplete(t *testing.T) {
	if len(IDs()) == 0 {
		t.Fatal("empty catalogue")
	}
	for _, id := range IDs() {
		en := messages[id][Default]
		want := placeholder.FindAllString(en, -1)
		slices.Sort(want)
		for _, lang := range Languages {
			s := messages[id][lang]
			if s == "" {
				t.Errorf("%s: no %s text", id, lang)
				continue
			}
			got := placeholder.FindAllString(s, -1)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s (%s): placeholders %v, English has %v", id, lang, got, want)
			}
		}
		for lang := range messages[id] {
			if !slices.Contains(Languages, lang) {
				t.Errorf("%s: language %q is not in Languages", id, lang)
			}
		}
	}
}

func TestRender(t *testing.T) {
	register(map[string]map[string]string{
		"test.colon": {"en": "could not check:", "fr": "vérification impossible :"},
		"test.vol":   {"en": "{place}: not encrypted", "fr": "{place} : non chiffré"},
	})
	defer func() { delete(messages, "test.colon"); delete(messages, "test.vol") }()
	parts := []Text{New("test.colon"), New("test.vol", "place", "/"), New("test.vol", "place", "/home")}
	if got, want := Render("en", parts), "could not check: /: not encrypted; /home: not encrypted"; got != want {
		t.Errorf("en: %q, want %q", got, want)
	}
	if got, want := Render("fr", parts[1:]), "/ : non chiffré; /home : non chiffré"; got != want {
		t.Errorf("fr: %q, want %q", got, want)
	}
	if got, want := Render("ar", parts[1:]), "/: not encrypted؛ /home: not encrypted"; got != want {
		t.Errorf("ar joins with the Arabic semicolon: %q, want %q", got, want)
	}
	if got, want := Render("de", parts[1:2]), "/: not encrypted"; got != want {
		t.Errorf("de falls back to English: %q, want %q", got, want)
	}
	if got, want := New("newer.message", "b", "2", "a", "1").String("en"), "newer.message: 1, 2"; got != want {
		t.Errorf("unknown id: %q, want %q", got, want)
	}
	back := FromProto(ToProto(parts))
	if len(back) != 3 || back[1].Params["place"] != "/" || back[0].ID != "test.colon" {
		t.Errorf("proto round trip: %+v", back)
	}
}
