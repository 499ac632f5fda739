//! What export reads (a chat's messages, all at once) and what import writes: new sessions
//! and their messages with the times and states of the file, inside a [`QuotaWrite`] so a
//! whole import is one transaction.

use parley_service_kit::database::flag;

use super::{ChatStore, MESSAGE_COLUMNS, MessageRow, MessageStatus, QuotaWrite, Role};
use crate::ids::{MessageId, PersonaId, SessionId};

/// A session as an import creates it.
pub struct ImportedSession<'a> {
    pub title: &'a str,
    pub system_prompt: &'a str,
    pub persona_id: Option<PersonaId>,
    pub model: &'a str,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<i64>,
    pub pinned: bool,
    pub archived: bool,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub last_active_at: i64,
    pub now: i64,
}

/// A message as an import creates it.
pub struct ImportedMessageRow<'a> {
    pub session_id: SessionId,
    pub role: Role,
    pub content: &'a str,
    pub reasoning: &'a str,
    pub status: MessageStatus,
    pub model: &'a str,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error: &'a str,
    pub error_code: i64,
    pub error_reason: &'a str,
    pub reply_to_id: Option<MessageId>,
    pub parent_id: Option<MessageId>,
    pub api_config_name: &'a str,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ChatStore {
    /// Every message of a session, oldest first. The caller checked the session's owner.
    pub async fn all_messages(&self, session_id: SessionId) -> Result<Vec<MessageRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.session_id = $1 ORDER BY m.created_at, m.id"
        )))
        .bind(session_id)
        .fetch_all(&self.pool)
        .await
    }
}

impl QuotaWrite {
    pub async fn insert_imported_session(&mut self, new: &ImportedSession<'_>) -> Result<SessionId, sqlx::Error> {
        let owner = self.owner();
        let (id,): (SessionId,) = sqlx::query_as(
            "INSERT INTO chat_sessions (user_id, title, system_prompt, persona_id, api_config_id, model, \
             temperature, pinned, archived, start_time, end_time, updated_at, last_active_at, top_p, max_tokens) \
             VALUES ($1, $2, $3, $4, NULL, $5, CASE WHEN $6 = 0 THEN NULL ELSE $7 END, $8, $9, $10, $11, $12, $13, \
             CASE WHEN $14 = 0 THEN NULL ELSE $15 END, $16) \
             RETURNING id",
        )
        .bind(owner)
        .bind(new.title)
        .bind(new.system_prompt)
        .bind(new.persona_id)
        .bind(new.model)
        .bind(flag(new.temperature.is_some()))
        .bind(new.temperature.unwrap_or_default())
        .bind(flag(new.pinned))
        .bind(flag(new.archived))
        .bind(new.start_time)
        .bind(new.end_time)
        .bind(new.now)
        .bind(new.last_active_at)
        .bind(flag(new.top_p.is_some()))
        .bind(new.top_p.unwrap_or_default())
        .bind(new.max_tokens)
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }

    pub async fn insert_imported_message(&mut self, new: &ImportedMessageRow<'_>) -> Result<MessageId, sqlx::Error> {
        let (id,): (MessageId,) = sqlx::query_as(
            "INSERT INTO chat_messages (session_id, role, content, reasoning, status, model, prompt_tokens, \
             completion_tokens, error, error_code, error_reason, reply_to_id, created_at, updated_at, parent_id, \
             api_config_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(new.session_id)
        .bind(new.role.as_str())
        .bind(new.content)
        .bind(new.reasoning)
        .bind(new.status.as_str())
        .bind(new.model)
        .bind(new.prompt_tokens)
        .bind(new.completion_tokens)
        .bind(new.error)
        .bind(new.error_code)
        .bind(new.error_reason)
        .bind(new.reply_to_id)
        .bind(new.created_at)
        .bind(new.updated_at)
        .bind(new.parent_id)
        .bind(new.api_config_name)
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }

    /// Where an imported chat's shown branch ends.
    pub async fn set_shown_branch_end(&mut self, session_id: SessionId, end: MessageId) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE chat_sessions SET current_message_id = $1 WHERE id = $2")
            .bind(end)
            .bind(session_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
