package sqlite

// migrationEpochs is the schema change for report identity by (device, epoch, sequence).
// Until its change lands it is a no-op.
const migrationEpochs = `SELECT 1;`
