package sqlite

// migrationLog keeps the evidence log (docs/evidence.md, "The log"):
// its leaves by index, each a sealed report at most once, and the signed
// checkpoints by size; log_range is the compact range the next root
// grows from, and reports.logged (with a partial index over the sealed
// reports not yet logged) spares the sequencer a scan of the log. Leaves name reports without a foreign key: the
// log outlives the reports retention prunes.
const migrationLog = `CREATE TABLE log_leaves (
		idx       INTEGER PRIMARY KEY,
		device_id TEXT NOT NULL,
		epoch     INTEGER NOT NULL,
		sequence  INTEGER NOT NULL,
		leaf_hash BLOB NOT NULL,
		UNIQUE (device_id, epoch, sequence)
	);
	CREATE TABLE log_checkpoints (
		size      INTEGER PRIMARY KEY,
		root      BLOB NOT NULL,
		at        INTEGER NOT NULL,
		signature BLOB NOT NULL
	);
	CREATE TABLE log_range (
		id     INTEGER PRIMARY KEY CHECK (id = 1),
		size   INTEGER NOT NULL,
		hashes BLOB NOT NULL
	);
	ALTER TABLE reports ADD COLUMN logged INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX reports_unlogged ON reports (received_at, device_id, epoch, sequence) WHERE seal_hash IS NOT NULL AND logged = 0;`
