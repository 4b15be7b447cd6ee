package sqlite

// migrationFeed keeps the imported release feeds (docs/feed.md,
// "Importing"): each by serial, the signed file the collector sends to
// agents and the feed's sources as imported; feed_source_files the raw
// source files an import was given (--source), by the feed's serial and
// the file's SHA-256. reports.feed_serial is the serial of the feed a
// report was evaluated with (0: none).
const migrationFeed = `CREATE TABLE feeds (
		serial       INTEGER PRIMARY KEY,
		generated_at INTEGER NOT NULL,
		expires_at   INTEGER NOT NULL,
		imported_at  INTEGER NOT NULL,
		signed       BLOB NOT NULL,
		sources      BLOB NOT NULL
	);
	CREATE TABLE feed_source_files (
		serial INTEGER NOT NULL REFERENCES feeds (serial),
		sha256 BLOB NOT NULL,
		name   TEXT NOT NULL,
		data   BLOB NOT NULL,
		PRIMARY KEY (serial, sha256)
	);
	ALTER TABLE reports ADD COLUMN feed_serial INTEGER NOT NULL DEFAULT 0;`
