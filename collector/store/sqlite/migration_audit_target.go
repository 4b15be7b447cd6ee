package sqlite

// migrationAuditTarget indexes the audit log by target, so a device
// page's timeline reads the entries of its device and group (enrolment,
// re-binds, renewals, policy changes) without walking the whole log,
// which at a million devices holds a million enrolments.
const migrationAuditTarget = `CREATE INDEX audit_target ON audit (target, id);`
