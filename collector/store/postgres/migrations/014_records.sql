-- Version 14 (SQLite 19): what evidence verifies against
-- (docs/evidence.md): every certificate issued to a device, by its key id
-- (with the key handover of a renewal), each epoch's enrolment record
-- (the genesis its chain starts from, and what re-bound the device), and
-- every policy document the collector served or was set, by name and
-- version (the first one kept).
CREATE TABLE device_certificates (
	device_id TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
	key_id    BYTEA NOT NULL,
	epoch     BIGINT NOT NULL,
	der       BYTEA NOT NULL,
	kind      TEXT COLLATE "C" NOT NULL,
	issued_at BIGINT NOT NULL,
	handover  BYTEA,
	PRIMARY KEY (device_id, key_id)
);
CREATE TABLE enrolment_records (
	device_id            TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
	epoch                BIGINT NOT NULL,
	at                   BIGINT NOT NULL,
	kind                 TEXT COLLATE "C" NOT NULL,
	certificate          BYTEA NOT NULL,
	genesis              BYTEA NOT NULL,
	previous_certificate BYTEA,
	csr                  BYTEA,
	rebind_proof         BYTEA,
	token_record         TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (device_id, epoch)
);
CREATE TABLE policy_documents (
	name       TEXT COLLATE "C" NOT NULL,
	version    BIGINT NOT NULL,
	document   BYTEA NOT NULL,
	first_seen BIGINT NOT NULL,
	PRIMARY KEY (name, version)
);
