// Package bidi prepares text for a terminal that shows right-to-left
// languages (Arabic): it isolates the left-to-right runs embedded in a
// right-to-left line (paths, dates and times, versions, commands, host
// names, product names) with Unicode isolates, so that a bidi-aware
// terminal keeps each run in its own order and in its place in the
// sentence, and it wraps lines to a width at spaces, never inside a word
// or an isolate.
//
// It works on lines of plain text and knows nothing of what they say:
// the commands write their content as for any language and pass it
// through a Writer when the language is written right to left
// (i18n.RTL). Removing the marks this package adds (LRI, PDI, RLM) gives
// back the logical text it was given.
package bidi
