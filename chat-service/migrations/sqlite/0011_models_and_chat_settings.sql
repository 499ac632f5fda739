-- Per-chat generation settings beside temperature, the config name each answer was written
-- with, each account's favourite models and its defaults for new chats.
ALTER TABLE chat_sessions ADD COLUMN top_p REAL;
ALTER TABLE chat_sessions ADD COLUMN max_tokens BIGINT;
-- The API config's (or shared connection's) name when the answer was written; '' for
-- questions and older answers.
ALTER TABLE chat_messages ADD COLUMN api_config_name TEXT NOT NULL DEFAULT '';

CREATE TABLE favorite_models (
    user_id BIGINT NOT NULL,
    api_config_id BIGINT NOT NULL,
    model TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, api_config_id, model)
);

CREATE TABLE chat_defaults (
    user_id BIGINT PRIMARY KEY,
    persona_id BIGINT,
    system_prompt TEXT NOT NULL DEFAULT '',
    temperature REAL,
    top_p REAL,
    max_tokens BIGINT,
    updated_at BIGINT NOT NULL
);
