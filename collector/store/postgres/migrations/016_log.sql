-- Version 16 (SQLite 21): the evidence log (docs/evidence.md, "The
-- log"): its leaves by index, each a sealed report at most once, and the
-- signed checkpoints by size. Leaves name reports without a foreign key:
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
