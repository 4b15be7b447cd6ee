// Package i18n holds the agent's own messages (the words around a policy's
// rule texts: headings, "all good", deadlines, notifications) in every
// language Ward ships, and picks the user's language.
//
// Messages are looked up by id and filled with named placeholders
// ("{deadline}"), so a translation may put them in any order. A message
// missing in a language falls back to English, but TestCatalogueComplete
// fails when any message lacks one of Languages or changes a placeholder.
//
// The language is chosen, first match wins, from an explicit choice (the
// --lang flag, then the user's config file), then the OS locale (Lang), then
// English. Only the primary subtag counts: "fr_CA.UTF-8" is French.
// A language Ward does not ship is passed over; the commands tell the
// person when they asked for it themselves (agent/cli).
package i18n
