-- Share links (issue 15): read-only snapshots of a chat, frozen when the link is made.
-- Independent of 0010 and 0011 (other features): only chat_sessions is referenced.

CREATE TABLE chat_share_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The link's secret: 32 random bytes, URL-safe base64. Kept as it is, not hashed, so the
    -- owner can copy the link again; it opens nothing but the snapshot below, which a reader
    -- of this table can read anyway.
    share_token TEXT NOT NULL UNIQUE,
    -- The chat_owners id of the chat's owner.
    owner_id BIGINT NOT NULL,
    session_id BIGINT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    -- The chat's title and persona name when the link was made.
    title TEXT NOT NULL,
    persona_name TEXT NOT NULL DEFAULT '',
    message_count BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX chat_share_links_owner ON chat_share_links (owner_id, id);
CREATE INDEX chat_share_links_session ON chat_share_links (session_id);

-- The snapshot's messages, copied (later edits and deletions of the chat do not reach them).
CREATE TABLE chat_share_messages (
    link_id BIGINT NOT NULL REFERENCES chat_share_links (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    -- 'user' | 'assistant'
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (link_id, position)
);
