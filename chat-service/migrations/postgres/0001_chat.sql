-- API configs, personas, sessions and messages. Times are Unix milliseconds; flags are
-- SMALLINT (0/1) so the same code reads them on SQLite and PostgreSQL.

CREATE TABLE api_configs (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    base_url TEXT NOT NULL,
    model TEXT NOT NULL,
    -- AEAD ciphertext of the API key; the row id is bound in as associated data, so the
    -- row is inserted first and the key written in the same transaction.
    api_key_ciphertext BYTEA,
    api_key_nonce BYTEA,
    api_key_key_version BIGINT NOT NULL DEFAULT 0,
    api_key_hint TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX api_configs_user_name ON api_configs (user_id, name);

CREATE TABLE personas (
    id BIGSERIAL PRIMARY KEY,
    -- NULL: built in, read-only, visible to everyone.
    user_id BIGINT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    system_prompt TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX personas_user ON personas (user_id);

CREATE TABLE chat_sessions (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    system_prompt TEXT NOT NULL DEFAULT '',
    persona_id BIGINT,
    api_config_id BIGINT,
    model TEXT NOT NULL DEFAULT '',
    temperature DOUBLE PRECISION,
    pinned SMALLINT NOT NULL DEFAULT 0,
    archived SMALLINT NOT NULL DEFAULT 0,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    updated_at BIGINT NOT NULL,
    last_active_at BIGINT NOT NULL
);
CREATE INDEX chat_sessions_listing ON chat_sessions (user_id, pinned, last_active_at, id);

CREATE TABLE chat_messages (
    id BIGSERIAL PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    reasoning TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    error TEXT NOT NULL DEFAULT '',
    error_code INTEGER NOT NULL DEFAULT 0,
    -- For an assistant answer: the user message it answers (regeneration replaces by it).
    reply_to_id BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX chat_messages_session_created ON chat_messages (session_id, created_at, id);

INSERT INTO personas (user_id, name, description, system_prompt, created_at, updated_at) VALUES
 (NULL, 'General assistant', 'A helpful, concise assistant for everyday questions.',
  'You are a helpful assistant. Answer clearly and concisely; say so when you are unsure.', 0, 0),
 (NULL, '中英翻译', 'Chinese ⇄ English translator.',
  'You are a professional translator. If the user writes Chinese, translate it into natural English; if the user writes English, translate it into natural Simplified Chinese. Output only the translation.', 0, 0),
 (NULL, 'Code reviewer', 'Reviews code for bugs, clarity and style.',
  'You are an experienced code reviewer. Point out bugs, security problems and unclear code first, then style; suggest concrete fixes with short code snippets.', 0, 0),
 (NULL, 'Writing editor', 'Improves the clarity and flow of a text.',
  'You are a careful editor. Improve the clarity, grammar and flow of the text the user gives you while keeping its meaning and voice; list the main changes briefly.', 0, 0);
