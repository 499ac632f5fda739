//! The sealed API keys of every config, for master-key rotation at start-up.

use super::ChatStore;
use crate::ids::ApiConfigId;
use crate::key_cipher::SealedKey;

impl ChatStore {
    /// Every stored key not sealed under `version`, as (row id, sealed key).
    pub async fn keys_not_under(&self, version: i64) -> Result<Vec<(ApiConfigId, SealedKey)>, sqlx::Error> {
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
    pub async fn one_key_under(&self, version: i64) -> Result<Option<(ApiConfigId, SealedKey)>, sqlx::Error> {
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
    pub async fn reseal_key(&self, id: ApiConfigId, old: &SealedKey, new: &SealedKey) -> Result<bool, sqlx::Error> {
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

#[derive(sqlx::FromRow)]
struct SealedKeyRow {
    id: ApiConfigId,
    api_key_ciphertext: Option<Vec<u8>>,
    api_key_nonce: Option<Vec<u8>>,
    api_key_key_version: i64,
}

impl SealedKeyRow {
    fn into_parts(self) -> Option<(ApiConfigId, SealedKey)> {
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
