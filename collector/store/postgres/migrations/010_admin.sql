-- Version 10: the audit log indexed for its filters, as the SQLite store's
-- version 15: by actor (a token's rollout is the entries its enrolments
-- wrote, actor 'token ID'; audit list --actor) and by action (audit list
-- --action), each in id order so the newest come first without a sort.
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_action ON audit (action, id);
