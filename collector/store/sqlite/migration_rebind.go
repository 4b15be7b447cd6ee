package sqlite

// migrationRebind is the schema change for re-binding by secret and likely
// duplicates: a token may be a re-bind token for one device, and a retired
// device (a likely duplicate an administrator put aside) says when.
const migrationRebind = `ALTER TABLE tokens ADD COLUMN rebind_device TEXT NOT NULL DEFAULT '';
	ALTER TABLE devices ADD COLUMN retired_at INTEGER;`
