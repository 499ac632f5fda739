-- Why a failed answer failed, as a stable code the UI translates (grpc_status::Reason,
-- e.g. PROVIDER_AUTH_FAILED); empty for answers that did not fail or failed for no known reason.
ALTER TABLE chat_messages ADD COLUMN error_reason TEXT NOT NULL DEFAULT '';
