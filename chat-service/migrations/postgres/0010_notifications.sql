-- Notifications (issue 11): one row per recipient, newest kept (the rest pruned as new ones
-- arrive). The encoded parley.chat.v1.Notification (without id and read_at) is the payload,
-- so a new detail needs no new column.
CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    -- The recipient (chat_owners).
    owner_id BIGINT NOT NULL,
    -- 'mention' | 'invitation' | 'role_changed' | 'removed' | 'announcement'
    kind TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    -- NULL while unread.
    read_at BIGINT
);
CREATE INDEX notifications_owner ON notifications (owner_id, id);
CREATE INDEX notifications_unread ON notifications (owner_id, id) WHERE read_at IS NULL;

-- What an account is notified of; no row: everything (the defaults).
CREATE TABLE notification_settings (
    owner_id BIGINT PRIMARY KEY,
    mentions SMALLINT NOT NULL DEFAULT 1,
    invitations SMALLINT NOT NULL DEFAULT 1,
    role_changes SMALLINT NOT NULL DEFAULT 1,
    removals SMALLINT NOT NULL DEFAULT 1,
    announcements SMALLINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL
);

-- Rooms an account muted: nothing about them notifies it. Gone with the room or the
-- membership.
CREATE TABLE notification_room_mutes (
    owner_id BIGINT NOT NULL,
    room_id BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    PRIMARY KEY (owner_id, room_id)
);
