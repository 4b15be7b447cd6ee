-- Version 8: the dashboard's second factor and OpenID Connect sign-in
-- (docs/signin.md): a TOTP secret per user (sealed by the dashboard;
-- confirmed_at NULL until a first code confirms it; last_step refuses a
-- code used before), sign-ins waiting for their second factor, and the
-- identity provider's (issuer, subject) behind a user. All go with their
-- user.
CREATE TABLE user_totp (
	"user"       TEXT COLLATE "C" PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
	secret       BYTEA NOT NULL,
	created_at   BIGINT NOT NULL,
	confirmed_at BIGINT,
	last_step    BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE pending_signins (
	id_hash    BYTEA PRIMARY KEY,
	"user"     TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	csrf       TEXT COLLATE "C" NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX pending_signins_user ON pending_signins ("user");
CREATE TABLE user_oidc (
	issuer  TEXT COLLATE "C" NOT NULL,
	subject TEXT COLLATE "C" NOT NULL,
	"user"  TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES users (name) ON DELETE CASCADE,
	PRIMARY KEY (issuer, subject)
);
