//! `chat_messages` as users read and edit them.

use sqlx::AnyConnection;

use super::{ChatStore, MESSAGE_COLUMNS, MessageRow, MessageStatus};
use crate::ids::{MessageId, OwnerId, SessionId};
use crate::message_tree::TreeNode;
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

    /// Every message of a session as a node of its tree (id, parent, times), oldest first: the
    /// light read branches are computed from. The caller checked the session's owner.
    pub async fn message_tree(&self, session_id: SessionId) -> Result<Vec<TreeNode>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, parent_id, created_at, COALESCE(selected_at, created_at) AS active_at \
             FROM chat_messages WHERE session_id = $1 ORDER BY created_at, id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await
    }

    /// The messages `ids` of a session, oldest first. The caller checked the session's owner.
    pub async fn messages_by_ids(
        &self,
        session_id: SessionId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (2..ids.len() + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.session_id = $1 AND m.id IN ({}) \
             ORDER BY m.created_at, m.id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(session_id);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(&self.pool).await
    }

    /// `question` and up to `limit - 1` messages above it in its branch (parent by parent),
    /// newest first: the history a generation may send. One statement, walking the parent
    /// index. The caller owns the question.
    pub async fn branch_history(&self, question: MessageId, limit: i64) -> Result<Vec<MessageRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE branch (id, depth) AS ( \
               SELECT CAST($1 AS BIGINT), CAST(0 AS BIGINT) \
               UNION ALL \
               SELECT p.parent_id, b.depth + 1 FROM branch b JOIN chat_messages p ON p.id = b.id \
               WHERE p.parent_id IS NOT NULL AND b.depth + 1 < $2) \
             SELECT {MESSAGE_COLUMNS} FROM branch b JOIN chat_messages m ON m.id = b.id ORDER BY b.depth"
        )))
        .bind(question)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Makes `end` the end of the session's shown branch, and remembers when it was shown (so
    /// a later switch to a version above it comes back here). The caller checked the session's
    /// owner and that `end` is its message.
    pub async fn show_branch_ending_at(
        &self,
        session_id: SessionId,
        end: MessageId,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE chat_messages SET selected_at = $1 WHERE id = $2 AND session_id = $3")
            .bind(now)
            .bind(end)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE chat_sessions SET current_message_id = $1 WHERE id = $2")
            .bind(end)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Whether anything follows `id` in its chat's tree (an answer, or a next question).
    pub async fn has_replies(&self, id: MessageId) -> Result<bool, sqlx::Error> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM chat_messages WHERE parent_id = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
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

    /// Deletes a message of one of the user's sessions and everything below it in the tree
    /// (the branches that followed it), unless one of them is still streaming; and, when
    /// `shown_end` says so, moves the session's shown branch (the service chose where, as it
    /// ran through what was deleted). False when nothing was deleted.
    pub async fn delete_message_subtree(
        &self,
        user_id: OwnerId,
        id: MessageId,
        shown_end: Option<Option<MessageId>>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let session: Option<(SessionId,)> = sqlx::query_as(
            "SELECT m.session_id FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id \
             WHERE m.id = $1 AND s.user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((session_id,)) = session else {
            return Ok(false);
        };
        let subtree = "WITH RECURSIVE subtree (id) AS ( \
               SELECT CAST($1 AS BIGINT) \
               UNION ALL \
               SELECT c.id FROM chat_messages c JOIN subtree t ON c.parent_id = t.id) ";
        let (streaming,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{subtree}SELECT CAST(COUNT(*) AS BIGINT) FROM chat_messages m JOIN subtree t ON t.id = m.id WHERE m.status = $2"
        )))
        .bind(id)
        .bind(MessageStatus::Streaming.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if streaming > 0 {
            return Ok(false);
        }
        let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{subtree}DELETE FROM chat_messages WHERE id IN (SELECT id FROM subtree)"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(end) = shown_end {
            sqlx::query("UPDATE chat_sessions SET current_message_id = $1 WHERE id = $2")
                .bind(end)
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }
}
