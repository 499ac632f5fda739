//! Deleting what can no longer be used.

use super::{AccountStore, Result};

/// What `cleanup` removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub codes: u64,
    pub refresh_tokens: u64,
    pub refresh_token_families: u64,
    pub send_counters: u64,
    pub login_failures: u64,
    pub token_revocations: u64,
}

/// How long cleanup keeps what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// The longest send window.
    pub send_window_ms: i64,
    /// Failed sign-ins are forgotten this long after the last one (when not locked).
    pub failure_memory_ms: i64,
    /// A revocation is kept this long: until every access token it is about has expired.
    pub revocation_ms: i64,
}

impl AccountStore {
    /// Deletes what can no longer be used: expired and used codes; every token of a family
    /// that is revoked or past its lifetime, and then the family; expired tokens (a retired
    /// token is kept until then, so presenting it still counts as reuse); families left with
    /// no token; counters whose windows have passed.
    pub async fn cleanup(&self, now: i64, retention: Retention) -> Result<Removed> {
        let codes = sqlx::query("DELETE FROM verification_codes WHERE expires_at <= $1 OR used_at IS NOT NULL")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let mut tx = self.pool.begin().await?;
        let dead_family_tokens = sqlx::query(
            "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_token_families \
             WHERE revoked_at IS NOT NULL OR expires_at <= $1)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let expired_tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let refresh_token_families = sqlx::query(
            "DELETE FROM refresh_token_families WHERE revoked_at IS NOT NULL OR expires_at <= $1 \
             OR NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE refresh_tokens.family_id = refresh_token_families.id)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        let send_counters = sqlx::query("DELETE FROM send_counters WHERE day_started_at <= $1")
            .bind(now - retention.send_window_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let login_failures = sqlx::query("DELETE FROM login_failures WHERE locked_until <= $1 AND updated_at <= $2")
            .bind(now)
            .bind(now - retention.failure_memory_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let token_revocations = sqlx::query("DELETE FROM token_revocations WHERE revoked_at <= $1")
            .bind(now - retention.revocation_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(Removed {
            codes,
            refresh_tokens: dead_family_tokens + expired_tokens,
            refresh_token_families,
            send_counters,
            login_failures,
            token_revocations,
        })
    }
}
