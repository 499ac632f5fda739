//! `chat_sessions` (a session's messages and share links go with it when it is deleted).

use parley_service_kit::database::flag;
use sqlx::AnyConnection;

use super::{ArchiveFilter, ChatStore, NewSession, SESSION_COLUMNS, SessionFields, SessionRow};
use crate::ids::{OwnerId, SessionId};
use crate::page_token::SessionCursor;

impl ChatStore {
    pub async fn insert_session(&self, new: &NewSession<'_>) -> Result<SessionId, sqlx::Error> {
        Self::insert_session_in(&mut *self.pool.acquire().await?, new).await
    }

    pub(super) async fn insert_session_in(
        conn: &mut AnyConnection,
        new: &NewSession<'_>,
    ) -> Result<SessionId, sqlx::Error> {
        let (id,): (SessionId,) = sqlx::query_as(
            "INSERT INTO chat_sessions (user_id, title, system_prompt, persona_id, api_config_id, model, \
             temperature, top_p, max_tokens, pinned, archived, start_time, end_time, updated_at, last_active_at) \
             VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $9 = 0 THEN NULL ELSE $7 END, \
             CASE WHEN $11 = 0 THEN NULL ELSE $10 END, $12, 0, 0, $8, NULL, $8, $8) \
             RETURNING id",
        )
        .bind(new.user_id)
        .bind(new.title)
        .bind(new.system_prompt)
        .bind(new.persona_id)
        .bind(new.api_config_id)
        .bind(new.model)
        .bind(new.params.temperature.unwrap_or_default())
        .bind(new.now)
        .bind(flag(new.params.temperature.is_some()))
        .bind(new.params.top_p.unwrap_or_default())
        .bind(flag(new.params.top_p.is_some()))
        .bind(new.params.max_tokens)
        .fetch_one(conn)
        .await?;
        Ok(id)
    }

    pub async fn session(&self, user_id: OwnerId, id: SessionId) -> Result<Option<SessionRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM chat_sessions WHERE id = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Pinned first, then most recently active, then newest id; `limit` rows after `after`.
    pub async fn sessions(
        &self,
        user_id: OwnerId,
        archive: ArchiveFilter,
        after: Option<SessionCursor>,
        limit: i64,
    ) -> Result<Vec<SessionRow>, sqlx::Error> {
        let archived = match archive {
            ArchiveFilter::Active => "AND archived = 0",
            ArchiveFilter::All => "",
            ArchiveFilter::Archived => "AND archived = 1",
        };
        let order = "ORDER BY pinned DESC, last_active_at DESC, id DESC";
        match after {
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {SESSION_COLUMNS} FROM chat_sessions WHERE user_id = $1 {archived} {order} LIMIT $2"
                )))
                .bind(user_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            Some(cursor) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {SESSION_COLUMNS} FROM chat_sessions WHERE user_id = $1 {archived} \
                     AND (pinned < $2 OR (pinned = $2 AND (last_active_at < $3 \
                          OR (last_active_at = $3 AND id < $4)))) \
                     {order} LIMIT $5"
                )))
                .bind(user_id)
                .bind(flag(cursor.pinned))
                .bind(cursor.last_active_at)
                .bind(cursor.id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
    }

    pub async fn update_session(
        &self,
        user_id: OwnerId,
        id: SessionId,
        fields: &SessionFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        Self::update_session_in(&mut *self.pool.acquire().await?, user_id, id, fields, now).await
    }

    pub(super) async fn update_session_in(
        conn: &mut AnyConnection,
        user_id: OwnerId,
        id: SessionId,
        fields: &SessionFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE chat_sessions SET title = $1, system_prompt = $2, api_config_id = $3, model = $4, \
             temperature = CASE WHEN $12 = 0 THEN NULL ELSE $5 END, pinned = $6, archived = $7, end_time = $8, \
             updated_at = $9, top_p = CASE WHEN $14 = 0 THEN NULL ELSE $13 END, max_tokens = $15, persona_id = $16, \
             folder_id = $17 WHERE id = $10 AND user_id = $11",
        )
        .bind(fields.title)
        .bind(fields.system_prompt)
        .bind(fields.api_config_id)
        .bind(fields.model)
        .bind(fields.params.temperature.unwrap_or_default())
        .bind(flag(fields.pinned))
        .bind(flag(fields.archived))
        .bind(fields.end_time)
        .bind(now)
        .bind(id)
        .bind(user_id)
        .bind(flag(fields.params.temperature.is_some()))
        .bind(fields.params.top_p.unwrap_or_default())
        .bind(flag(fields.params.top_p.is_some()))
        .bind(fields.params.max_tokens)
        .bind(fields.persona_id)
        .bind(fields.folder_id)
        .execute(conn)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sets a generated title, unless the user named the session meanwhile. For the generation
    /// answering in the session.
    pub async fn set_title_if_untitled(
        &self,
        session_id: SessionId,
        title: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("UPDATE chat_sessions SET title = $1, updated_at = $2 WHERE id = $3 AND title = ''")
            .bind(title)
            .bind(now)
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the session; its messages go with it (explicitly, so it does not depend on
    /// SQLite's foreign-key pragma). The first statement is the owner-checked write: a read
    /// first would start SQLite's transaction as a reader, and its upgrade to a writer fails
    /// (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out) once a running answer committed
    /// in between.
    pub async fn delete_session(&self, user_id: OwnerId, id: SessionId) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM chat_sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM chat_messages WHERE session_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::delete_share_links_of_session(&mut tx, id).await?;
        tx.commit().await?;
        Ok(true)
    }
}
