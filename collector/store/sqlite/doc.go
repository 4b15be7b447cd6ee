// Package sqlite is the embedded Store: one SQLite file (modernc.org/sqlite,
// pure Go) in write-ahead-log mode, so the admin CLI can read and write the
// data directory while the collector runs. Schema migrations are numbered
// and applied, each in its own transaction, when the store is opened.
package sqlite
