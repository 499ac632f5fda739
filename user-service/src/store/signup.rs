//! `account_settings` (the sign-up policy) and `invite_codes`.

use super::{AccountStore, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InviteRow {
    pub id: i64,
    pub max_uses: i64,
    pub uses: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub created_by: Option<i64>,
    pub created_at: i64,
}

const INVITE_COLUMNS: &str = "id, max_uses, uses, expires_at, revoked_at, created_by, created_at";

impl AccountStore {
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM account_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(value,)| value))
    }

    pub async fn set_setting(&self, name: &str, value: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO account_settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn insert_invite(
        &self,
        code_hash: &str,
        max_uses: i64,
        expires_at: i64,
        created_by: i64,
        now: i64,
    ) -> Result<InviteRow> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO invite_codes (code_hash, max_uses, uses, expires_at, revoked_at, created_by, created_at) \
             VALUES ($1, $2, 0, $3, NULL, $4, $5) RETURNING {INVITE_COLUMNS}"
        )))
        .bind(code_hash)
        .bind(max_uses)
        .bind(expires_at)
        .bind(created_by)
        .bind(now)
        .fetch_one(&self.pool)
        .await
    }

    pub async fn invites(&self) -> Result<Vec<InviteRow>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITE_COLUMNS} FROM invite_codes ORDER BY id DESC"
        )))
        .fetch_all(&self.pool)
        .await
    }

    /// Revokes the invite (a revoked one keeps its first revocation time); `None` when there is
    /// no such invite.
    pub async fn revoke_invite(&self, id: i64, now: i64) -> Result<Option<InviteRow>> {
        sqlx::query("UPDATE invite_codes SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITE_COLUMNS} FROM invite_codes WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }
}
