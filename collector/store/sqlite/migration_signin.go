package sqlite

// migrationSignIn adds the dashboard's second factor and OpenID Connect
// sign-in (docs/signin.md): a TOTP secret per user (sealed by the
// dashboard; confirmed_at NULL until a first code confirms it; last_step
// refuses a code used before), sign-ins waiting for their second factor,
// and the identity provider's (issuer, subject) behind a user. All go
// with their user.
const migrationSignIn = `CREATE TABLE user_totp (
		user         TEXT PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
		secret       BLOB NOT NULL,
		created_at   INTEGER NOT NULL,
		confirmed_at INTEGER,
		last_step    INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE pending_signins (
		id_hash    BLOB PRIMARY KEY,
		user       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
		csrf       TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX pending_signins_user ON pending_signins (user);
	CREATE TABLE user_oidc (
		issuer  TEXT NOT NULL,
		subject TEXT NOT NULL,
		user    TEXT NOT NULL UNIQUE REFERENCES users (name) ON DELETE CASCADE,
		PRIMARY KEY (issuer, subject)
	);`
