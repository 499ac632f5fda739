-- One answer generating per session, enforced by the database so that instances sharing it
-- cannot both start one; and the STREAMING rows (few at any time) found without a table scan
-- by the abandoned-answer sweep, the busy-session check and DeleteSession.

-- A race before this index could have left two; keep the newest, fail the others.
UPDATE chat_messages SET status = 'failed',
    error = 'interrupted: another answer was being generated in this session', error_code = 10
WHERE status = 'streaming'
  AND id NOT IN (SELECT MAX(id) FROM chat_messages WHERE status = 'streaming' GROUP BY session_id);

CREATE UNIQUE INDEX chat_messages_one_streaming_per_session ON chat_messages (session_id)
    WHERE status = 'streaming';
CREATE INDEX chat_messages_streaming_updated ON chat_messages (updated_at)
    WHERE status = 'streaming';

-- Built-in personas were seeded with time 0 (shown as 1970): they exist since this migration.
UPDATE personas SET created_at = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT),
    updated_at = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)
WHERE user_id IS NULL AND created_at = 0;
