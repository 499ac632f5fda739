//! `favorite_models` and `chat_defaults`: what each account prefers (its favourite models,
//! and what its new chats start with). Every statement names the owner.

use parley_service_kit::database::flag;

use super::{ChatStore, GenerationParams};
use crate::ids::{ApiConfigId, OwnerId, PersonaId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FavoriteModelRow {
    pub api_config_id: ApiConfigId,
    pub model: String,
    pub created_at: i64,
}

/// An account's defaults for new chats; all unset for an account that never changed them.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ChatDefaultsRow {
    pub persona_id: Option<PersonaId>,
    pub system_prompt: String,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<i64>,
    /// `None` until first changed.
    pub updated_at: Option<i64>,
}

impl ChatDefaultsRow {
    pub fn params(&self) -> GenerationParams {
        GenerationParams {
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
        }
    }
}

impl ChatStore {
    /// The owner's favourites, oldest first.
    pub async fn favorite_models(&self, owner: OwnerId) -> Result<Vec<FavoriteModelRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT api_config_id, model, created_at FROM favorite_models WHERE user_id = $1 \
             ORDER BY created_at, api_config_id, model",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await
    }

    /// Adds a favourite (a second add changes nothing) and answers it as stored.
    pub async fn add_favorite_model(
        &self,
        owner: OwnerId,
        config: ApiConfigId,
        model: &str,
        now: i64,
    ) -> Result<FavoriteModelRow, sqlx::Error> {
        sqlx::query(
            "INSERT INTO favorite_models (user_id, api_config_id, model, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, api_config_id, model) DO NOTHING",
        )
        .bind(owner)
        .bind(config)
        .bind(model)
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query_as(
            "SELECT api_config_id, model, created_at FROM favorite_models \
             WHERE user_id = $1 AND api_config_id = $2 AND model = $3",
        )
        .bind(owner)
        .bind(config)
        .bind(model)
        .fetch_one(&self.pool)
        .await
    }

    pub async fn remove_favorite_model(
        &self,
        owner: OwnerId,
        config: ApiConfigId,
        model: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM favorite_models WHERE user_id = $1 AND api_config_id = $2 AND model = $3")
            .bind(owner)
            .bind(config)
            .bind(model)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The owner's defaults for new chats (all unset when never changed).
    pub async fn chat_defaults(&self, owner: OwnerId) -> Result<ChatDefaultsRow, sqlx::Error> {
        let row: Option<ChatDefaultsRow> = sqlx::query_as(
            "SELECT persona_id, system_prompt, temperature, top_p, max_tokens, updated_at \
             FROM chat_defaults WHERE user_id = $1",
        )
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.unwrap_or_default())
    }

    /// Writes the owner's defaults whole. (Numbers are bound with a "set" flag: see
    /// `NewSession`.)
    pub async fn put_chat_defaults(&self, owner: OwnerId, row: &ChatDefaultsRow, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO chat_defaults (user_id, persona_id, system_prompt, temperature, top_p, max_tokens, updated_at) \
             VALUES ($1, $2, $3, CASE WHEN $5 = 0 THEN NULL ELSE $4 END, CASE WHEN $7 = 0 THEN NULL ELSE $6 END, $8, $9) \
             ON CONFLICT (user_id) DO UPDATE SET persona_id = excluded.persona_id, \
             system_prompt = excluded.system_prompt, temperature = excluded.temperature, top_p = excluded.top_p, \
             max_tokens = excluded.max_tokens, updated_at = excluded.updated_at",
        )
        .bind(owner)
        .bind(row.persona_id)
        .bind(&row.system_prompt)
        .bind(row.temperature.unwrap_or_default())
        .bind(flag(row.temperature.is_some()))
        .bind(row.top_p.unwrap_or_default())
        .bind(flag(row.top_p.is_some()))
        .bind(row.max_tokens)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes every favourite of a config that is gone (by anyone: ids are not reused).
    pub async fn delete_favorites_of_config(&self, config: ApiConfigId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM favorite_models WHERE api_config_id = $1")
            .bind(config)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the owner's favourites and defaults (an erased account's).
    pub async fn delete_preferences_of(&self, owner: OwnerId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM favorite_models WHERE user_id = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM chat_defaults WHERE user_id = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
