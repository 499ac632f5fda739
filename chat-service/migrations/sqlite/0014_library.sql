-- The chat screen's library: saved prompts, chat folders, persona avatars and the persona
-- each answer was written with.

-- Saved prompts, inserted in the composer with `/command`.
CREATE TABLE prompts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    title TEXT NOT NULL,
    command TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX prompts_user_command ON prompts (user_id, command);

-- A user's folders; a chat is in at most one (chat_sessions.folder_id, NULL: none).
CREATE TABLE chat_folders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX chat_folders_user_name ON chat_folders (user_id, name);
ALTER TABLE chat_sessions ADD COLUMN folder_id BIGINT;

-- An emoji or a few characters shown beside a persona's answers ('' : the name's initial).
ALTER TABLE personas ADD COLUMN avatar TEXT NOT NULL DEFAULT '';
-- The chat's persona when an answer was written, as it was then; '' for questions, chats
-- without a persona and older answers.
ALTER TABLE chat_messages ADD COLUMN persona_name TEXT NOT NULL DEFAULT '';
ALTER TABLE chat_messages ADD COLUMN persona_avatar TEXT NOT NULL DEFAULT '';
