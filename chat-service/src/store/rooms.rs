//! `rooms`, `room_members`, `room_invites` and `room_events`, and room messages (rows of
//! `chat_messages` in the room's own session). The service checks membership and roles before
//! calling anything here that takes a room id; these statements only read and write.

mod events;
mod invites;
pub mod messages;
mod retention;

pub use events::RoomEventRow;
pub use invites::{InvitationRow, InviteCodeRow};
pub use retention::RetainedRoom;

use parley_service_kit::database::flag;

use super::ChatStore;
use crate::ids::{ApiConfigId, MessageId, OwnerId, PersonaId, RoomId, SessionId};

/// A stored word this version does not know (a newer version wrote it, or a hand edit).
#[derive(Debug, thiserror::Error)]
#[error("unknown {column} {value:?} in the room tables")]
pub struct UnknownRoomValue {
    column: &'static str,
    value: String,
}

/// An enum stored as a word: `as_str` writes it, `TryFrom<String>` reads it.
macro_rules! stored_word {
    ($(#[$doc:meta])* $name:ident, $column:literal { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $word),+ }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownRoomValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                match value.as_str() {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(UnknownRoomValue { column: $column, value }),
                }
            }
        }
    };
}

stored_word!(
    /// `rooms.visibility`.
    Visibility, "visibility" { Public = "public", Private = "private" }
);
stored_word!(
    /// `room_members.role`, most powerful first.
    RoomRole, "role" { Owner = "owner", Admin = "admin", Member = "member" }
);
stored_word!(
    /// `chat_messages.author_kind` of a room message.
    AuthorKind, "author_kind" { User = "user", Ai = "ai", System = "system" }
);
stored_word!(
    /// `chat_messages.message_type` of a room message.
    RoomMessageType, "message_type" { Text = "text", SystemEvent = "system_event", AiAnswer = "ai_answer" }
);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoomRow {
    pub id: RoomId,
    pub owner_id: OwnerId,
    pub owner_account: String,
    pub session_id: SessionId,
    pub name: String,
    pub topic: String,
    #[sqlx(try_from = "String")]
    pub visibility: Visibility,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_active_at: i64,
    pub member_count: i64,
    pub ai_api_config_id: Option<ApiConfigId>,
    /// None: messages are kept forever.
    pub retention_days: Option<i64>,
    /// The AI member's persona (one of the owner's), and its name ("" without one).
    pub ai_persona_id: Option<PersonaId>,
    pub ai_persona_name: String,
}

const ROOM_COLUMNS: &str = "r.id, r.owner_id, COALESCE(o.account_id, '') AS owner_account, r.session_id, r.name, \
     r.topic, r.visibility, r.created_at, r.updated_at, r.last_active_at, \
     (SELECT COUNT(*) FROM room_members c WHERE c.room_id = r.id AND c.banned_at IS NULL) AS member_count, \
     r.ai_api_config_id, r.retention_days, r.ai_persona_id, \
     COALESCE((SELECT p.name FROM personas p WHERE p.id = r.ai_persona_id), '') AS ai_persona_name";
const ROOM_FROM: &str = "rooms r JOIN chat_owners o ON o.id = r.owner_id";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub room_id: RoomId,
    pub member_id: OwnerId,
    pub account_id: String,
    #[sqlx(try_from = "String")]
    pub role: RoomRole,
    pub joined_at: i64,
    pub muted_until: Option<i64>,
    pub banned_at: Option<i64>,
    pub last_read_message_id: Option<MessageId>,
}

const MEMBER_COLUMNS: &str = "m.room_id, m.member_id, COALESCE(o.account_id, '') AS account_id, m.role, \
     m.joined_at, m.muted_until, m.banned_at, m.last_read_message_id";
const MEMBER_FROM: &str = "room_members m JOIN chat_owners o ON o.id = m.member_id";

/// A room's fields as they will be after a create or update.
pub struct RoomFields<'a> {
    pub name: &'a str,
    pub topic: &'a str,
    pub visibility: Visibility,
    pub retention_days: Option<i64>,
}

