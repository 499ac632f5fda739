//! `chat_messages` as generations write them: the question and the STREAMING answer row
//! stored before a generation starts, its progress, stops asked for through the row, its end,
//! and the sweep of answers a dead process left STREAMING.

use sqlx::AnyConnection;

use super::{ChatStore, FinishedAnswer, MessageRow, MessageStatus, NewExchange, PersonaRow, Role, SavedText};
use crate::ids::{MessageId, OwnerId, SessionId};
use crate::usage::UsageCharge;

/// An empty STREAMING answer row about to be inserted.
pub(super) struct NewAnswer<'a> {
    pub session_id: SessionId,
    /// The question it answers.
    pub reply_to_id: MessageId,
    pub model: &'a str,
    pub config_name: &'a str,
    /// The chat's persona, whose name and avatar are kept on the answer.
    pub persona: Option<&'a PersonaRow>,
    /// Its place in the conversation.
    pub created_at: i64,
    pub now: i64,
}

impl<'a> NewAnswer<'a> {
    /// Another answer to `reply_to_id`, placed where `old` stands.
    pub fn regenerated(
        old: &MessageRow,
        reply_to_id: MessageId,
        model: &'a str,
        config_name: &'a str,
        persona: Option<&'a PersonaRow>,
        now: i64,
    ) -> Self {
        Self {
            session_id: old.session_id,
            reply_to_id,
            model,
            config_name,
            persona,
            created_at: old.created_at,
            now,
        }
    }
}

impl ChatStore {
    /// Answers being generated (by any instance): (in `session_id`, in all of `user_id`'s
    /// sessions). Reads only STREAMING rows, through their partial indexes.
    pub async fn streaming_counts(&self, session_id: SessionId, user_id: OwnerId) -> Result<(i64, i64), sqlx::Error> {
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
    pub async fn insert_exchange(&self, new: &NewExchange<'_>) -> Result<(MessageId, MessageId), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let ids = Self::insert_exchange_in(&mut tx, new).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// [`ChatStore::insert_exchange`]'s statements, in the caller's transaction.
    pub(super) async fn insert_exchange_in(
        conn: &mut AnyConnection,
        new: &NewExchange<'_>,
    ) -> Result<(MessageId, MessageId), sqlx::Error> {
        let (question_id,): (MessageId,) = sqlx::query_as(
            "INSERT INTO chat_messages (session_id, role, content, status, created_at, updated_at, parent_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING id",
        )
        .bind(new.session_id)
        .bind(Role::User.as_str())
        .bind(new.user_content)
        .bind(MessageStatus::Complete.as_str())
        .bind(new.now)
        .bind(new.parent_id)
        .fetch_one(&mut *conn)
        .await?;
        let answer = NewAnswer {
            session_id: new.session_id,
            reply_to_id: question_id,
            model: new.model,
            config_name: new.config_name,
            persona: new.persona,
            created_at: new.now,
            now: new.now,
        };
        let answer_id = Self::insert_answer(conn, &answer).await?;
        Ok((question_id, answer_id))
    }

    /// The new answer row of a regeneration, placed at `old`'s position (its created_at, a
    /// larger id): beside the answer it is another version of, or right after the question it
    /// answers again.
    pub async fn insert_regenerated_answer(
        &self,
        old: &MessageRow,
        reply_to_id: MessageId,
        model: &str,
        config_name: &str,
        persona: Option<&PersonaRow>,
        now: i64,
    ) -> Result<MessageId, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let id = Self::insert_answer(
            &mut tx,
            &NewAnswer::regenerated(old, reply_to_id, model, config_name, persona, now),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Inserts an empty STREAMING answer to the question `reply_to_id` (its parent in the
    /// tree), placed in the conversation at `created_at`, and makes it the end of the session's
    /// shown branch and the session active.
    pub(super) async fn insert_answer(conn: &mut AnyConnection, new: &NewAnswer<'_>) -> Result<MessageId, sqlx::Error> {
        let (id,): (MessageId,) = sqlx::query_as(
            "INSERT INTO chat_messages (session_id, role, content, status, model, reply_to_id, created_at, updated_at, \
             api_config_name, parent_id, selected_at, persona_name, persona_avatar) \
             VALUES ($1, $2, '', $3, $4, $5, $6, $7, $8, $5, $7, $9, $10) RETURNING id",
        )
        .bind(new.session_id)
        .bind(Role::Assistant.as_str())
        .bind(MessageStatus::Streaming.as_str())
        .bind(new.model)
        .bind(new.reply_to_id)
        .bind(new.created_at)
        .bind(new.now)
        .bind(new.config_name)
        .bind(new.persona.map_or("", |p| p.name.as_str()))
        .bind(new.persona.map_or("", |p| p.avatar.as_str()))
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query("UPDATE chat_sessions SET last_active_at = $1, current_message_id = $2 WHERE id = $3")
            .bind(new.now)
            .bind(id)
            .bind(new.session_id)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

    /// Persists the answer so far while it streams (also as the heartbeat of a quiet model).
    /// Answers whether a stop was asked for through the row (by another instance): one
    /// statement does both, so looking for stops costs no extra query.
    pub async fn save_progress(
        &self,
        id: MessageId,
        content: &str,
        reasoning: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE chat_messages SET content = $1, reasoning = $2, updated_at = $3 WHERE id = $4 AND status = $5 \
             RETURNING CAST(stop_requested AS BIGINT)",
        )
        .bind(content)
        .bind(reasoning)
        .bind(now)
        .bind(id)
        .bind(MessageStatus::Streaming.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some_and(|(requested,)| requested != 0))
    }

    /// Appends what the answer gained since its last save (`content` and `reasoning` hold only
    /// the new text), so a long answer is not rewritten whole every few hundred milliseconds;
    /// also the heartbeat of a quiet model. Only when the row holds exactly the characters
    /// `saved` says were stored before: a save whose commit went unconfirmed must not append
    /// twice. `None` when the row did not match (the caller then writes the whole text with
    /// [`ChatStore::save_progress`]); else whether a stop was asked for through the row.
    pub async fn append_progress(
        &self,
        id: MessageId,
        content: &str,
        reasoning: &str,
        saved: SavedText,
        now: i64,
    ) -> Result<Option<bool>, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE chat_messages SET content = content || $1, reasoning = reasoning || $2, updated_at = $3 \
             WHERE id = $4 AND status = $5 AND LENGTH(content) = $6 AND LENGTH(reasoning) = $7 \
             RETURNING CAST(stop_requested AS BIGINT)",
        )
        .bind(content)
        .bind(reasoning)
        .bind(now)
        .bind(id)
        .bind(MessageStatus::Streaming.as_str())
        .bind(saved.content_chars)
        .bind(saved.reasoning_chars)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(requested,)| requested != 0))
    }

