-- Sign-in sessions as rows of their own, counters that rate-limit atomically, and email
-- addresses that identify an account only once verified.

-- A refresh-token family is one sign-in (one device). Rotation bumps `generation`; only tokens
-- of the current generation are live, so revoking or rotating a family is one row and can
-- never race with the insert of a successor. `expires_at` is absolute (sign-in + 90 days).
CREATE TABLE refresh_token_families (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    -- When the current generation began: its predecessor may be presented again for a few
    -- seconds (a lost response), then it counts as reuse.
    rotated_at BIGINT,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_token_families_user ON refresh_token_families (user_id);

-- Existing sessions: a family with a live token stays signed in (generation 1, the live
-- tokens); one without is revoked.
INSERT INTO refresh_token_families (id, user_id, generation, rotated_at, expires_at, revoked_at, created_at)
SELECT family_id, MIN(user_id), 1, NULL, MIN(created_at) + 7776000000,
       CASE WHEN SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END) = 0 THEN MAX(revoked_at) END,
       MIN(created_at)
FROM refresh_tokens GROUP BY family_id;

ALTER TABLE refresh_tokens ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
UPDATE refresh_tokens SET generation = 1 WHERE revoked_at IS NULL;
ALTER TABLE refresh_tokens DROP COLUMN revoked_at;

-- One counter row per rate-limit key (a hash of purpose + login, or of purpose + account):
-- a send is counted and checked by one statement, so a burst cannot slip past the limit.
DROP TABLE verification_sends;
CREATE TABLE send_counters (
    key_hash TEXT PRIMARY KEY,
    minute_started_at BIGINT NOT NULL,
    minute_sends BIGINT NOT NULL,
    day_started_at BIGINT NOT NULL,
    day_sends BIGINT NOT NULL
);

-- Sign-in failures are now counted per login as typed (normalized), for known and unknown
-- logins alike; the old per-account counters mean nothing any more.
DELETE FROM login_failures;

-- An address is unique among verified ones only: claiming one that is taken is accepted (and
-- stays unverified), so Register and UpdateProfile never reveal whether an address has an
-- account.
DROP INDEX users_email_normalized;
CREATE INDEX users_email_normalized ON users (email_normalized);
CREATE UNIQUE INDEX users_verified_email ON users (email_normalized) WHERE email_verified = 1;
