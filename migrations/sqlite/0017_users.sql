-- Teams (issue 34): a merchant's dashboard users, each with a role, and invitations to join.
--
-- Every merchant's existing sign-in becomes its first owner: a user with the merchant's own id,
-- email, name and password hash. Passwords live on users from now on (merchants.password_hash
-- is cleared and no longer read). Sessions belong to a user; the existing ones to the owner.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'support', 'viewer')),
    password_hash TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
-- One sign-in per email address, whatever its case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_merchant_idx ON users (merchant_id, created_at);
INSERT INTO users (id, merchant_id, email, name, role, password_hash, created_at, updated_at)
SELECT id, id, email, name, 'owner', password_hash, created_at, updated_at FROM merchants;
UPDATE merchants SET password_hash = NULL;

ALTER TABLE sessions ADD COLUMN user_id TEXT REFERENCES users (id);
UPDATE sessions SET user_id = merchant_id;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN address TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- An invitation: its id is the SHA-256 digest of the token in its link (the token itself is
-- shown once, to the owner who invited). Single use (accepted_at), valid until expires_at.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'support', 'viewer')),
    invited_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    accepted_at TEXT,
    revoked_at  TEXT
);
CREATE INDEX invitations_merchant_idx ON invitations (merchant_id, created_at);
