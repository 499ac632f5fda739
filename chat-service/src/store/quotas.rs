//! Quotas: what an account uses (`OwnerUsage`), an administrator's overrides
//! (`chat_quota_overrides`), the daily message counts (`chat_daily_messages`), and the writes
//! that must stay within them. Those run in one transaction that first locks the owner's
//! `chat_owners` row (PostgreSQL: the row lock; SQLite: the database's write lock, taken by
//! that first write), so two requests of one account cannot both count the same room and both
//! insert: the second counts after the first committed.

use sqlx::{Any, AnyConnection, Transaction};

use super::{ChatStore, MessageRow, NewExchange, NewSession};
use crate::ids::{ApiConfigId, MessageId, OwnerId, PersonaId, SessionId};
use crate::key_cipher::SealedKey;
use crate::store::{ConfigFields, PersonaFields, SessionFields};

/// What an owner uses now. `messages_today` counts the day asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct OwnerUsage {
    pub sessions: i64,
    pub messages: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub stored_bytes: i64,
    pub messages_today: i64,
    pub personas: i64,
    pub api_configs: i64,
}

/// An administrator's overrides of the default limits; `None` follows the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct QuotaOverrides {
    #[sqlx(rename = "override_stored_bytes")]
    pub stored_bytes: Option<i64>,
    #[sqlx(rename = "override_sessions")]
    pub sessions: Option<i64>,
    #[sqlx(rename = "override_personas")]
    pub personas: Option<i64>,
    #[sqlx(rename = "override_api_configs")]
    pub api_configs: Option<i64>,
    #[sqlx(rename = "override_messages_per_day")]
    pub messages_per_day: Option<i64>,
}

/// An account (an owner with an account id) with its usage and overrides.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountUsageRow {
    pub owner_id: OwnerId,
    pub account_id: String,
    #[sqlx(flatten)]
    pub usage: OwnerUsage,
    #[sqlx(flatten)]
    pub overrides: QuotaOverrides,
}

/// The usage columns of the owner `o` (and, through `q`, its overrides); `$1` is the day
/// whose messages count as today's. Every value is cast to BIGINT: PostgreSQL sums BIGINTs as
/// NUMERIC, which the Any driver cannot read.
const USAGE_COLUMNS: &str = "\
    CAST((SELECT COUNT(*) FROM chat_sessions s WHERE s.user_id = o.id) AS BIGINT) AS sessions, \
    CAST((SELECT COUNT(*) FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id \
          WHERE s.user_id = o.id) AS BIGINT) AS messages, \
    CAST((SELECT COALESCE(SUM(m.prompt_tokens), 0) FROM chat_messages m \
          JOIN chat_sessions s ON s.id = m.session_id WHERE s.user_id = o.id) AS BIGINT) AS prompt_tokens, \
    CAST((SELECT COALESCE(SUM(m.completion_tokens), 0) FROM chat_messages m \
          JOIN chat_sessions s ON s.id = m.session_id WHERE s.user_id = o.id) AS BIGINT) AS completion_tokens, \
    CAST((SELECT COALESCE(SUM(OCTET_LENGTH(m.content) + OCTET_LENGTH(m.reasoning)), 0) FROM chat_messages m \
          JOIN chat_sessions s ON s.id = m.session_id WHERE s.user_id = o.id) \
       + (SELECT COALESCE(SUM(OCTET_LENGTH(s.system_prompt)), 0) FROM chat_sessions s WHERE s.user_id = o.id) \
       + (SELECT COALESCE(SUM(OCTET_LENGTH(p.system_prompt)), 0) FROM personas p WHERE p.user_id = o.id) \
       + (SELECT COALESCE(SUM(OCTET_LENGTH(sm.content)), 0) FROM chat_share_messages sm \
          JOIN chat_share_links l ON l.id = sm.link_id WHERE l.owner_id = o.id) \
       AS BIGINT) AS stored_bytes, \
    CAST(COALESCE((SELECT d.messages FROM chat_daily_messages d WHERE d.owner_id = o.id AND d.day = $1), 0) \
       AS BIGINT) AS messages_today, \
    CAST((SELECT COUNT(*) FROM personas p WHERE p.user_id = o.id) AS BIGINT) AS personas, \
    CAST((SELECT COUNT(*) FROM api_configs c WHERE c.user_id = o.id) AS BIGINT) AS api_configs, \
    q.stored_bytes AS override_stored_bytes, q.sessions AS override_sessions, q.personas AS override_personas, \
    q.api_configs AS override_api_configs, q.messages_per_day AS override_messages_per_day";

const USAGE_FROM: &str = "FROM chat_owners o LEFT JOIN chat_quota_overrides q ON q.owner_id = o.id";

/// A write within an owner's quotas: the owner is locked and its usage was checked; commit
/// to keep what was written, or drop to undo it.
pub struct QuotaWrite {
    tx: Transaction<'static, Any>,
    owner: OwnerId,
    /// The day usage was counted for: a message sent now counts toward it.
    day: i64,
}

impl QuotaWrite {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub(super) fn owner(&self) -> OwnerId {
        self.owner
    }
}

