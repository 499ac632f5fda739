//! `prompts`: a user's saved prompts (the composer's `/` commands).

use super::{ChatStore, QuotaWrite};
use crate::ids::{OwnerId, PromptId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PromptRow {
    pub id: PromptId,
    pub user_id: OwnerId,
    pub title: String,
    pub command: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A prompt's fields as written.
#[derive(Debug, Clone, Copy)]
pub struct PromptFields<'a> {
    pub title: &'a str,
    pub command: &'a str,
    pub body: &'a str,
}

const PROMPT_COLUMNS: &str = "id, user_id, title, command, body, created_at, updated_at";

impl ChatStore {
    /// The user's prompts by command.
    pub async fn prompts(&self, user_id: OwnerId) -> Result<Vec<PromptRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROMPT_COLUMNS} FROM prompts WHERE user_id = $1 ORDER BY command"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn prompt(&self, user_id: OwnerId, id: PromptId) -> Result<Option<PromptRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROMPT_COLUMNS} FROM prompts WHERE id = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// False when the user has no such prompt. A unique violation: the command is taken.
    pub async fn update_prompt(
        &self,
        user_id: OwnerId,
        id: PromptId,
        fields: PromptFields<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE prompts SET title = $1, command = $2, body = $3, updated_at = $4 WHERE id = $5 AND user_id = $6",
        )
        .bind(fields.title)
        .bind(fields.command)
        .bind(fields.body)
        .bind(now)
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn delete_prompt(&self, user_id: OwnerId, id: PromptId) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("DELETE FROM prompts WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}

/// Creating a prompt under the owner's lock, so two requests cannot pass the limit together.
impl QuotaWrite {
    pub async fn count_prompts(&mut self) -> Result<i64, sqlx::Error> {
        let owner = self.owner();
        let (count,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM prompts WHERE user_id = $1")
            .bind(owner)
            .fetch_one(self.conn())
            .await?;
        Ok(count)
    }

    /// A unique violation: the command is taken.
    pub async fn insert_prompt(&mut self, fields: PromptFields<'_>, now: i64) -> Result<PromptId, sqlx::Error> {
        let owner = self.owner();
        let (id,): (PromptId,) = sqlx::query_as(
            "INSERT INTO prompts (user_id, title, command, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(owner)
        .bind(fields.title)
        .bind(fields.command)
        .bind(fields.body)
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }
}
