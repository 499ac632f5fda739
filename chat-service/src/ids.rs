//! Row ids as types of their own, so a session id cannot be passed where a message id (or
//! an owner id) is meant: several calls take two or three ids side by side. They are stored as
//! `BIGINT` (sqlx's `transparent` encoding) and leave the service as the protos' `int64`.

use std::fmt;

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// A row of `chat_owners`: the account (by its `aid`, never by user-service's reusable
    /// integer id) that owns chat data. Every row a user owns stores it in `user_id`.
    OwnerId
);
row_id!(
    /// A row of `chat_sessions`.
    SessionId
);
row_id!(
    /// A row of `chat_messages`: a question or an answer.
    MessageId
);
row_id!(
    /// A row of `api_configs`.
    ApiConfigId
);
row_id!(
    /// A row of `personas` (built in or a user's own).
    PersonaId
);
row_id!(
    /// A row of `chat_folders`: one of a user's folders of chats.
    FolderId
);
row_id!(
    /// A row of `prompts`: one of a user's saved prompts.
    PromptId
);
row_id!(
    /// A row of `rooms`.
    RoomId
);
row_id!(
    /// A row of `room_invites`: an invitation of one account, or an invite code.
    RoomInviteId
);
row_id!(
    /// A row of `room_events`: the position WatchRoomEvents resumes from.
    RoomEventId
);
row_id!(
    /// A row of `chat_share_links`: a read-only link to a snapshot of a chat.
    ShareLinkId
);
row_id!(
    /// A row of `notifications`: one notification of one account.
    NotificationId
);
