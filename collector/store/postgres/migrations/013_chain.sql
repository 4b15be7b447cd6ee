-- Version 13 (SQLite 18): report seals and the chains they form
-- (docs/evidence.md). Each report's seal: the encoded statement it
-- signs, its hash, the hash it chains to, the key id, the signature and
-- the drop count it sealed (all NULL for a report sealed by no one); per
-- device and epoch the gaps and forks SaveReport recorded. The partial
-- indexes serve the chain's reads on the write path: the sealed reports
-- of an epoch by sequence, and those chained to a hash.
ALTER TABLE reports ADD COLUMN seal_statement BYTEA;
ALTER TABLE reports ADD COLUMN seal_hash BYTEA;
ALTER TABLE reports ADD COLUMN seal_prev_hash BYTEA;
ALTER TABLE reports ADD COLUMN seal_key_id BYTEA;
ALTER TABLE reports ADD COLUMN seal_signature BYTEA;
ALTER TABLE reports ADD COLUMN seal_dropped BIGINT;
CREATE INDEX reports_sealed ON reports (device_id, epoch, sequence) WHERE seal_hash IS NOT NULL;
CREATE INDEX reports_chained_to ON reports (device_id, epoch, seal_prev_hash) WHERE seal_prev_hash IS NOT NULL;
CREATE TABLE chain_gaps (
	device_id       TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
	epoch           BIGINT NOT NULL,
	after_sequence  BIGINT NOT NULL,
	before_sequence BIGINT NOT NULL,
	dropped         BIGINT NOT NULL,
	recorded_at     BIGINT NOT NULL,
	PRIMARY KEY (device_id, epoch, after_sequence)
);
CREATE TABLE chain_forks (
	device_id      TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
	epoch          BIGINT NOT NULL,
	sequence       BIGINT NOT NULL,
	prev_hash      BYTEA NOT NULL,
	hash           BYTEA NOT NULL,
	other          BYTEA NOT NULL,
	other_sequence BIGINT NOT NULL,
	recorded_at    BIGINT NOT NULL,
	PRIMARY KEY (device_id, epoch, sequence, other_sequence)
);
