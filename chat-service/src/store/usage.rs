//! `token_usage`: tokens (and cost in pico-units) per owner, config, model and UTC day,
//! added to by every finished answer (in the transaction that stores it, see
//! [`ChatStore::finish_answer`]).

use sqlx::AnyConnection;

use super::ChatStore;
use crate::ids::{ApiConfigId, OwnerId};
use crate::usage::{Day, UsageCharge};

/// Usage of one (config, model, day), or summed over a range (then `day` is its first).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRow {
    pub account_id: String,
    pub api_config_id: ApiConfigId,
    /// As it is now; empty once the config was deleted.
    pub config_name: String,
    pub shared: i64,
    pub model: String,
    pub day: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub answers: i64,
    pub cost_picos: i64,
    pub currency: String,
}

/// Tokens (prompt + completion) one owner used through one config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct TokensUsed {
    pub today: i64,
    pub this_month: i64,
}

impl ChatStore {
    /// Adds one answer's tokens to its day's row (created on the first).
    pub(super) async fn record_usage(conn: &mut AnyConnection, charge: &UsageCharge) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO token_usage (user_id, api_config_id, model, day, shared, prompt_tokens, completion_tokens, \
             answers, cost_picos, currency) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9) \
             ON CONFLICT (user_id, api_config_id, model, day) DO UPDATE SET \
             prompt_tokens = token_usage.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = token_usage.completion_tokens + excluded.completion_tokens, \
             answers = token_usage.answers + 1, \
             cost_picos = token_usage.cost_picos + excluded.cost_picos, \
             currency = excluded.currency",
        )
        .bind(charge.owner)
        .bind(charge.config_id)
        .bind(&charge.model)
        .bind(charge.day.0)
        .bind(i64::from(charge.shared))
        .bind(charge.prompt_tokens)
        .bind(charge.completion_tokens)
        .bind(charge.cost_picos)
        .bind(&charge.currency)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Tokens `owner` used through `config` on `today` and since `month_start`.
    pub async fn tokens_used(
        &self,
        owner: OwnerId,
        config: ApiConfigId,
        today: Day,
        month_start: Day,
    ) -> Result<TokensUsed, sqlx::Error> {
        Ok(self
            .tokens_used_per_config(owner, today, month_start)
            .await?
            .into_iter()
            .find(|(id, _)| *id == config)
            .map(|(_, used)| used)
            .unwrap_or_default())
    }

    /// Tokens `owner` used through each config on `today` and since `month_start`.
    pub async fn tokens_used_per_config(
        &self,
        owner: OwnerId,
        today: Day,
        month_start: Day,
    ) -> Result<Vec<(ApiConfigId, TokensUsed)>, sqlx::Error> {
        let rows: Vec<(ApiConfigId, i64, i64)> = sqlx::query_as(
            "SELECT api_config_id, \
             CAST(COALESCE(SUM(CASE WHEN day = $2 THEN prompt_tokens + completion_tokens ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) \
             FROM token_usage WHERE user_id = $1 AND day >= $3 GROUP BY api_config_id",
        )
        .bind(owner)
        .bind(today.0)
        .bind(month_start.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, today, this_month)| (id, TokensUsed { today, this_month }))
            .collect())
    }

    /// `owner`'s usage rows from `first` to `last` (inclusive), by day, config and model.
    pub async fn usage_of(&self, owner: OwnerId, first: Day, last: Day) -> Result<Vec<UsageRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT '' AS account_id, u.api_config_id, COALESCE(c.name, '') AS config_name, \
             CAST(u.shared AS BIGINT) AS shared, u.model, u.day, u.prompt_tokens, u.completion_tokens, u.answers, \
             u.cost_picos, u.currency \
             FROM token_usage u LEFT JOIN api_configs c ON c.id = u.api_config_id \
             WHERE u.user_id = $1 AND u.day >= $2 AND u.day <= $3 ORDER BY u.day, u.api_config_id, u.model",
        )
        .bind(owner)
        .bind(first.0)
        .bind(last.0)
        .fetch_all(&self.pool)
        .await
    }

    /// Every account's usage from `first` to `last`, summed per account, config and model
    /// (only `account_id`'s when given).
    pub async fn usage_per_account(
        &self,
        first: Day,
        last: Day,
        account_id: Option<&str>,
    ) -> Result<Vec<UsageRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT COALESCE(o.account_id, '') AS account_id, u.api_config_id, \
             COALESCE(MAX(c.name), '') AS config_name, CAST(MAX(u.shared) AS BIGINT) AS shared, u.model, \
             CAST(MIN(u.day) AS BIGINT) AS day, \
             CAST(SUM(u.prompt_tokens) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(u.completion_tokens) AS BIGINT) AS completion_tokens, \
             CAST(SUM(u.answers) AS BIGINT) AS answers, CAST(SUM(u.cost_picos) AS BIGINT) AS cost_picos, \
             MAX(u.currency) AS currency \
             FROM token_usage u JOIN chat_owners o ON o.id = u.user_id \
             LEFT JOIN api_configs c ON c.id = u.api_config_id \
             WHERE u.day >= $1 AND u.day <= $2 AND ($3 = '' OR o.account_id = $3) \
             GROUP BY o.account_id, u.api_config_id, u.model \
             ORDER BY o.account_id, u.api_config_id, u.model",
        )
        .bind(first.0)
        .bind(last.0)
        .bind(account_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
    }

    /// Deletes an erased owner's usage.
    pub async fn delete_usage_of(&self, owner: OwnerId) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM token_usage WHERE user_id = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
