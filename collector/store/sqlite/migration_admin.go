package sqlite

// migrationAdmin indexes the audit log for its filters: by actor (a
// token's rollout is the entries its enrolments wrote, actor "token ID";
// `audit list --actor`) and by action (`audit list --action`), each in
// id order so the newest come first without a sort.
const migrationAdmin = `CREATE INDEX audit_actor ON audit (actor, id);
	CREATE INDEX audit_action ON audit (action, id);`
