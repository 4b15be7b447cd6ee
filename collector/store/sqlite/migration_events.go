package sqlite

// migrationEvents is the outbox of webhooks and the SIEM stream
// (store.EventLog, docs/integrations.md): events, with AUTOINCREMENT so
// an id is never used twice even after pruning empties the table (the
// consumers' cursors would skip a reused one); named cursors; and the
// delivery log. Events are pruned by recorded_at, when they were
// written: at, when the event happened, can be long before (a report
// delivered a month late).
const migrationEvents = `CREATE TABLE events (
		id        INTEGER PRIMARY KEY AUTOINCREMENT,
		at        INTEGER NOT NULL,
		type      TEXT NOT NULL,
		device_id TEXT NOT NULL,
		payload   TEXT NOT NULL,
		recorded_at INTEGER NOT NULL
	);
	CREATE INDEX events_recorded ON events (recorded_at);
	CREATE TABLE event_cursors (
		name  TEXT PRIMARY KEY,
		value INTEGER NOT NULL
	);
	CREATE TABLE event_deliveries (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		event_id   INTEGER NOT NULL,
		event_type TEXT NOT NULL,
		sink       TEXT NOT NULL,
		url        TEXT NOT NULL,
		attempt    INTEGER NOT NULL,
		at         INTEGER NOT NULL,
		status     INTEGER NOT NULL,
		error      TEXT NOT NULL,
		outcome    TEXT NOT NULL,
		duration   INTEGER NOT NULL
	);
	CREATE INDEX event_deliveries_at ON event_deliveries (at);`
