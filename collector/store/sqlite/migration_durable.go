package sqlite

// migrationDurable is the schema change for durability bookkeeping.
// Until its change lands it is a no-op.
const migrationDurable = `SELECT 1;`
