// Package sqlite is the embedded Store: one SQLite file (modernc.org/sqlite,
// pure Go) in write-ahead-log mode, so the admin CLI can read and write the
// data directory while the collector runs. Schema migrations are numbered
// and applied, each in its own transaction, when the store is opened.
//
// Commits are synchronous(FULL), so an acknowledged report survives a
// power loss; a database with content passes PRAGMA quick_check before it
// is used, and OpenWith can refuse one that holds no fleet. Health backs
// the collector's /readyz. See docs/durability.md.
package sqlite
