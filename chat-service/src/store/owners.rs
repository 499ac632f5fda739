//! `chat_owners`: which account (by its `aid`) owns the rows stored under an owner id, and
//! the erasure of a deleted account's rows, in batches (every statement here deletes at most
//! `limit` rows, so none holds its locks for long).

use super::ChatStore;
use crate::ids::{OwnerId, SessionId};

/// An owner as a request finds it.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct OwnerRow {
    pub id: OwnerId,
    /// Set once the account was erased.
    pub erased_at: Option<i64>,
}

impl ChatStore {
    pub async fn owner_by_account(&self, account_id: &str) -> Result<Option<OwnerRow>, sqlx::Error> {
        sqlx::query_as("SELECT id, erased_at FROM chat_owners WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Gives the legacy owner of `legacy_user_id` (rows from before owners existed) to
    /// `account_id`, if no account has it yet. `None`: there is none to adopt.
    pub async fn adopt_legacy_owner(
        &self,
        legacy_user_id: i64,
        account_id: &str,
    ) -> Result<Option<OwnerId>, sqlx::Error> {
        let adopted: Option<(OwnerId,)> = sqlx::query_as(
            "UPDATE chat_owners SET account_id = $1 \
             WHERE legacy_user_id = $2 AND account_id IS NULL AND erased_at IS NULL RETURNING id",
        )
        .bind(account_id)
        .bind(legacy_user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(adopted.map(|(id,)| id))
    }

    /// The owner of `account_id`, created if it has none (two requests racing get the same).
    pub async fn insert_owner(&self, account_id: &str, now: i64) -> Result<OwnerRow, sqlx::Error> {
        sqlx::query(
            "INSERT INTO chat_owners (account_id, created_at) VALUES ($1, $2) ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(account_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.owner_by_account(account_id).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// Marks `account_id` erased (creating its owner if it never had one, so a late token
    /// cannot create one either); answers its owner id. Erasing twice keeps the first time.
    pub async fn mark_owner_erased(&self, account_id: &str, now: i64) -> Result<OwnerId, sqlx::Error> {
        sqlx::query(
            "INSERT INTO chat_owners (account_id, created_at, erased_at) VALUES ($1, $2, $2) \
             ON CONFLICT (account_id) DO UPDATE SET erased_at = COALESCE(chat_owners.erased_at, $2)",
        )
        .bind(account_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let (id,): (OwnerId,) = sqlx::query_as("SELECT id FROM chat_owners WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    /// Erased owners that still have rows (an erasure a crash cut short, or a row a request
    /// wrote just after its account was erased).
    pub async fn erased_owners_with_rows(&self, limit: i64) -> Result<Vec<OwnerId>, sqlx::Error> {
        let rows: Vec<(OwnerId,)> = sqlx::query_as(
            "SELECT o.id FROM chat_owners o WHERE o.erased_at IS NOT NULL AND ( \
                EXISTS (SELECT 1 FROM chat_sessions s WHERE s.user_id = o.id) \
                OR EXISTS (SELECT 1 FROM personas p WHERE p.user_id = o.id) \
                OR EXISTS (SELECT 1 FROM api_configs c WHERE c.user_id = o.id) \
                OR EXISTS (SELECT 1 FROM favorite_models f WHERE f.user_id = o.id) \
                OR EXISTS (SELECT 1 FROM chat_defaults d WHERE d.user_id = o.id) \
                OR EXISTS (SELECT 1 FROM prompts pr WHERE pr.user_id = o.id) \
                OR EXISTS (SELECT 1 FROM chat_folders cf WHERE cf.user_id = o.id) \
                OR EXISTS (SELECT 1 FROM room_members m WHERE m.member_id = o.id) \
                OR EXISTS (SELECT 1 FROM notifications n WHERE n.owner_id = o.id)) \
             ORDER BY o.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Up to `limit` of the owner's session ids.
    pub async fn session_ids_of(&self, owner: OwnerId, limit: i64) -> Result<Vec<SessionId>, sqlx::Error> {
        let rows: Vec<(SessionId,)> =
            sqlx::query_as("SELECT id FROM chat_sessions WHERE user_id = $1 ORDER BY id LIMIT $2")
                .bind(owner)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes up to `limit` messages of a session the caller checked the owner of.
    pub async fn delete_messages_batch(&self, session_id: SessionId, limit: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "DELETE FROM chat_messages WHERE id IN \
             (SELECT id FROM chat_messages WHERE session_id = $1 ORDER BY id LIMIT $2)",
        )
        .bind(session_id)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Deletes up to `limit` of the owner's own personas.
    pub async fn delete_personas_batch(&self, owner: OwnerId, limit: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "DELETE FROM personas WHERE id IN (SELECT id FROM personas WHERE user_id = $1 ORDER BY id LIMIT $2)",
        )
        .bind(owner)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Deletes up to `limit` of the owner's API configs, sealed keys with them.
    pub async fn delete_api_configs_batch(&self, owner: OwnerId, limit: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "DELETE FROM api_configs WHERE id IN (SELECT id FROM api_configs WHERE user_id = $1 ORDER BY id LIMIT $2)",
        )
        .bind(owner)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
