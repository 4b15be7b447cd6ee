package sqlite

// migrationSearch indexes hostnames by trigram (FTS5's trigram
// tokenizer), so a hostname search finds its few devices without walking
// the fleet (docs/storage.md, "Hostname search"). devices has no integer
// key (a VACUUM may renumber its rowids), so device_search_ids gives each
// device one, and devices_search holds its hostname under that key.
// Triggers keep both: a device's row is inserted at enrolment and its
// hostname changes only when a re-enrolment rebinds it; reports never
// touch them. Devices are never deleted, but a delete is kept in step
// too.
const migrationSearch = `CREATE TABLE device_search_ids (
		n         INTEGER PRIMARY KEY,
		device_id TEXT NOT NULL UNIQUE
	);
	CREATE VIRTUAL TABLE devices_search USING fts5(hostname, tokenize = 'trigram');
	INSERT INTO device_search_ids (device_id) SELECT id FROM devices ORDER BY rowid;
	INSERT INTO devices_search (rowid, hostname) SELECT i.n, d.hostname FROM device_search_ids i JOIN devices d ON d.id = i.device_id;
	CREATE TRIGGER devices_search_insert AFTER INSERT ON devices BEGIN
		INSERT INTO device_search_ids (device_id) VALUES (new.id);
		INSERT INTO devices_search (rowid, hostname) VALUES (last_insert_rowid(), new.hostname);
	END;
	CREATE TRIGGER devices_search_rename AFTER UPDATE OF hostname ON devices WHEN old.hostname IS NOT new.hostname BEGIN
		UPDATE devices_search SET hostname = new.hostname WHERE rowid = (SELECT n FROM device_search_ids WHERE device_id = new.id);
	END;
	CREATE TRIGGER devices_search_delete AFTER DELETE ON devices BEGIN
		DELETE FROM devices_search WHERE rowid = (SELECT n FROM device_search_ids WHERE device_id = old.id);
		DELETE FROM device_search_ids WHERE device_id = old.id;
	END;`
