-- Version 16 (SQLite 21): the evidence log (docs/evidence.md, "The
-- log"): its leaves by index, each a sealed report at most once, and the
-- signed checkpoints by size; log_range is the compact range the next
-- root grows from, reports.logged (partial index) the sealed reports
-- not yet logged. Leaves name reports without a foreign key:
-- the log outlives the reports retention prunes.
CREATE TABLE log_leaves (
	idx       BIGINT PRIMARY KEY,
	device_id TEXT COLLATE "C" NOT NULL,
	epoch     BIGINT NOT NULL,
	sequence  BIGINT NOT NULL,
	leaf_hash BYTEA NOT NULL,
	UNIQUE (device_id, epoch, sequence)
);
CREATE TABLE log_checkpoints (
	size      BIGINT PRIMARY KEY,
	root      BYTEA NOT NULL,
	at        BIGINT NOT NULL,
	signature BYTEA NOT NULL
);
CREATE TABLE log_range (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	size   BIGINT NOT NULL,
	hashes BYTEA NOT NULL
);
ALTER TABLE reports ADD COLUMN logged BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX reports_unlogged ON reports (received_at, device_id, epoch, sequence) WHERE seal_hash IS NOT NULL AND NOT logged;