    /// Asks whichever instance generates the answer to stop. False when it is not streaming.
    /// The caller checked the message's owner.
    pub async fn request_stop(&self, id: MessageId) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("UPDATE chat_messages SET stop_requested = 1 WHERE id = $1 AND status = $2")
            .bind(id)
            .bind(MessageStatus::Streaming.as_str())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The answers of a session still streaming (possibly on another instance). The caller
    /// checked the session's owner.
    pub async fn streaming_in_session(&self, session_id: SessionId) -> Result<Vec<MessageId>, sqlx::Error> {
        let rows: Vec<(MessageId,)> = sqlx::query_as(STREAMING_IN_SESSION)
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Writes how the generation ended, and adds `charge` to `token_usage` in the same
    /// transaction. Other answers to the same question stay: they are its other versions.
    pub async fn finish_answer(
        &self,
        id: MessageId,
        answer: &FinishedAnswer<'_>,
        charge: Option<&UsageCharge>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE chat_messages SET content = $1, reasoning = $2, status = $3, prompt_tokens = $4, \
             completion_tokens = $5, error = $6, error_code = $7, error_reason = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(answer.content)
        .bind(answer.reasoning)
        .bind(answer.status.as_str())
        .bind(answer.prompt_tokens)
        .bind(answer.completion_tokens)
        .bind(answer.error)
        .bind(answer.error_code)
        .bind(answer.error_reason)
        .bind(answer.now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(charge) = charge {
            Self::record_usage(&mut tx, charge).await?;
        }
        tx.commit().await?;
        Ok(())
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
            .bind(MessageStatus::Failed.as_str())
            .bind(error)
            .bind(error_code)
            .bind(now)
            .bind(untouched_since)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sqlx::AnyPool;

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
