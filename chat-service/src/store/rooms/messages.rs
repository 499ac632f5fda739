//! Room messages: rows of `chat_messages` in the room's session, with an author, a kind and a
//! type, edited and deleted marks. The caller checked that the session is the room's.

use sqlx::AnyConnection;

use super::{AuthorKind, RoomMessageType};
use crate::ids::{MessageId, OwnerId, RoomId, SessionId};
use crate::page_token::MessageCursor;
use crate::store::{ChatStore, MessageStatus, QuotaWrite};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoomMessageRow {
    pub id: MessageId,
    pub session_id: SessionId,
    pub author_id: Option<OwnerId>,
    pub author_account: String,
    #[sqlx(try_from = "String")]
    pub author_kind: AuthorKind,
    #[sqlx(try_from = "String")]
    pub message_type: RoomMessageType,
    pub content: String,
    pub reply_to_id: Option<MessageId>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// AI answers are written by a generation (STREAMING, then how it ended); the rest COMPLETE.
    #[sqlx(try_from = "String")]
    pub status: MessageStatus,
    pub error: String,
}

const ROOM_MESSAGE_SELECT: &str = "SELECT m.id, m.session_id, m.author_id, COALESCE(o.account_id, '') AS author_account, \
     m.author_kind, m.message_type, m.content, m.reply_to_id, m.created_at, m.edited_at, m.deleted_at, \
     m.status, m.error \
     FROM chat_messages m LEFT JOIN chat_owners o ON o.id = m.author_id";

/// A message to add to a room.
pub struct NewRoomMessage<'a> {
    pub room_id: RoomId,
    pub session_id: SessionId,
    pub author_id: Option<OwnerId>,
    pub author_kind: AuthorKind,
    pub message_type: RoomMessageType,
    pub content: &'a str,
    pub reply_to_id: Option<MessageId>,
    pub now: i64,
}

/// The AI member's empty answer, written by a generation from here on.
pub struct NewRoomAnswer<'a> {
    pub model: &'a str,
    pub config_name: &'a str,
}

impl ChatStore {
    /// Stores the message (complete: room messages are written whole) and marks the room active.
    pub async fn insert_room_message(&self, new: &NewRoomMessage<'_>) -> Result<RoomMessageRow, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let id = Self::insert_room_message_in(&mut tx, new, None).await?;
        tx.commit().await?;
        self.room_message(new.session_id, id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Inserts a room message, COMPLETE, or with `answer` an empty STREAMING AI answer (the
    /// room's session has one at most: `chat_messages_one_streaming_per_session`).
    async fn insert_room_message_in(
        conn: &mut AnyConnection,
        new: &NewRoomMessage<'_>,
        answer: Option<&NewRoomAnswer<'_>>,
    ) -> Result<MessageId, sqlx::Error> {
        let status = match answer {
            Some(_) => MessageStatus::Streaming,
            None => MessageStatus::Complete,
        };
        let (id,): (MessageId,) = sqlx::query_as(
            "INSERT INTO chat_messages (session_id, role, content, status, reply_to_id, author_id, author_kind, \
             message_type, created_at, updated_at, model, api_config_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11) RETURNING id",
        )
        .bind(new.session_id)
        .bind(match new.author_kind {
            AuthorKind::Ai => "assistant",
            AuthorKind::User => "user",
            AuthorKind::System => "system",
        })
        .bind(new.content)
        .bind(status.as_str())
        .bind(new.reply_to_id)
        .bind(new.author_id)
        .bind(new.author_kind.as_str())
        .bind(new.message_type.as_str())
        .bind(new.now)
        .bind(answer.map_or("", |a| a.model))
        .bind(answer.map_or("", |a| a.config_name))
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query("UPDATE rooms SET last_active_at = $2 WHERE id = $1")
            .bind(new.room_id)
            .bind(new.now)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

    /// AI answers started in the session since `since` (the room's AI rate).
    pub async fn room_ai_answers_since(&self, session_id: SessionId, since: i64) -> Result<i64, sqlx::Error> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM chat_messages WHERE session_id = $1 AND author_kind = $2 AND created_at > $3",
        )
        .bind(session_id)
        .bind(AuthorKind::Ai.as_str())
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    pub async fn room_message(
        &self,
        session_id: SessionId,
        id: MessageId,
    ) -> Result<Option<RoomMessageRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{ROOM_MESSAGE_SELECT} WHERE m.id = $1 AND m.session_id = $2"
        )))
        .bind(id)
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Newest first, `limit` messages before `before`.
    pub async fn room_messages(
        &self,
        session_id: SessionId,
        before: Option<MessageCursor>,
        limit: i64,
    ) -> Result<Vec<RoomMessageRow>, sqlx::Error> {
        let cursor = before.unwrap_or(MessageCursor {
            created_at: i64::MAX,
            id: MessageId(i64::MAX),
        });
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{ROOM_MESSAGE_SELECT} WHERE m.session_id = $1 \
             AND (m.created_at < $2 OR (m.created_at = $2 AND m.id < $3)) \
             ORDER BY m.created_at DESC, m.id DESC LIMIT $4"
        )))
        .bind(session_id)
        .bind(cursor.created_at)
        .bind(cursor.id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// How many messages `author` posted in the session since `since`.
    pub async fn room_posts_since(
        &self,
        session_id: SessionId,
        author: OwnerId,
        since: i64,
    ) -> Result<i64, sqlx::Error> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM chat_messages WHERE session_id = $1 AND author_id = $2 AND created_at > $3",
        )
        .bind(session_id)
        .bind(author)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    pub async fn edit_room_message(
        &self,
        session_id: SessionId,
        id: MessageId,
        content: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE chat_messages SET content = $3, edited_at = $4, updated_at = $4 \
             WHERE id = $1 AND session_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(session_id)
        .bind(content)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Empties the message and marks it deleted; its row keeps its place for replies.
    pub async fn delete_room_message(&self, session_id: SessionId, id: MessageId, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE chat_messages SET content = '', deleted_at = $3, updated_at = $3 \
             WHERE id = $1 AND session_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(session_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A question to the AI member and its answer, within the room owner's quotas (the answer is
/// a message of the owner's day).
impl QuotaWrite {
    /// Stores `question` and the AI's empty STREAMING answer to it; answers both ids.
    pub async fn insert_room_exchange(
        &mut self,
        question: &NewRoomMessage<'_>,
        answer: &NewRoomAnswer<'_>,
    ) -> Result<(MessageId, MessageId), sqlx::Error> {
        let question_id = ChatStore::insert_room_message_in(self.conn(), question, None).await?;
        let ai = NewRoomMessage {
            author_id: None,
            author_kind: AuthorKind::Ai,
            message_type: RoomMessageType::AiAnswer,
            content: "",
            reply_to_id: Some(question_id),
            ..*question
        };
        let answer_id = ChatStore::insert_room_message_in(self.conn(), &ai, Some(answer)).await?;
        Ok((question_id, answer_id))
    }
}
