//! Every SQL statement chat-service runs, and nothing else. Queries use `$n` placeholders and
//! plain types so the same text runs on SQLite and PostgreSQL through sqlx's Any driver.
//!
//! Every read and write a user's request makes names the owner (`user_id`, or a join through
//! the message's session), so another user's id matches nothing. The exceptions take a session
//! or message id the service already checked the owner of (they say so), or belong to a
//! generation or the abandoned-answer sweep, which act on rows they own by id.

use parley_service_kit::database::{Database, flag};
use sqlx::{AnyConnection, AnyPool};

use crate::key_cipher::SealedKey;
use crate::page_token::{MessageCursor, SessionCursor};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiConfigRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub base_url: String,
    pub model: String,
    pub api_key_ciphertext: Option<Vec<u8>>,
    pub api_key_nonce: Option<Vec<u8>>,
    pub api_key_key_version: i64,
    pub api_key_hint: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Computed: the user's first (oldest) config.
    pub is_default: i64,
}

impl ApiConfigRow {
    pub fn sealed_key(&self) -> Option<SealedKey> {
        Some(SealedKey {
            ciphertext: self.api_key_ciphertext.clone()?,
            nonce: self.api_key_nonce.clone()?,
            key_version: self.api_key_key_version,
        })
    }
}

const CONFIG_COLUMNS: &str = "c.id, c.user_id, c.name, c.base_url, c.model, c.api_key_ciphertext, c.api_key_nonce, \
     c.api_key_key_version, c.api_key_hint, c.created_at, c.updated_at, \
     CASE WHEN c.id = (SELECT MIN(f.id) FROM api_configs f WHERE f.user_id = c.user_id) THEN 1 ELSE 0 END AS is_default";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonaRow {
    pub id: i64,
    pub user_id: Option<i64>,
    pub name: String,
    pub description: String,
    pub system_prompt: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const PERSONA_COLUMNS: &str = "id, user_id, name, description, system_prompt, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub title: String,
    pub system_prompt: String,
    pub persona_id: Option<i64>,
    pub api_config_id: Option<i64>,
    pub model: String,
    pub temperature: Option<f64>,
    pub pinned: i64,
    pub archived: i64,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub updated_at: i64,
    pub last_active_at: i64,
}

const SESSION_COLUMNS: &str = "id, user_id, title, system_prompt, persona_id, api_config_id, model, temperature, \
     pinned, archived, start_time, end_time, updated_at, last_active_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub session_id: i64,
    pub role: String,
    pub content: String,
    pub reasoning: String,
    pub status: String,
    pub model: String,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error: String,
    pub error_code: i64,
    pub reply_to_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const MESSAGE_COLUMNS: &str = "m.id, m.session_id, m.role, m.content, m.reasoning, m.status, m.model, \
     m.prompt_tokens, m.completion_tokens, m.error, CAST(m.error_code AS BIGINT) AS error_code, m.reply_to_id, \
     m.created_at, m.updated_at";

pub mod role {
    pub const USER: &str = "user";
    pub const ASSISTANT: &str = "assistant";
    pub const SYSTEM: &str = "system";
}

pub mod status {
    pub const COMPLETE: &str = "complete";
    /// Written as a literal (`'streaming'`) in the statements that look for STREAMING rows:
    /// only then can SQLite and PostgreSQL's generic plans use the partial indexes on it.
    pub const STREAMING: &str = "streaming";
    pub const STOPPED: &str = "stopped";
    pub const FAILED: &str = "failed";
}

/// A config's fields as they will be after a create or update (the key separately).
pub struct ConfigFields<'a> {
    pub name: &'a str,
    pub base_url: &'a str,
    pub model: &'a str,
}

// Temperatures are always bound as a number plus a "set" flag: sqlx's Any driver binds a NULL
// DOUBLE as a PostgreSQL float4, and a statement prepared that way then rejects real values.

