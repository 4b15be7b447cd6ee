package sqlite

// migrationRenewal lets a device hold a second, renewed certificate
// (docs/enrolment.md, "Certificate renewal"): next_cert_serial is issued
// by Renew and becomes cert_serial, with the old serial revoked, the
// first time the device uses it. NULL: no renewal pending.
const migrationRenewal = `ALTER TABLE devices ADD COLUMN next_cert_serial TEXT;
	ALTER TABLE devices ADD COLUMN next_cert_not_after INTEGER;`
