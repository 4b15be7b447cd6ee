package sqlite

// migrationRecords keeps what evidence verifies against
// (docs/evidence.md): every certificate issued to a device, by its key id
// (with the key handover of a renewal), each epoch's enrolment record
// (the genesis its chain starts from, and what re-bound the device), and
// every policy document the collector served or was set, by name and
// version (the first one kept).
const migrationRecords = `CREATE TABLE device_certificates (
		device_id TEXT NOT NULL REFERENCES devices (id),
		key_id    BLOB NOT NULL,
		epoch     INTEGER NOT NULL,
		der       BLOB NOT NULL,
		kind      TEXT NOT NULL,
		issued_at INTEGER NOT NULL,
		handover  BLOB,
		PRIMARY KEY (device_id, key_id)
	);
	CREATE TABLE enrolment_records (
		device_id            TEXT NOT NULL REFERENCES devices (id),
		epoch                INTEGER NOT NULL,
		at                   INTEGER NOT NULL,
		kind                 TEXT NOT NULL,
		certificate          BLOB NOT NULL,
		genesis              BLOB NOT NULL,
		previous_certificate BLOB,
		csr                  BLOB,
		rebind_proof         BLOB,
		token_record         TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (device_id, epoch)
	);
	CREATE TABLE policy_documents (
		name       TEXT NOT NULL,
		version    INTEGER NOT NULL,
		document   BLOB NOT NULL,
		first_seen INTEGER NOT NULL,
		PRIMARY KEY (name, version)
	);`
