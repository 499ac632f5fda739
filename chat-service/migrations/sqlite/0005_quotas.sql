-- Quotas. An administrator's per-account overrides of the operator's defaults (the --quota-*
-- flags): NULL follows the default, 0 is unlimited.
CREATE TABLE chat_quota_overrides (
    owner_id BIGINT PRIMARY KEY REFERENCES chat_owners (id),
    stored_bytes BIGINT,
    sessions BIGINT,
    personas BIGINT,
    api_configs BIGINT,
    messages_per_day BIGINT,
    updated_at BIGINT NOT NULL
);

-- Questions sent and answers regenerated per owner and UTC day (days since the Unix epoch).
-- Counted when sent, so deleting a chat does not give the day's quota back.
CREATE TABLE chat_daily_messages (
    owner_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (owner_id, day)
);
