-- Account ids that are never reused, revocations of access tokens, and the outbox of deleted
-- accounts.

-- A random UUID per account, carried in access tokens (`aid`): user ids start again at 1 when
-- a database is reset, so other services key an account's data by this instead. Existing
-- accounts get one now (a version-4 UUID made from random bytes).
ALTER TABLE users ADD COLUMN account_id TEXT;
UPDATE users SET account_id = lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
    || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1)
    || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)));
CREATE UNIQUE INDEX users_account_id ON users (account_id);

-- Access tokens to refuse before they expire: a sign-in that ended (`session`: a refresh-token
-- family id, the token's `sid` claim) or an account deleted or disabled (`account`: the
-- account id, the `aid` claim; tokens issued before `revoked_at`). Verifiers fetch the list
-- with the public keys; a row is kept until every token it is about has expired, then the
-- cleanup removes it.
CREATE TABLE token_revocations (
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (subject_kind, subject_id)
);
CREATE INDEX token_revocations_revoked_at ON token_revocations (revoked_at);

-- Deleted accounts whose data other services still hold (chat-service's sessions, messages,
-- API configs): an outbox, written in the deletion's transaction, that a background worker
-- delivers and then removes, retrying with a growing delay.
CREATE TABLE account_deletions (
    account_id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX account_deletions_next_attempt ON account_deletions (next_attempt_at);
