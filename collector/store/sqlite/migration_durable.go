package sqlite

// migrationDurable adds the row Health's write probe rewrites: a commit
// that fails there (read-only remount, I/O error, full disk) makes the
// collector unready before a report's acknowledgement would.
const migrationDurable = `CREATE TABLE health_probe (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL
);`
