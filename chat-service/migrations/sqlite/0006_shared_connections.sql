-- Shared connections: API configs an administrator adds for all users or chosen accounts.
-- The provider settings and the sealed key stay an `api_configs` row (owned by the reserved
-- owner `system:shared-connections`), so sessions name a shared connection by its config id,
-- and key sealing, master-key rotation and deletion work as for every config. These tables
-- hold only what sharing adds.
CREATE TABLE shared_connections (
    api_config_id BIGINT PRIMARY KEY REFERENCES api_configs (id) ON DELETE CASCADE,
    -- ISO 4217 code of the prices; '' when all are 0.
    currency TEXT NOT NULL DEFAULT '',
    -- Tokens (prompt + completion) per user per UTC day / calendar month; 0: no limit.
    daily_token_limit BIGINT NOT NULL DEFAULT 0,
    monthly_token_limit BIGINT NOT NULL DEFAULT 0,
    -- 1: every account may use it.
    everyone INTEGER NOT NULL DEFAULT 0
);

-- The models a shared connection offers (position 0 is the default) and their prices, in
-- micro-units of the currency per 1,000,000 tokens.
CREATE TABLE shared_connection_models (
    api_config_id BIGINT NOT NULL REFERENCES shared_connections (api_config_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    model TEXT NOT NULL,
    prompt_price_micros BIGINT NOT NULL DEFAULT 0,
    completion_price_micros BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (api_config_id, model)
);

-- Accounts granted a shared connection one by one, by account id (the token's `aid`): an
-- account that never called chat-service has no owner row yet.
CREATE TABLE shared_connection_grants (
    api_config_id BIGINT NOT NULL REFERENCES shared_connections (api_config_id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (api_config_id, account_id)
);
CREATE INDEX shared_connection_grants_account ON shared_connection_grants (account_id);

-- Tokens of every answer, per owner, config (own or shared), model and UTC day (days since
-- 1970-01-01). Cost is kept exact as tokens × price-per-million-in-micro-units, which is
-- pico-units (10^-12) of `currency`; rounding happens only when shown.
CREATE TABLE token_usage (
    user_id BIGINT NOT NULL,
    api_config_id BIGINT NOT NULL,
    model TEXT NOT NULL,
    day BIGINT NOT NULL,
    shared INTEGER NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    answers BIGINT NOT NULL DEFAULT 0,
    cost_picos BIGINT NOT NULL DEFAULT 0,
    currency TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, api_config_id, model, day)
);
CREATE INDEX token_usage_day ON token_usage (day);
