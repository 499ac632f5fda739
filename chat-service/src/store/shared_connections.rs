//! Shared connections: an `api_configs` row of the reserved shared-connections owner (the
//! provider settings and the sealed key) plus `shared_connections` (currency, limits,
//! "everyone"), `shared_connection_models` (models and prices) and `shared_connection_grants`
//! (accounts granted it). Writes change the config row and its sharing in one transaction.

use sqlx::AnyConnection;

use super::{ChatStore, ConfigFields};
use crate::ids::{ApiConfigId, OwnerId};
use crate::key_cipher::SealedKey;

/// A shared connection's config and sharing settings.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SharedConnectionRow {
    pub id: ApiConfigId,
    pub name: String,
    pub base_url: String,
    pub api_key_hint: String,
    pub currency: String,
    pub daily_token_limit: i64,
    pub monthly_token_limit: i64,
    pub everyone: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const SHARED_COLUMNS: &str = "c.id, c.name, c.base_url, c.api_key_hint, s.currency, s.daily_token_limit, \
     s.monthly_token_limit, CAST(s.everyone AS BIGINT) AS everyone, c.created_at, c.updated_at";

/// A model a shared connection offers, with its prices (micro-units per 1,000,000 tokens).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SharedModelRow {
    pub api_config_id: ApiConfigId,
    pub model: String,
    pub prompt_price_micros: i64,
    pub completion_price_micros: i64,
}

/// What sharing adds to the config, as it will be after a create or update.
pub struct SharingFields<'a> {
    pub currency: &'a str,
    pub daily_token_limit: i64,
    pub monthly_token_limit: i64,
    pub everyone: bool,
    /// In order; the first is the default (and the config row's `model`).
    pub models: &'a [SharedModelRow],
}

impl ChatStore {
    /// Inserts the config row of `owner` with its sealed key, and its sharing, in one
    /// transaction.
    pub async fn insert_shared_connection<E: From<sqlx::Error>>(
        &self,
        owner: OwnerId,
        fields: &ConfigFields<'_>,
        api_key_hint: &str,
        seal: impl FnOnce(ApiConfigId) -> Result<SealedKey, E>,
        sharing: &SharingFields<'_>,
        now: i64,
    ) -> Result<ApiConfigId, E> {
        let mut tx = self.pool.begin().await?;
        let id = Self::insert_config_with_key(&mut tx, owner, fields, api_key_hint, seal, now).await?;
        sqlx::query(
            "INSERT INTO shared_connections (api_config_id, currency, daily_token_limit, monthly_token_limit, everyone) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(sharing.currency)
        .bind(sharing.daily_token_limit)
        .bind(sharing.monthly_token_limit)
        .bind(i64::from(sharing.everyone))
        .execute(&mut *tx)
        .await?;
        Self::replace_models(&mut tx, id, sharing.models).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Writes the config fields (and the key when given) and the sharing of `owner`'s config
    /// `id`. False when there is no such shared connection.
    pub async fn update_shared_connection(
        &self,
        owner: OwnerId,
        id: ApiConfigId,
        fields: &ConfigFields<'_>,
        key: Option<(SealedKey, &str)>,
        sharing: &SharingFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE shared_connections SET currency = $1, daily_token_limit = $2, monthly_token_limit = $3, \
             everyone = $4 WHERE api_config_id = $5",
        )
        .bind(sharing.currency)
        .bind(sharing.daily_token_limit)
        .bind(sharing.monthly_token_limit)
        .bind(i64::from(sharing.everyone))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 || !Self::update_config_in(&mut tx, owner, id, fields, key, now).await? {
            return Ok(false);
        }
        Self::replace_models(&mut tx, id, sharing.models).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn replace_models(
        conn: &mut AnyConnection,
        id: ApiConfigId,
        models: &[SharedModelRow],
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM shared_connection_models WHERE api_config_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for (position, model) in models.iter().enumerate() {
            sqlx::query(
                "INSERT INTO shared_connection_models \
                 (api_config_id, position, model, prompt_price_micros, completion_price_micros) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(position as i64)
            .bind(&model.model)
            .bind(model.prompt_price_micros)
            .bind(model.completion_price_micros)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    pub async fn shared_connections(&self) -> Result<Vec<SharedConnectionRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SHARED_COLUMNS} FROM shared_connections s JOIN api_configs c ON c.id = s.api_config_id ORDER BY c.id"
        )))
        .fetch_all(&self.pool)
        .await
    }

