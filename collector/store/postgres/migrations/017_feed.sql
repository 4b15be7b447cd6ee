-- Version 17 (SQLite 22): the imported release feeds (docs/feed.md,
-- "Importing"): each by serial, the signed file the collector sends to
-- agents and the feed's sources as imported; feed_source_files the raw
-- source files an import was given (--source), by the feed's serial and
-- the file's SHA-256. reports.feed_serial is the serial of the feed a
-- report was evaluated with (0: none).
CREATE TABLE feeds (
	serial       BIGINT PRIMARY KEY,
	generated_at BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL,
	imported_at  BIGINT NOT NULL,
	signed       BYTEA NOT NULL,
	sources      BYTEA NOT NULL
);
CREATE TABLE feed_source_files (
	serial BIGINT NOT NULL REFERENCES feeds (serial),
	sha256 BYTEA NOT NULL,
	name   TEXT NOT NULL,
	data   BYTEA NOT NULL,
	PRIMARY KEY (serial, sha256)
);
ALTER TABLE reports ADD COLUMN feed_serial BIGINT NOT NULL DEFAULT 0;
