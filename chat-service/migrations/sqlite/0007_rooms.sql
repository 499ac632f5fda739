-- Rooms: conversations shared by many accounts. A room is its own entity (rooms,
-- room_members, room_invites) over the same message store as private chats: its messages are
-- chat_messages of a chat_sessions row of its own, whose user_id is 0 (no account has owner
-- id 0, so no owner-checked session or message query ever finds it). See ARCHITECTURE.md.

CREATE TABLE rooms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The owner id (chat_owners) of the room's owner; also in room_members with role 'owner'.
    owner_id BIGINT NOT NULL,
    -- The chat_sessions row holding the room's messages.
    session_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    -- 'public' | 'private'
    visibility TEXT NOT NULL,
    -- The AI member: one of the owner's API configs, which members use without seeing it.
    -- NULL: the room has no AI member.
    ai_api_config_id BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_active_at BIGINT NOT NULL
);
CREATE INDEX rooms_public ON rooms (visibility, last_active_at, id);

CREATE TABLE room_members (
    room_id BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    member_id BIGINT NOT NULL,
    -- 'owner' | 'admin' | 'member'
    role TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    -- Muted (reads, cannot post) until then; NULL: not muted.
    muted_until BIGINT,
    -- Banned: not a member any more and may not join again; the row remembers the ban.
    banned_at BIGINT,
    -- The newest message the member has read (read status, unread counts).
    last_read_message_id BIGINT,
    PRIMARY KEY (room_id, member_id)
);
CREATE INDEX room_members_member ON room_members (member_id, room_id);

CREATE TABLE room_invites (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    inviter_id BIGINT NOT NULL,
    -- An invitation of one account, or (invitee_id NULL) a code anyone holding it may use.
    invitee_id BIGINT,
    -- SHA-256 (hex) of an invite code; the code itself is never stored.
    code_hash TEXT UNIQUE,
    expires_at BIGINT,
    -- NULL: no limit.
    max_uses BIGINT,
    uses BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    -- An invitation the invitee accepted or declined.
    responded_at BIGINT
);
CREATE INDEX room_invites_invitee ON room_invites (invitee_id, responded_at);

-- Every room event in order; WatchRoomEvents resumes from an id. No foreign key: a deleted
-- room's last event outlives it.
CREATE TABLE room_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id BIGINT NOT NULL,
    -- The member an event is about (joined, left, removed, invited).
    subject_id BIGINT,
    -- 1: only the subject sees it (an invitation).
    subject_only SMALLINT NOT NULL DEFAULT 0,
    -- The encoded parley.chat.v1.RoomEvent (without its id).
    payload BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX room_events_room ON room_events (room_id, id);
CREATE INDEX room_events_subject ON room_events (subject_id, id);

-- What a room message has beyond a private chat's (NULL on private chats' messages).
ALTER TABLE chat_messages ADD COLUMN author_id BIGINT;
-- 'user' | 'ai' | 'system'
ALTER TABLE chat_messages ADD COLUMN author_kind TEXT;
-- 'text' | 'system_event' | 'ai_answer'
ALTER TABLE chat_messages ADD COLUMN message_type TEXT;
ALTER TABLE chat_messages ADD COLUMN edited_at BIGINT;
ALTER TABLE chat_messages ADD COLUMN deleted_at BIGINT;
CREATE INDEX chat_messages_author ON chat_messages (session_id, author_id, created_at) WHERE author_id IS NOT NULL;