impl ChatStore {
    /// The room, its session (owned by no account: user_id 0) and its owner's membership.
    pub async fn insert_room(&self, owner: OwnerId, fields: &RoomFields<'_>, now: i64) -> Result<RoomId, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let (session_id,): (SessionId,) = sqlx::query_as(
            "INSERT INTO chat_sessions (user_id, title, start_time, updated_at, last_active_at) \
             VALUES (0, $1, $2, $2, $2) RETURNING id",
        )
        .bind(fields.name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let (room_id,): (RoomId,) = sqlx::query_as(
            "INSERT INTO rooms (owner_id, session_id, name, topic, visibility, created_at, updated_at, last_active_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $6) RETURNING id",
        )
        .bind(owner)
        .bind(session_id)
        .bind(fields.name)
        .bind(fields.topic)
        .bind(fields.visibility.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO room_members (room_id, member_id, role, joined_at) VALUES ($1, $2, 'owner', $3)")
            .bind(room_id)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(room_id)
    }

    pub async fn room(&self, id: RoomId) -> Result<Option<RoomRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ROOM_COLUMNS} FROM {ROOM_FROM} WHERE r.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// The rooms `member` belongs to (not banned from), most recently active first, with the
    /// member's role in each.
    pub async fn rooms_of(&self, member: OwnerId) -> Result<Vec<(RoomRow, MemberRow)>, sqlx::Error> {
        let rooms: Vec<RoomRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ROOM_COLUMNS} FROM {ROOM_FROM} JOIN room_members me ON me.room_id = r.id \
             WHERE me.member_id = $1 AND me.banned_at IS NULL ORDER BY r.last_active_at DESC, r.id DESC"
        )))
        .bind(member)
        .fetch_all(&self.pool)
        .await?;
        let memberships: Vec<MemberRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE m.member_id = $1 AND m.banned_at IS NULL"
        )))
        .bind(member)
        .fetch_all(&self.pool)
        .await?;
        Ok(rooms
            .into_iter()
            .filter_map(|room| {
                let me = memberships.iter().find(|m| m.room_id == room.id)?.clone();
                Some((room, me))
            })
            .collect())
    }

    /// The ids of the rooms `member` belongs to.
    pub async fn room_ids_of(&self, member: OwnerId) -> Result<Vec<RoomId>, sqlx::Error> {
        let rows: Vec<(RoomId,)> =
            sqlx::query_as("SELECT room_id FROM room_members WHERE member_id = $1 AND banned_at IS NULL")
                .bind(member)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Public rooms whose name or topic contains `pattern` (lower case), most recently active
    /// first, after `after` (last_active_at, id).
    pub async fn public_rooms(
        &self,
        pattern: &str,
        after: Option<(i64, RoomId)>,
        limit: i64,
    ) -> Result<Vec<RoomRow>, sqlx::Error> {
        let (active, id) = after.unwrap_or((i64::MAX, RoomId(i64::MAX)));
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ROOM_COLUMNS} FROM {ROOM_FROM} WHERE r.visibility = 'public' \
             AND (LOWER(r.name) LIKE $1 OR LOWER(r.topic) LIKE $1) \
             AND (r.last_active_at < $2 OR (r.last_active_at = $2 AND r.id < $3)) \
             ORDER BY r.last_active_at DESC, r.id DESC LIMIT $4"
        )))
        .bind(format!("%{pattern}%"))
        .bind(active)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn update_room(&self, id: RoomId, fields: &RoomFields<'_>, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE rooms SET name = $2, topic = $3, visibility = $4, retention_days = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(fields.name)
        .bind(fields.topic)
        .bind(fields.visibility.as_str())
        .bind(fields.retention_days)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The room with its members and invitations, then its session with its messages.
    pub async fn delete_room(&self, room: &RoomRow) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(room.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM chat_sessions WHERE id = $1 AND user_id = 0")
            .bind(room.session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// The member row (banned ones too) of `member` in the room.
    pub async fn member(&self, room: RoomId, member: OwnerId) -> Result<Option<MemberRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE m.room_id = $1 AND m.member_id = $2"
        )))
        .bind(room)
        .bind(member)
        .fetch_optional(&self.pool)
        .await
    }

    /// The room's members (not the banned), owner first, then admins, then members.
    pub async fn members(&self, room: RoomId) -> Result<Vec<MemberRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE m.room_id = $1 AND m.banned_at IS NULL \
             ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, m.joined_at, m.member_id"
        )))
        .bind(room)
        .fetch_all(&self.pool)
        .await
    }

    /// How many rooms `member` belongs to.
    pub async fn room_count_of(&self, member: OwnerId) -> Result<i64, sqlx::Error> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM room_members WHERE member_id = $1 AND banned_at IS NULL")
                .bind(member)
                .fetch_one(&self.pool)
                .await?;
        Ok(count)
    }

    /// Adds `member` with `role`; false if they already have a row (a member, or banned).
    pub async fn add_member(
        &self,
        room: RoomId,
        member: OwnerId,
        role: RoomRole,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let added = sqlx::query(
            "INSERT INTO room_members (room_id, member_id, role, joined_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, member_id) DO NOTHING",
        )
        .bind(room)
        .bind(member)
        .bind(role.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(added > 0)
    }

    /// Removes a member (or lifts a ban: the row goes either way).
    pub async fn remove_member(&self, room: RoomId, member: OwnerId) -> Result<bool, sqlx::Error> {
        let removed = sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND member_id = $2")
            .bind(room)
            .bind(member)
            .execute(&self.pool)
            .await?
            .rows_affected();
        self.forget_room_mute(room, member).await?;
        Ok(removed > 0)
    }

    /// Bans a member: the row stays, as a ban, with no role left to use.
    pub async fn ban_member(&self, room: RoomId, member: OwnerId, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE room_members SET banned_at = $3, role = 'member', muted_until = NULL \
             WHERE room_id = $1 AND member_id = $2",
        )
        .bind(room)
        .bind(member)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.forget_room_mute(room, member).await
    }

    pub async fn set_member_role(&self, room: RoomId, member: OwnerId, role: RoomRole) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE room_members SET role = $3 WHERE room_id = $1 AND member_id = $2 AND banned_at IS NULL")
            .bind(room)
            .bind(member)
            .bind(role.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `muted_until` None lifts a mute.
    pub async fn set_muted_until(
        &self,
        room: RoomId,
        member: OwnerId,
        muted_until: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE room_members SET muted_until = CASE WHEN $4 = 0 THEN NULL ELSE $3 END \
             WHERE room_id = $1 AND member_id = $2",
        )
        .bind(room)
        .bind(member)
        .bind(muted_until.unwrap_or_default())
        .bind(flag(muted_until.is_some()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes `new_owner` the owner and the old owner an admin, in one transaction.
    pub async fn transfer_ownership(
        &self,
        room: RoomId,
        old_owner: OwnerId,
        new_owner: OwnerId,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // The AI member used the old owner's config: it goes with them.
        sqlx::query(
            "UPDATE rooms SET owner_id = $2, ai_api_config_id = NULL, ai_persona_id = NULL, updated_at = $3 \
             WHERE id = $1",
        )
        .bind(room)
        .bind(new_owner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (member, role) in [(old_owner, RoomRole::Admin), (new_owner, RoomRole::Owner)] {
            sqlx::query("UPDATE room_members SET role = $3 WHERE room_id = $1 AND member_id = $2")
                .bind(room)
                .bind(member)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Moves the member's last read message forward to `message` (never back); false when it
    /// was there or further already.
    pub async fn mark_read(&self, room: RoomId, member: OwnerId, message: MessageId) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE room_members SET last_read_message_id = $3 WHERE room_id = $1 AND member_id = $2 \
             AND (last_read_message_id IS NULL OR last_read_message_id < $3)",
        )
        .bind(room)
        .bind(member)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The account ids of the room's members, other than `author`, whose last read message is
    /// `message` or a later one, by joining time.
    pub async fn message_readers(
        &self,
        room: RoomId,
        message: MessageId,
        author: Option<OwnerId>,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT COALESCE(o.account_id, '') FROM room_members m JOIN chat_owners o ON o.id = m.member_id \
             WHERE m.room_id = $1 AND m.banned_at IS NULL AND m.last_read_message_id >= $2 AND m.member_id <> $3 \
             ORDER BY m.joined_at, m.member_id",
        )
        .bind(room)
        .bind(message)
        .bind(author.unwrap_or(OwnerId(0)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(account,)| account).collect())
    }

    /// Messages in the session by others than `member`, not deleted, after `read`.
    pub async fn unread_count(
        &self,
        session_id: SessionId,
        member: OwnerId,
        read: Option<MessageId>,
    ) -> Result<i64, sqlx::Error> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM chat_messages WHERE session_id = $1 AND id > $3 AND deleted_at IS NULL \
             AND (author_id IS NULL OR author_id <> $2)",
        )
        .bind(session_id)
        .bind(member)
        .bind(read.unwrap_or(MessageId(0)))
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    pub async fn set_room_ai(
        &self,
        room: RoomId,
        config: Option<ApiConfigId>,
        persona: Option<PersonaId>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE rooms SET ai_api_config_id = $2, ai_persona_id = $3, updated_at = $4 WHERE id = $1")
            .bind(room)
            .bind(config)
            .bind(persona)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Up to `limit` of the rooms `owner` owns (to erase an account's rooms in batches).
    pub async fn rooms_owned_by(&self, owner: OwnerId, limit: i64) -> Result<Vec<RoomRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ROOM_COLUMNS} FROM {ROOM_FROM} WHERE r.owner_id = $1 ORDER BY r.id LIMIT $2"
        )))
        .bind(owner)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Everything of an erased account in others' rooms: its memberships and bans, its
    /// invitations either way, and the text of what it wrote (the rows stay, deleted, so
    /// replies keep their place).
    pub async fn erase_room_presence(&self, owner: OwnerId, now: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM room_members WHERE member_id = $1")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM room_invites WHERE invitee_id = $1 OR inviter_id = $1")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE chat_messages SET content = '', deleted_at = $2, updated_at = $2 \
             WHERE author_id = $1 AND deleted_at IS NULL",
        )
        .bind(owner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