pub struct NewSession<'a> {
    pub user_id: i64,
    pub title: &'a str,
    pub system_prompt: &'a str,
    pub persona_id: Option<i64>,
    pub api_config_id: Option<i64>,
    pub model: &'a str,
    pub temperature: Option<f64>,
    pub now: i64,
}

/// The editable fields of a session as they will be after an update.
pub struct SessionFields<'a> {
    pub title: &'a str,
    pub system_prompt: &'a str,
    pub api_config_id: Option<i64>,
    pub model: &'a str,
    pub temperature: Option<f64>,
    pub pinned: bool,
    pub archived: bool,
    pub end_time: Option<i64>,
}

/// The user's message and the (empty, streaming) answer row stored before a generation starts.
pub struct NewExchange<'a> {
    pub session_id: i64,
    pub user_content: &'a str,
    pub model: &'a str,
    pub now: i64,
}

/// How a generation ended, as written onto its row.
pub struct FinishedAnswer<'a> {
    pub content: &'a str,
    pub reasoning: &'a str,
    pub status: &'a str,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error: &'a str,
    pub error_code: i64,
    pub now: i64,
}

#[derive(Clone)]
pub struct ChatStore {
    pool: AnyPool,
}

impl ChatStore {
    pub fn new(database: &Database) -> Self {
        Self {
            pool: database.pool.clone(),
        }
    }

    // ---- API configs ----

