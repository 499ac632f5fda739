-- Chat data belongs to an account's random UUID (the `aid` of its access tokens), not to the
-- integer user id, which a reset user database hands out again. From here on every `user_id`
-- column holds the id of a row of this table (an owner), found by the caller's `aid`.
CREATE TABLE chat_owners (
    id BIGSERIAL PRIMARY KEY,
    -- NULL only for a legacy owner (below) that no account has adopted.
    account_id TEXT UNIQUE,
    -- Legacy owners only: the user id the rows were keyed by before this migration.
    legacy_user_id BIGINT UNIQUE,
    created_at BIGINT NOT NULL,
    -- The account was deleted: its tokens are refused here and its rows are erased.
    erased_at BIGINT
);
CREATE INDEX chat_owners_erased ON chat_owners (erased_at) WHERE erased_at IS NOT NULL;

-- Rows written before this migration keep their ids: each user id becomes a legacy owner
-- with the same id (new owners are numbered after them). See chat-service/README.md for who
-- may adopt one.
INSERT INTO chat_owners (id, account_id, legacy_user_id, created_at)
SELECT user_id, NULL, user_id, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT FROM (
    SELECT user_id FROM api_configs
    UNION SELECT user_id FROM personas WHERE user_id IS NOT NULL
    UNION SELECT user_id FROM chat_sessions
) AS legacy;
SELECT setval(pg_get_serial_sequence('chat_owners', 'id'), COALESCE((SELECT MAX(id) FROM chat_owners), 0) + 1, false);
