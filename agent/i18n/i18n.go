package i18n

import (
	"os"
	"slices"
	"strings"
)

// Default is the language every message exists in and the fallback.
const Default = "en"

// Languages lists the languages Ward ships, English first.
var Languages = []string{"en", "fr", "es", "ar", "ru", "uk", "pt"}

// names are the languages' names in English, for notices such as "Showing
// French (fr) instead".
var names = map[string]string{
	"en": "English", "fr": "French", "es": "Spanish", "ar": "Arabic",
	"ru": "Russian", "uk": "Ukrainian", "pt": "Portuguese",
}

// Name returns lang's name in English ("fr" → "French"), or lang itself
// when Ward does not ship it.
func Name(lang string) string {
	if n, ok := names[Normalize(lang)]; ok {
		return n
	}
	return lang
}

// Normalize reduces a locale or language tag to its primary language in
// lowercase ("fr_CA.UTF-8" → "fr"). It returns "" for the C and POSIX
// locales and for anything that is not a language tag.
func Normalize(tag string) string {
	tag = strings.TrimSpace(tag)
	if tag == "" || tag == "C" || tag == "POSIX" || strings.HasPrefix(tag, "C.") {
		return ""
	}
	if i := strings.IndexAny(tag, "-_.@:"); i >= 0 {
		tag = tag[:i]
	}
	tag = strings.ToLower(tag)
	if len(tag) < 2 || len(tag) > 3 || strings.Trim(tag, "abcdefghijklmnopqrstuvwxyz") != "" {
		return ""
	}
	return tag
}

// Supported reports whether Ward ships messages in lang (normalized).
func Supported(lang string) bool { return slices.Contains(Languages, Normalize(lang)) }

// Choose returns the first of the candidates that Ward supports, else
// English. Pass them most explicit first: flag, config file, OS locale.
func Choose(candidates ...string) string {
	for _, c := range candidates {
		if l := Normalize(c); slices.Contains(Languages, l) {
			return l
		}
	}
	return Default
}

// envLocale reads the POSIX locale variables in their order of precedence;
// LANGUAGE (a GNU preference list such as "fr:en") comes first when set.
func envLocale() string {
	if v := os.Getenv("LANGUAGE"); v != "" {
		for _, l := range strings.Split(v, ":") {
			if Supported(l) {
				return Normalize(l)
			}
		}
	}
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(k); v != "" {
			return Normalize(v)
		}
	}
	return ""
}

// Lang returns the user's language from the OS: the locale variables, then
// (on Windows) the user's preferred UI language. It returns "" when the OS
// does not say.
func Lang() string {
	if l := envLocale(); l != "" {
		return l
	}
	return osLang()
}

// T returns message id in lang with its placeholders filled from pairs
// ("deadline", "2026-12-01 09:00", ...). An unknown id is returned as is, so
// a missing message shows up rather than vanishing.
func T(lang, id string, pairs ...string) string {
	texts, ok := messages[id]
	if !ok {
		return id
	}
	s, ok := texts[Normalize(lang)]
	if !ok || s == "" {
		s = texts[Default]
	}
	if len(pairs) == 0 {
		return s
	}
	args := make([]string, 0, len(pairs))
	for i := 0; i+1 < len(pairs); i += 2 {
		args = append(args, "{"+pairs[i]+"}", pairs[i+1])
	}
	return strings.NewReplacer(args...).Replace(s)
}

// register adds the messages of one area of the agent, kept in its own
// file (messages_<area>.go, from an init function) so that areas do not
// all edit one map. An id defined twice is a programming error.
func register(m map[string]map[string]string) {
	for id, texts := range m {
		if _, dup := messages[id]; dup {
			panic("i18n: message " + id + " is defined twice")
		}
		messages[id] = texts
	}
}

// IDs returns every message id, sorted.
func IDs() []string {
	ids := make([]string, 0, len(messages))
	for id := range messages {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// RTL reports whether lang is written right to left.
func RTL(lang string) bool { return Normalize(lang) == "ar" }
