-- Two-factor sign-in (issue 34). A user's TOTP secret is kept sealed with PAYGATE_SECRET_KEY
-- (XChaCha20-Poly1305, bound to the user's id): totp_pending while it is being set up,
-- totp_secret once a code confirmed it. totp_last_step is the last 30-second step a code was
-- accepted for: a code is never accepted twice. Recovery codes are kept as SHA-256 digests,
-- each used once. A merchant may require two-factor sign-in of every user; a session waits
-- for the second factor (second_factor_pending) before it opens any page.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
ALTER TABLE merchants ADD COLUMN require_two_factor BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN second_factor_pending BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest  TEXT NOT NULL,
    used_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, digest)
);
