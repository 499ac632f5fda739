//! `api_configs`: a user's provider settings, the key sealed.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{ApiConfigRow, CONFIG_COLUMNS, ChatStore, ConfigFields};
use crate::ids::{ApiConfigId, OwnerId};
use crate::key_cipher::SealedKey;

/// What deleting a config did to the chats that used it.
#[derive(Debug)]
pub struct DeletedConfig {
    pub sessions_moved: i64,
    /// The default config they use now (id, name); None when the user has none left.
    pub replacement: Option<(ApiConfigId, String)>,
}

impl ChatStore {
    /// Inserts the row, then writes the key sealed for its id, in one transaction: the row id
    /// is the AEAD's associated data, so it must exist before the key is encrypted.
    pub async fn insert_api_config<E: From<sqlx::Error>>(
        &self,
        user_id: OwnerId,
        fields: &ConfigFields<'_>,
        api_key_hint: &str,
        seal: impl FnOnce(ApiConfigId) -> Result<SealedKey, E>,
        now: i64,
    ) -> Result<ApiConfigId, E> {
        let mut tx = self.pool.begin().await?;
        let id = Self::insert_config_with_key(&mut tx, user_id, fields, api_key_hint, seal, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The row and its sealed key, within the caller's transaction (an error must drop it:
    /// no row without its key).
    pub(super) async fn insert_config_with_key<E: From<sqlx::Error>>(
        conn: &mut AnyConnection,
        user_id: OwnerId,
        fields: &ConfigFields<'_>,
        api_key_hint: &str,
        seal: impl FnOnce(ApiConfigId) -> Result<SealedKey, E>,
        now: i64,
    ) -> Result<ApiConfigId, E> {
        let (id,): (ApiConfigId,) = sqlx::query_as(
            "INSERT INTO api_configs (user_id, name, base_url, model, api_key_hint, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(user_id)
        .bind(fields.name)
        .bind(fields.base_url)
        .bind(fields.model)
        .bind(api_key_hint)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        let sealed = seal(id)?;
        sqlx::query(
            "UPDATE api_configs SET api_key_ciphertext = $1, api_key_nonce = $2, api_key_key_version = $3 WHERE id = $4",
        )
        .bind(sealed.ciphertext)
        .bind(sealed.nonce)
        .bind(sealed.key_version)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        Ok(id)
    }

    pub async fn api_config(&self, user_id: OwnerId, id: ApiConfigId) -> Result<Option<ApiConfigRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONFIG_COLUMNS} FROM api_configs c WHERE c.id = $1 AND c.user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn api_config_by_name(&self, user_id: OwnerId, name: &str) -> Result<Option<ApiConfigRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONFIG_COLUMNS} FROM api_configs c WHERE c.name = $1 AND c.user_id = $2"
        )))
        .bind(name)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// The user's first config: the one chats use when they name none.
    pub async fn default_api_config(&self, user_id: OwnerId) -> Result<Option<ApiConfigRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONFIG_COLUMNS} FROM api_configs c WHERE c.user_id = $1 ORDER BY c.id LIMIT 1"
        )))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn api_configs(&self, user_id: OwnerId) -> Result<Vec<ApiConfigRow>, sqlx::Error> {
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
        user_id: OwnerId,
        id: ApiConfigId,
        fields: &ConfigFields<'_>,
        key: Option<(SealedKey, &str)>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Self::update_config_in(&mut conn, user_id, id, fields, key, now).await
    }

    /// [`ChatStore::update_api_config`] on the caller's connection (or transaction).
    pub(super) async fn update_config_in(
        conn: &mut AnyConnection,
        user_id: OwnerId,
        id: ApiConfigId,
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
                .execute(&mut *conn)
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
                .execute(&mut *conn)
                .await?
            }
        };
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the config; sessions that named it fall back to the default config (the
    /// oldest that remains), in one transaction. None when the user has no such config.
    pub async fn delete_api_config(
        &self,
        user_id: OwnerId,
        id: ApiConfigId,
        now: i64,
    ) -> Result<Option<DeletedConfig>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let Some(named) = Self::delete_referenced_in(
            &mut tx,
            "DELETE FROM api_configs WHERE id = $1 AND user_id = $2",
            "UPDATE chat_sessions SET api_config_id = NULL, updated_at = $1 WHERE api_config_id = $2 AND user_id = $3",
            user_id,
            id.0,
            now,
        )
        .await?
        else {
            return Ok(None);
        };
        // The default (oldest) config also answered the sessions naming none: they move too.
        let (older,): (i64,) =
            sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM api_configs WHERE user_id = $1 AND id < $2")
                .bind(user_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let sessions_moved = if older == 0 {
            let (unnamed,): (i64,) = sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM chat_sessions WHERE user_id = $1 AND api_config_id IS NULL",
            )
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            unnamed
        } else {
            i64::try_from(named).unwrap_or(i64::MAX)
        };
        let replacement: Option<(ApiConfigId, String)> =
            sqlx::query_as("SELECT id, name FROM api_configs WHERE user_id = $1 ORDER BY id LIMIT 1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Some(DeletedConfig {
            sessions_moved,
            replacement,
        }))
    }

    /// How many of the user's sessions name each config (`None`: those naming none).
    pub async fn sessions_per_config(
        &self,
        user_id: OwnerId,
    ) -> Result<HashMap<Option<ApiConfigId>, i64>, sqlx::Error> {
        let rows: Vec<(Option<ApiConfigId>, i64)> = sqlx::query_as(
            "SELECT api_config_id, CAST(COUNT(*) AS BIGINT) FROM chat_sessions WHERE user_id = $1 GROUP BY api_config_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}
