//! `chat_messages` as users read and edit them.

use sqlx::AnyConnection;

use super::{ChatStore, MESSAGE_COLUMNS, MessageRow, MessageStatus};
use crate::ids::{MessageId, OwnerId, SessionId};
use crate::page_token::MessageCursor;

impl ChatStore {
    /// A message in one of the user's sessions.
    pub async fn message(&self, user_id: OwnerId, id: MessageId) -> Result<Option<MessageRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id \
             WHERE m.id = $1 AND s.user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// A message by id alone, for the generation that owns it.
    pub async fn message_by_id(&self, id: MessageId) -> Result<Option<MessageRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Oldest first, `limit` rows after `after`. The caller checked the session's owner.
    pub async fn messages(
        &self,
        session_id: SessionId,
        after: Option<MessageCursor>,
        limit: i64,
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        let cursor = after.unwrap_or(MessageCursor {
            created_at: i64::MIN,
            id: MessageId(i64::MIN),
        });
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.session_id = $1 \
             AND (m.created_at > $2 OR (m.created_at = $2 AND m.id > $3)) \
             ORDER BY m.created_at, m.id LIMIT $4"
        )))
        .bind(session_id)
        .bind(cursor.created_at)
        .bind(cursor.id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// The newest `limit` messages at or before `upto` (created_at, id), newest first: the
    /// history a generation may send. The caller checked the session's owner.
    pub async fn history(
        &self,
        session_id: SessionId,
        upto: MessageCursor,
        limit: i64,
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.session_id = $1 \
             AND (m.created_at < $2 OR (m.created_at = $2 AND m.id <= $3)) \
             ORDER BY m.created_at DESC, m.id DESC LIMIT $4"
        )))
        .bind(session_id)
        .bind(upto.created_at)
        .bind(upto.id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Edits a finished message in one of the user's sessions. False when there is none.
    pub async fn update_message_content(
        &self,
        user_id: OwnerId,
        id: MessageId,
        content: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        Self::update_message_content_in(&mut *self.pool.acquire().await?, user_id, id, content, now).await
    }

    pub(super) async fn update_message_content_in(
        conn: &mut AnyConnection,
        user_id: OwnerId,
        id: MessageId,
        content: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE chat_messages SET content = $1, updated_at = $2 WHERE id = $3 AND status <> $4 \
             AND session_id IN (SELECT id FROM chat_sessions WHERE user_id = $5)",
        )
        .bind(content)
        .bind(now)
        .bind(id)
        .bind(MessageStatus::Streaming.as_str())
        .bind(user_id)
        .execute(conn)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a finished message in one of the user's sessions. False when there is none.
    pub async fn delete_message(&self, user_id: OwnerId, id: MessageId) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "DELETE FROM chat_messages WHERE id = $1 AND status <> $2 \
             AND session_id IN (SELECT id FROM chat_sessions WHERE user_id = $3)",
        )
        .bind(id)
        .bind(MessageStatus::Streaming.as_str())
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
