package sqlite

// migrationChain keeps report seals and the chains they form
// (docs/evidence.md): each report's seal (the encoded statement it
// signs, its hash, the hash it chains to, the key id, the signature and
// the drop count it sealed; all NULL for a report sealed by no one), and
// per device and epoch the gaps and forks SaveReport recorded. The
// partial indexes serve the chain's reads on the write path: the sealed
// reports of an epoch by sequence, and those chained to a hash.
const migrationChain = `ALTER TABLE reports ADD COLUMN seal_statement BLOB;
	ALTER TABLE reports ADD COLUMN seal_hash BLOB;
	ALTER TABLE reports ADD COLUMN seal_prev_hash BLOB;
	ALTER TABLE reports ADD COLUMN seal_key_id BLOB;
	ALTER TABLE reports ADD COLUMN seal_signature BLOB;
	ALTER TABLE reports ADD COLUMN seal_dropped INTEGER;
	CREATE INDEX reports_sealed ON reports (device_id, epoch, sequence) WHERE seal_hash IS NOT NULL;
	CREATE INDEX reports_chained_to ON reports (device_id, epoch, seal_prev_hash) WHERE seal_prev_hash IS NOT NULL;
	CREATE TABLE chain_gaps (
		device_id       TEXT NOT NULL REFERENCES devices (id),
		epoch           INTEGER NOT NULL,
		after_sequence  INTEGER NOT NULL,
		before_sequence INTEGER NOT NULL,
		dropped         INTEGER NOT NULL,
		recorded_at     INTEGER NOT NULL,
		PRIMARY KEY (device_id, epoch, after_sequence)
	);
	CREATE TABLE chain_forks (
		device_id      TEXT NOT NULL REFERENCES devices (id),
		epoch          INTEGER NOT NULL,
		sequence       INTEGER NOT NULL,
		prev_hash      BLOB NOT NULL,
		hash           BLOB NOT NULL,
		other          BLOB NOT NULL,
		other_sequence INTEGER NOT NULL,
		recorded_at    INTEGER NOT NULL,
		PRIMARY KEY (device_id, epoch, sequence, other_sequence)
	);`