impl ChatStore {
    /// Locks `owner` for a write and lets `check` judge its usage (of day `day`) and overrides
    /// first; the write follows on the answered [`QuotaWrite`]. When `check` refuses, nothing
    /// was written and its error is answered.
    pub async fn begin_within_quota<E: From<sqlx::Error>>(
        &self,
        owner: OwnerId,
        day: i64,
        check: impl FnOnce(&OwnerUsage, &QuotaOverrides) -> Result<(), E>,
    ) -> Result<QuotaWrite, E> {
        let mut tx = self.pool.begin().await?;
        // The first statement writes: on SQLite this takes the write lock now (a read first
        // would make the later upgrade fail once another writer committed in between).
        sqlx::query("UPDATE chat_owners SET created_at = created_at WHERE id = $1")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        let row: AccountUsageRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT o.id AS owner_id, COALESCE(o.account_id, '') AS account_id, {USAGE_COLUMNS} {USAGE_FROM} \
             WHERE o.id = $2"
        )))
        .bind(day)
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
        check(&row.usage, &row.overrides)?;
        Ok(QuotaWrite { tx, owner, day })
    }

    /// Accounts (owners with an account id, not erased) after owner id `after`, by owner id.
    pub async fn account_usage_page(
        &self,
        after: OwnerId,
        limit: i64,
        day: i64,
    ) -> Result<Vec<AccountUsageRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT o.id AS owner_id, o.account_id, {USAGE_COLUMNS} {USAGE_FROM} \
             WHERE o.account_id IS NOT NULL AND o.erased_at IS NULL AND o.id > $2 ORDER BY o.id LIMIT $3"
        )))
        .bind(day)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// The account `account_id`, unless it has no owner (never used chat-service) or was erased.
    pub async fn account_usage(&self, account_id: &str, day: i64) -> Result<Option<AccountUsageRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT o.id AS owner_id, o.account_id, {USAGE_COLUMNS} {USAGE_FROM} \
             WHERE o.account_id = $2 AND o.erased_at IS NULL"
        )))
        .bind(day)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Writes all of an owner's overrides (`None` clears one).
    pub async fn set_quota_overrides(
        &self,
        owner: OwnerId,
        overrides: &QuotaOverrides,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO chat_quota_overrides \
             (owner_id, stored_bytes, sessions, personas, api_configs, messages_per_day, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (owner_id) DO UPDATE SET stored_bytes = $2, sessions = $3, personas = $4, \
             api_configs = $5, messages_per_day = $6, updated_at = $7",
        )
        .bind(owner)
        .bind(overrides.stored_bytes)
        .bind(overrides.sessions)
        .bind(overrides.personas)
        .bind(overrides.api_configs)
        .bind(overrides.messages_per_day)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes an erased owner's overrides and daily counts.
    pub async fn delete_quota_rows(&self, owner: OwnerId) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM chat_quota_overrides WHERE owner_id = $1")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM chat_daily_messages WHERE owner_id = $1")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

/// The writes that count toward a quota, each within a [`QuotaWrite`]: the same statements
/// as their unchecked forms in the table's file.
impl QuotaWrite {
    pub async fn insert_session(&mut self, new: &NewSession<'_>) -> Result<SessionId, sqlx::Error> {
        ChatStore::insert_session_in(self.conn(), new).await
    }

    pub async fn insert_persona(&mut self, fields: &PersonaFields<'_>, now: i64) -> Result<PersonaId, sqlx::Error> {
        let owner = self.owner;
        ChatStore::insert_persona_in(self.conn(), owner, fields, now).await
    }

    pub async fn insert_api_config<E: From<sqlx::Error>>(
        &mut self,
        fields: &ConfigFields<'_>,
        api_key_hint: &str,
        seal: impl FnOnce(ApiConfigId) -> Result<SealedKey, E>,
        now: i64,
    ) -> Result<ApiConfigId, E> {
        let owner = self.owner;
        ChatStore::insert_config_with_key(self.conn(), owner, fields, api_key_hint, seal, now).await
    }

    pub async fn insert_exchange(&mut self, new: &NewExchange<'_>) -> Result<(MessageId, MessageId), sqlx::Error> {
        ChatStore::insert_exchange_in(self.conn(), new).await
    }

    pub async fn insert_regenerated_answer(
        &mut self,
        old: &MessageRow,
        reply_to_id: MessageId,
        model: &str,
        config_name: &str,
        persona: Option<&super::PersonaRow>,
        now: i64,
    ) -> Result<MessageId, sqlx::Error> {
        let answer = super::answers::NewAnswer::regenerated(old, reply_to_id, model, config_name, persona, now);
        ChatStore::insert_answer(self.conn(), &answer).await
    }

    /// One more message sent today.
    pub async fn count_message(&mut self) -> Result<(), sqlx::Error> {
        let (owner, day) = (self.owner, self.day);
        sqlx::query(
            "INSERT INTO chat_daily_messages (owner_id, day, messages) VALUES ($1, $2, 1) \
             ON CONFLICT (owner_id, day) DO UPDATE SET messages = chat_daily_messages.messages + 1",
        )
        .bind(owner)
        .bind(day)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn update_persona(
        &mut self,
        id: PersonaId,
        fields: &PersonaFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let owner = self.owner;
        ChatStore::update_persona_in(self.conn(), owner, id, fields, now).await
    }

    pub async fn update_session(
        &mut self,
        id: SessionId,
        fields: &SessionFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let owner = self.owner;
        ChatStore::update_session_in(self.conn(), owner, id, fields, now).await
    }

    pub async fn update_message_content(
        &mut self,
        id: MessageId,
        content: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let owner = self.owner;
        ChatStore::update_message_content_in(self.conn(), owner, id, content, now).await
    }
}
