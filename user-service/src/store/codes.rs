//! `verification_codes`: one live code per user and purpose, and its attempts.

use super::{AccountStore, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub id: i64,
    pub code_hash: String,
}

impl AccountStore {
    /// Stores a new code for the user and purpose, replacing any earlier unused one.
    pub async fn replace_code(
        &self,
        user_id: i64,
        purpose: &str,
        code_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM verification_codes WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
            .bind(user_id)
            .bind(purpose)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO verification_codes (user_id, purpose, code_hash, expires_at, attempts, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(user_id)
        .bind(purpose)
        .bind(code_hash)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Takes one attempt from the user's live code for a purpose (unused, unexpired, attempts
    /// left) before it is compared, so concurrent guesses cannot exceed the limit; answers the
    /// code, or `None` when there is none. One statement whether or not a code exists, so
    /// the time it takes says little about that.
    pub async fn take_code_attempt(
        &self,
        user_id: i64,
        purpose: &str,
        max_attempts: i64,
        now: i64,
    ) -> Result<Option<CodeRow>> {
        sqlx::query_as(
            "UPDATE verification_codes SET attempts = attempts + 1 \
             WHERE id = (SELECT id FROM verification_codes \
                         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
                         AND attempts < $4 ORDER BY id DESC LIMIT 1) \
             AND used_at IS NULL AND attempts < $4 \
             RETURNING id, code_hash",
        )
        .bind(user_id)
        .bind(purpose)
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(&self.pool)
        .await
    }

    /// Gives back the attempt a correct guess took: only wrong guesses count.
    pub async fn return_attempt(&self, code_id: i64) -> Result<()> {
        sqlx::query("UPDATE verification_codes SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0")
            .bind(code_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a code used; false when it already was.
    pub async fn consume_code(&self, code_id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE verification_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(code_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