    pub async fn shared_connection(&self, id: ApiConfigId) -> Result<Option<SharedConnectionRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SHARED_COLUMNS} FROM shared_connections s JOIN api_configs c ON c.id = s.api_config_id \
             WHERE s.api_config_id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// The shared connections `owner`'s account may use: those for everyone and those granted
    /// to it.
    pub async fn shared_connections_for(&self, owner: OwnerId) -> Result<Vec<SharedConnectionRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SHARED_COLUMNS} FROM shared_connections s JOIN api_configs c ON c.id = s.api_config_id \
             WHERE {USABLE_BY} ORDER BY c.id"
        )))
        .bind(owner)
        .fetch_all(&self.pool)
        .await
    }

    /// Shared connection `id`, if `owner`'s account may use it.
    pub async fn shared_connection_for(
        &self,
        owner: OwnerId,
        id: ApiConfigId,
    ) -> Result<Option<SharedConnectionRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SHARED_COLUMNS} FROM shared_connections s JOIN api_configs c ON c.id = s.api_config_id \
             WHERE {USABLE_BY} AND s.api_config_id = $2"
        )))
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// The models of the given connections (every one when `id` is `None`), in order.
    pub async fn shared_models(&self, id: Option<ApiConfigId>) -> Result<Vec<SharedModelRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT api_config_id, model, prompt_price_micros, completion_price_micros FROM shared_connection_models \
             WHERE ($1 = 0 OR api_config_id = $1) ORDER BY api_config_id, position",
        )
        .bind(id.map_or(0, |id| id.0))
        .fetch_all(&self.pool)
        .await
    }

    /// (connection, account id) of every grant to one account, of connection `id` (or all).
    pub async fn shared_grants(&self, id: Option<ApiConfigId>) -> Result<Vec<(ApiConfigId, String)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT api_config_id, account_id FROM shared_connection_grants WHERE ($1 = 0 OR api_config_id = $1) \
             ORDER BY api_config_id, account_id",
        )
        .bind(id.map_or(0, |id| id.0))
        .fetch_all(&self.pool)
        .await
    }

    /// Grants connection `id` to one account. False when there is no such connection.
    pub async fn grant_shared(&self, id: ApiConfigId, account_id: &str, now: i64) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "INSERT INTO shared_connection_grants (api_config_id, account_id, created_at) \
             SELECT api_config_id, $2, $3 FROM shared_connections WHERE api_config_id = $1 \
             ON CONFLICT (api_config_id, account_id) DO NOTHING",
        )
        .bind(id)
        .bind(account_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1 || self.shared_connection(id).await?.is_some())
    }

    pub async fn revoke_shared(&self, id: ApiConfigId, account_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM shared_connection_grants WHERE api_config_id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets whether every account may use connection `id`. False when there is none.
    pub async fn share_with_everyone(&self, id: ApiConfigId, everyone: bool, now: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE shared_connections SET everyone = $1 WHERE api_config_id = $2")
            .bind(i64::from(everyone))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE api_configs SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(updated == 1)
    }

    /// Deletes `owner`'s config `id` with its sharing (cascading); every session that named it
    /// falls back to its owner's default config. False when there is none.
    pub async fn delete_shared_connection(
        &self,
        owner: OwnerId,
        id: ApiConfigId,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM api_configs WHERE id = $1 AND user_id = $2 \
             AND id IN (SELECT api_config_id FROM shared_connections)",
        )
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 1 {
            sqlx::query("UPDATE chat_sessions SET api_config_id = NULL, updated_at = $1 WHERE api_config_id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Removes an erased account's grants.
    pub async fn delete_grants_of(&self, account_id: &str) -> Result<u64, sqlx::Error> {
        Ok(
            sqlx::query("DELETE FROM shared_connection_grants WHERE account_id = $1")
                .bind(account_id)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}

/// `s` (a `shared_connections` row) may be used by owner `$1`'s account.
const USABLE_BY: &str = "(s.everyone = 1 OR EXISTS (SELECT 1 FROM shared_connection_grants g \
     JOIN chat_owners o ON o.account_id = g.account_id WHERE g.api_config_id = s.api_config_id AND o.id = $1))";
