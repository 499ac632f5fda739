-- Sign-up policy as an administrator set it, invite codes, and when an account accepted the
-- operator's terms.

-- Settings an administrator changes at run time; a missing row means the flag's value.
CREATE TABLE account_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Invite codes, stored only as SHA-256 hashes (the code is shown once, when created).
CREATE TABLE invite_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash TEXT NOT NULL,
    max_uses BIGINT NOT NULL,
    uses BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_by BIGINT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX invite_codes_code_hash ON invite_codes (code_hash);

-- Set at sign-up when the operator publishes terms (--terms-url) and they were accepted.
ALTER TABLE users ADD COLUMN terms_accepted_at BIGINT;

-- The first account administers the instance: on an existing one without an administrator,
-- that is the oldest account.
UPDATE users SET role = 'admin'
WHERE id = (SELECT MIN(id) FROM users)
  AND NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin');
