-- A personal chat's messages form a tree: regenerating an answer adds a sibling answer (a
-- version), editing an earlier question adds a sibling question (a branch). The session
-- remembers the message its shown branch ends at. Room messages (sessions of owner 0) keep
-- parent_id NULL: a room is one timeline. See ARCHITECTURE.md, "Versions and branches".
ALTER TABLE chat_messages ADD COLUMN parent_id BIGINT;
-- When this message last became the end of the shown branch (NULL: when it was created);
-- switching to a version descends to the most recently shown branch below it.
ALTER TABLE chat_messages ADD COLUMN selected_at BIGINT;
ALTER TABLE chat_sessions ADD COLUMN current_message_id BIGINT;

-- Existing chats become one chain in their order: an answer hangs under the question it
-- answers (so the answers of one question are its versions), any other message under the
-- message before it. Versions of one answer share its created_at (a regeneration took the
-- old answer's place): among them the chain goes on from a finished one, not a failed one.
UPDATE chat_messages SET parent_id = reply_to_id
WHERE role = 'assistant' AND reply_to_id IS NOT NULL
  AND session_id IN (SELECT id FROM chat_sessions WHERE user_id <> 0);
UPDATE chat_messages SET parent_id = (
    SELECT p.id FROM chat_messages p
    WHERE p.session_id = chat_messages.session_id
      AND (p.created_at < chat_messages.created_at
           OR (p.created_at = chat_messages.created_at AND p.id < chat_messages.id))
    ORDER BY p.created_at DESC, CASE WHEN p.status = 'failed' THEN 1 ELSE 0 END, p.id DESC LIMIT 1)
WHERE parent_id IS NULL AND (role <> 'assistant' OR reply_to_id IS NULL)
  AND session_id IN (SELECT id FROM chat_sessions WHERE user_id <> 0);
UPDATE chat_sessions SET current_message_id = (
    SELECT m.id FROM chat_messages m WHERE m.session_id = chat_sessions.id
    ORDER BY m.created_at DESC, CASE WHEN m.status = 'failed' THEN 1 ELSE 0 END, m.id DESC LIMIT 1)
WHERE user_id <> 0;

-- A message's children (its versions' subtrees are found and deleted through it).
CREATE INDEX chat_messages_parent ON chat_messages (parent_id) WHERE parent_id IS NOT NULL;
