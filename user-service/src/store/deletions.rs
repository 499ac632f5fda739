//! `account_deletions`: the outbox of deleted accounts other services still have to erase.

use super::{AccountStore, Result};

/// A deleted account whose data other services may still hold (an `account_deletions` row).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountDeletionRow {
    pub account_id: String,
    pub user_id: i64,
    pub deleted_at: i64,
    /// Deliveries tried so far.
    pub attempts: i64,
    pub next_attempt_at: i64,
}

impl AccountStore {
    /// Up to `limit` deletions due for delivery at `now`, oldest first.
    pub async fn due_account_deletions(&self, now: i64, limit: i64) -> Result<Vec<AccountDeletionRow>> {
        sqlx::query_as(
            "SELECT account_id, user_id, deleted_at, attempts, next_attempt_at FROM account_deletions \
             WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Takes a due deletion for delivery until `lease_until`, so another replica's worker
    /// leaves it alone meanwhile. False when someone else took it first.
    pub async fn claim_account_deletion(&self, row: &AccountDeletionRow, lease_until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE account_deletions SET next_attempt_at = $1, attempts = attempts + 1 \
             WHERE account_id = $2 AND next_attempt_at = $3 AND attempts = $4",
        )
        .bind(lease_until)
        .bind(&row.account_id)
        .bind(row.next_attempt_at)
        .bind(row.attempts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The deletion was delivered: nothing is left to do.
    pub async fn remove_account_deletion(&self, account_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM account_deletions WHERE account_id = $1")
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The delivery failed: try again at `next_attempt_at`.
    pub async fn postpone_account_deletion(&self, account_id: &str, next_attempt_at: i64, error: &str) -> Result<()> {
        sqlx::query("UPDATE account_deletions SET next_attempt_at = $1, last_error = $2 WHERE account_id = $3")
            .bind(next_attempt_at)
            .bind(error)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