    /// Inserts the row, then writes the key sealed for its id, in one transaction: the row id
    /// is the AEAD's associated data, so it must exist before the key is encrypted.
    pub async fn insert_api_config<E: From<sqlx::Error>>(
        &self,
        user_id: i64,
        fields: &ConfigFields<'_>,
        api_key_hint: &str,
        seal: impl FnOnce(i64) -> Result<SealedKey, E>,
        now: i64,
    ) -> Result<i64, E> {
        let mut tx = self.pool.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_configs (user_id, name, base_url, model, api_key_hint, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(user_id)
        .bind(fields.name)
        .bind(fields.base_url)
        .bind(fields.model)
        .bind(api_key_hint)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        // An error drops the transaction: no row without its key.
        let sealed = seal(id)?;
        sqlx::query(
            "UPDATE api_configs SET api_key_ciphertext = $1, api_key_nonce = $2, api_key_key_version = $3 WHERE id = $4",
        )
        .bind(sealed.ciphertext)
        .bind(sealed.nonce)
        .bind(sealed.key_version)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn api_config(&self, user_id: i64, id: i64) -> Result<Option<ApiConfigRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONFIG_COLUMNS} FROM api_configs c WHERE c.id = $1 AND c.user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn api_config_by_name(&self, user_id: i64, name: &str) -> Result<Option<ApiConfigRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONFIG_COLUMNS} FROM api_configs c WHERE c.name = $1 AND c.user_id = $2"
        )))
        .bind(name)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// The user's first config: the one chats use when they name none.
    pub async fn default_api_config(&self, user_id: i64) -> Result<Option<ApiConfigRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONFIG_COLUMNS} FROM api_configs c WHERE c.user_id = $1 ORDER BY c.id LIMIT 1"
        )))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn api_configs(&self, user_id: i64) -> Result<Vec<ApiConfigRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONFIG_COLUMNS} FROM api_configs c WHERE c.user_id = $1 ORDER BY c.id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Writes the fields, and the key when `sealed` is given. False when no such row of the user.
    pub async fn update_api_config(
        &self,
        user_id: i64,
        id: i64,
        fields: &ConfigFields<'_>,
        key: Option<(SealedKey, &str)>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = match key {
            Some((sealed, hint)) => {
                sqlx::query(
                    "UPDATE api_configs SET name = $1, base_url = $2, model = $3, api_key_ciphertext = $4, \
                     api_key_nonce = $5, api_key_key_version = $6, api_key_hint = $7, updated_at = $8 \
                     WHERE id = $9 AND user_id = $10",
                )
                .bind(fields.name)
                .bind(fields.base_url)
                .bind(fields.model)
                .bind(sealed.ciphertext)
                .bind(sealed.nonce)
                .bind(sealed.key_version)
                .bind(hint)
                .bind(now)
                .bind(id)
                .bind(user_id)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE api_configs SET name = $1, base_url = $2, model = $3, updated_at = $4 \
                     WHERE id = $5 AND user_id = $6",
                )
                .bind(fields.name)
                .bind(fields.base_url)
                .bind(fields.model)
                .bind(now)
                .bind(id)
                .bind(user_id)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the config; sessions that named it fall back to the default config.
    pub async fn delete_api_config(&self, user_id: i64, id: i64, now: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM api_configs WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 1 {
            sqlx::query(
                "UPDATE chat_sessions SET api_config_id = NULL, updated_at = $1 WHERE api_config_id = $2 AND user_id = $3",
            )
            .bind(now)
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    // ---- personas ----

    /// Built-ins first, then the user's own, oldest first.
    pub async fn personas(&self, user_id: i64) -> Result<Vec<PersonaRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSONA_COLUMNS} FROM personas WHERE user_id IS NULL OR user_id = $1 \
             ORDER BY CASE WHEN user_id IS NULL THEN 0 ELSE 1 END, id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    /// A persona the user can see: built in, or their own.
    pub async fn persona(&self, user_id: i64, id: i64) -> Result<Option<PersonaRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSONA_COLUMNS} FROM personas WHERE id = $1 AND (user_id IS NULL OR user_id = $2)"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn insert_persona(
        &self,
        user_id: i64,
        name: &str,
        description: &str,
        system_prompt: &str,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO personas (user_id, name, description, system_prompt, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(description)
        .bind(system_prompt)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Only the user's own personas change; built-ins (user_id NULL) never match.
    pub async fn update_persona(
        &self,
        user_id: i64,
        id: i64,
        name: &str,
        description: &str,
        system_prompt: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE personas SET name = $1, description = $2, system_prompt = $3, updated_at = $4 \
             WHERE id = $5 AND user_id = $6",
        )
        .bind(name)
        .bind(description)
        .bind(system_prompt)
        .bind(now)
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sessions started from it keep their copied prompt and forget the persona.
    pub async fn delete_persona(&self, user_id: i64, id: i64, now: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM personas WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 1 {
            sqlx::query(
                "UPDATE chat_sessions SET persona_id = NULL, updated_at = $1 WHERE persona_id = $2 AND user_id = $3",
            )
            .bind(now)
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    // ---- sessions ----

    pub async fn insert_session(&self, new: &NewSession<'_>) -> Result<i64, sqlx::Error> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO chat_sessions (user_id, title, system_prompt, persona_id, api_config_id, model, \
             temperature, pinned, archived, start_time, end_time, updated_at, last_active_at) \
             VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $9 = 0 THEN NULL ELSE $7 END, 0, 0, $8, NULL, $8, $8) \
             RETURNING id",
        )
        .bind(new.user_id)
        .bind(new.title)
        .bind(new.system_prompt)
        .bind(new.persona_id)
        .bind(new.api_config_id)
        .bind(new.model)
        .bind(new.temperature.unwrap_or_default())
        .bind(new.now)
        .bind(flag(new.temperature.is_some()))
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn session(&self, user_id: i64, id: i64) -> Result<Option<SessionRow>, sqlx::Error> {
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
        user_id: i64,
        include_archived: bool,
        after: Option<SessionCursor>,
        limit: i64,
    ) -> Result<Vec<SessionRow>, sqlx::Error> {
        let archived = if include_archived { "" } else { "AND archived = 0" };
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
        user_id: i64,
        id: i64,
        fields: &SessionFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE chat_sessions SET title = $1, system_prompt = $2, api_config_id = $3, model = $4, \
             temperature = CASE WHEN $12 = 0 THEN NULL ELSE $5 END, pinned = $6, archived = $7, end_time = $8, \
             updated_at = $9 WHERE id = $10 AND user_id = $11",
        )
        .bind(fields.title)
        .bind(fields.system_prompt)
        .bind(fields.api_config_id)
        .bind(fields.model)
        .bind(fields.temperature.unwrap_or_default())
        .bind(flag(fields.pinned))
        .bind(flag(fields.archived))
        .bind(fields.end_time)
        .bind(now)
        .bind(id)
        .bind(user_id)
        .bind(flag(fields.temperature.is_some()))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sets a generated title, unless the user named the session meanwhile. For the generation
    /// answering in the session.
    pub async fn set_title_if_untitled(&self, session_id: i64, title: &str, now: i64) -> Result<bool, sqlx::Error> {
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
    pub async fn delete_session(&self, user_id: i64, id: i64) -> Result<bool, sqlx::Error> {
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
        tx.commit().await?;
        Ok(true)
    }

    // ---- messages ----

    /// A message in one of the user's sessions.
    pub async fn message(&self, user_id: i64, id: i64) -> Result<Option<MessageRow>, sqlx::Error> {
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
    pub async fn message_by_id(&self, id: i64) -> Result<Option<MessageRow>, sqlx::Error> {
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
        session_id: i64,
        after: Option<MessageCursor>,
        limit: i64,
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        let cursor = after.unwrap_or(MessageCursor {
            created_at: i64::MIN,
            id: i64::MIN,
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
        session_id: i64,
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

    /// Answers being generated (by any instance): (in `session_id`, in all of `user_id`'s
    /// sessions). Reads only STREAMING rows, through their partial indexes.
    pub async fn streaming_counts(&self, session_id: i64, user_id: i64) -> Result<(i64, i64), sqlx::Error> {
        let (in_session, for_user): (i64, i64) = sqlx::query_as(STREAMING_COUNTS)
            .bind(session_id)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((in_session, for_user))
    }

    /// Stores the user's message and the empty answer row (STREAMING) in one transaction, and
    /// marks the session active. Answers (user message id, assistant message id). The caller
    /// checked the session's owner; a unique violation means the session already has an answer
    /// streaming (`chat_messages_one_streaming_per_session`), and then nothing is stored.
    pub async fn insert_exchange(&self, new: &NewExchange<'_>) -> Result<(i64, i64), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let (question_id,): (i64,) = sqlx::query_as(
            "INSERT INTO chat_messages (session_id, role, content, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(new.session_id)
        .bind(role::USER)
        .bind(new.user_content)
        .bind(status::COMPLETE)
        .bind(new.now)
        .fetch_one(&mut *tx)
        .await?;
        let answer_id = Self::insert_answer(&mut tx, new.session_id, question_id, new.model, new.now, new.now).await?;
        tx.commit().await?;
        Ok((question_id, answer_id))
    }

    /// The new answer row of a regeneration, placed at `old`'s position (its created_at, a
    /// larger id): where the answer it replaces stood, or right after the question it answers
    /// again.
    pub async fn insert_regenerated_answer(
        &self,
        old: &MessageRow,
        reply_to_id: i64,
        model: &str,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let id = Self::insert_answer(&mut tx, old.session_id, reply_to_id, model, old.created_at, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Inserts an empty STREAMING answer to the question `reply_to_id`, placed in the
    /// conversation at `created_at`, and marks the session active.
    async fn insert_answer(
        conn: &mut AnyConnection,
        session_id: i64,
        reply_to_id: i64,
        model: &str,
        created_at: i64,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO chat_messages (session_id, role, content, status, model, reply_to_id, created_at, updated_at) \
             VALUES ($1, $2, '', $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(session_id)
        .bind(role::ASSISTANT)
        .bind(status::STREAMING)
        .bind(model)
        .bind(reply_to_id)
        .bind(created_at)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query("UPDATE chat_sessions SET last_active_at = $1 WHERE id = $2")
            .bind(now)
            .bind(session_id)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

    /// Persists the answer so far while it streams (also as the heartbeat of a quiet model).
    /// Answers whether a stop was asked for through the row (by another instance): one
    /// statement does both, so looking for stops costs no extra query.
    pub async fn save_progress(&self, id: i64, content: &str, reasoning: &str, now: i64) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE chat_messages SET content = $1, reasoning = $2, updated_at = $3 WHERE id = $4 AND status = $5 \
             RETURNING CAST(stop_requested AS BIGINT)",
        )
        .bind(content)
        .bind(reasoning)
        .bind(now)
        .bind(id)
        .bind(status::STREAMING)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some_and(|(requested,)| requested != 0))
    }

    /// Asks whichever instance generates the answer to stop. False when it is not streaming.
    /// The caller checked the message's owner.
    pub async fn request_stop(&self, id: i64) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("UPDATE chat_messages SET stop_requested = 1 WHERE id = $1 AND status = $2")
            .bind(id)
            .bind(status::STREAMING)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The answers of a session still streaming (possibly on another instance). The caller
    /// checked the session's owner.
    pub async fn streaming_in_session(&self, session_id: i64) -> Result<Vec<i64>, sqlx::Error> {
        let rows: Vec<(i64,)> = sqlx::query_as(STREAMING_IN_SESSION)
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Writes how the generation ended. With `sole_answer_to` (a question's id), this answer
    /// becomes the question's only one: every other finished answer to it is deleted, in the
    /// same transaction.
    pub async fn finish_answer(
        &self,
        id: i64,
        answer: &FinishedAnswer<'_>,
        sole_answer_to: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE chat_messages SET content = $1, reasoning = $2, status = $3, prompt_tokens = $4, \
             completion_tokens = $5, error = $6, error_code = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(answer.content)
        .bind(answer.reasoning)
        .bind(answer.status)
        .bind(answer.prompt_tokens)
        .bind(answer.completion_tokens)
        .bind(answer.error)
        .bind(answer.error_code)
        .bind(answer.now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(question_id) = sole_answer_to {
            sqlx::query(
                "DELETE FROM chat_messages WHERE reply_to_id = $1 AND id <> $2 AND role = $3 AND status <> $4 \
                 AND session_id = (SELECT session_id FROM chat_messages WHERE id = $2)",
            )
            .bind(question_id)
            .bind(id)
            .bind(role::ASSISTANT)
            .bind(status::STREAMING)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Edits a finished message in one of the user's sessions. False when there is none.
    pub async fn update_message_content(
        &self,
        user_id: i64,
        id: i64,
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
        .bind(status::STREAMING)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a finished message in one of the user's sessions. False when there is none.
    pub async fn delete_message(&self, user_id: i64, id: i64) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "DELETE FROM chat_messages WHERE id = $1 AND status <> $2 \
             AND session_id IN (SELECT id FROM chat_sessions WHERE user_id = $3)",
        )
        .bind(id)
        .bind(status::STREAMING)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Answers left STREAMING by a process that died can never finish: marks those not
    /// touched since `untouched_since` FAILED, keeping what they had. Answers how many.
    pub async fn fail_abandoned(
        &self,
        untouched_since: i64,
        error: &str,
        error_code: i64,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(FAIL_ABANDONED)
            .bind(status::FAILED)
            .bind(error)
            .bind(error_code)
            .bind(now)
            .bind(untouched_since)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    // ---- master-key rotation ----

    /// Every stored key not sealed under `version`, as (row id, sealed key).
    pub async fn keys_not_under(&self, version: i64) -> Result<Vec<(i64, SealedKey)>, sqlx::Error> {
        let rows: Vec<SealedKeyRow> = sqlx::query_as(
            "SELECT id, api_key_ciphertext, api_key_nonce, api_key_key_version FROM api_configs \
             WHERE api_key_key_version <> $1 AND api_key_ciphertext IS NOT NULL ORDER BY id",
        )
        .bind(version)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(SealedKeyRow::into_parts).collect())
    }

    /// One stored key sealed under `version`, to prove the configured key opens it.
    pub async fn one_key_under(&self, version: i64) -> Result<Option<(i64, SealedKey)>, sqlx::Error> {
        let row: Option<SealedKeyRow> = sqlx::query_as(
            "SELECT id, api_key_ciphertext, api_key_nonce, api_key_key_version FROM api_configs \
             WHERE api_key_key_version = $1 AND api_key_ciphertext IS NOT NULL ORDER BY id LIMIT 1",
        )
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(SealedKeyRow::into_parts))
    }

    /// Replaces the sealed key `old` read from a row with `new`, unless the row's key changed
    /// since it was read. The version alone is not enough: an instance that does not have the
    /// newest master key yet writes a user's new key under the old version, and resealing over
    /// that would bring back the user's previous key. The nonce is fresh on every write, so
    /// nonce and ciphertext name the exact key that was read.
    pub async fn reseal_key(&self, id: i64, old: &SealedKey, new: &SealedKey) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE api_configs SET api_key_ciphertext = $1, api_key_nonce = $2, api_key_key_version = $3 \
             WHERE id = $4 AND api_key_key_version = $5 AND api_key_nonce = $6 AND api_key_ciphertext = $7",
        )
        .bind(new.ciphertext.clone())
        .bind(new.nonce.clone())
        .bind(new.key_version)
        .bind(id)
        .bind(old.key_version)
        .bind(old.nonce.clone())
        .bind(old.ciphertext.clone())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}

// The statements that look for STREAMING rows (few at any time) among all messages, through
// the partial indexes of migration 0003.

/// The abandoned-answer sweep, run by every instance every few seconds.
const FAIL_ABANDONED: &str = "UPDATE chat_messages SET status = $1, error = $2, error_code = $3, updated_at = $4 \
     WHERE status = 'streaming' AND updated_at < $5";

const STREAMING_IN_SESSION: &str = "SELECT id FROM chat_messages WHERE session_id = $1 AND status = 'streaming'";

const STREAMING_COUNTS: &str = "SELECT CAST(COALESCE(SUM(CASE WHEN m.session_id = $1 THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COUNT(*) AS BIGINT) \
     FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id \
     WHERE m.status = 'streaming' AND s.user_id = $2";

#[derive(sqlx::FromRow)]
struct SealedKeyRow {
    id: i64,
    api_key_ciphertext: Option<Vec<u8>>,
    api_key_nonce: Option<Vec<u8>>,
    api_key_key_version: i64,
}

impl SealedKeyRow {
    fn into_parts(self) -> Option<(i64, SealedKey)> {
        Some((
            self.id,
            SealedKey {
                ciphertext: self.api_key_ciphertext?,
                nonce: self.api_key_nonce?,
                key_version: self.api_key_key_version,
            },
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// SQLite's plan of `sql` (its parameters bound to `binds`), one line per step.
    async fn plan(pool: &AnyPool, sql: &str, binds: usize) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
        for _ in 0..binds {
            query = query.bind(1_i64);
        }
        let steps = query.fetch_all(pool).await.unwrap();
        steps
            .into_iter()
            .map(|(.., detail)| detail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn streaming_rows_are_found_through_their_partial_indexes() {
        let db = parley_testkit::test_database::TestDatabase::sqlite();
        let database = parley_service_kit::database::connect(&db.url, &crate::MIGRATIONS)
            .await
            .unwrap();
        let sweep = plan(&database.pool, FAIL_ABANDONED, 5).await;
        assert!(sweep.contains("chat_messages_streaming_updated"), "{sweep}");
        let in_session = plan(&database.pool, STREAMING_IN_SESSION, 1).await;
        assert!(
            in_session.contains("chat_messages_one_streaming_per_session"),
            "{in_session}"
        );
        let counts = plan(&database.pool, STREAMING_COUNTS, 2).await;
        assert!(!counts.contains("SCAN m"), "{counts}");
    }
}
