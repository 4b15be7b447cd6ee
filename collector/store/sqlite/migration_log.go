package sqlite

// migrationLog keeps the evidence log (docs/evidence.md, "The log"):
// its leaves by index, each a sealed report at most once, and the signed
// checkpoints by size. Leaves name reports without a foreign key: the
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
	);`
