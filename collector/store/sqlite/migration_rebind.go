package sqlite

// migrationRebind is the schema change for re-binding by secret and likely duplicates.
// Until its change lands it is a no-op.
const migrationRebind = `SELECT 1;`
