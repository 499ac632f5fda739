//! `token_revocations`: the sessions and accounts whose access tokens verifiers refuse.

use super::sessions::revoke_families;
use super::{AccountStore, Result};

/// What a `token_revocations` row names, as stored in `subject_kind`.
pub struct RevokedSubject;

impl RevokedSubject {
    /// A refresh-token family (the access token's `sid`).
    pub const SESSION: &'static str = "session";
    /// An account (the access token's `aid`).
    pub const ACCOUNT: &'static str = "account";
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevocationRow {
    /// [`RevokedSubject::SESSION`] or [`RevokedSubject::ACCOUNT`].
    pub subject_kind: String,
    pub subject_id: String,
    pub revoked_at: i64,
}

impl AccountStore {
    /// Revokes every access token of the account issued until `now` and ends all its
    /// families, in one transaction (for an account that is disabled; deletion does this
    /// itself).
    pub async fn revoke_account(&self, user_id: i64, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        revoke_families(&mut tx, user_id, None, now).await?;
        record_account_revocation(&mut tx, user_id, now).await?;
        tx.commit().await
    }

    /// The revocations made after `since` (Unix ms), oldest first.
    pub async fn revocations_since(&self, since: i64) -> Result<Vec<RevocationRow>> {
        sqlx::query_as(
            "SELECT subject_kind, subject_id, revoked_at FROM token_revocations WHERE revoked_at > $1 \
             ORDER BY revoked_at",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
    }
}

/// Lists the account in `token_revocations` as revoked at `now` (a later revocation of the
/// same account moves the time forward).
pub(super) async fn record_account_revocation(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO token_revocations (subject_kind, subject_id, revoked_at) \
         SELECT $1, account_id, $2 FROM users WHERE id = $3 \
         ON CONFLICT (subject_kind, subject_id) DO UPDATE SET revoked_at = excluded.revoked_at",
    )
    .bind(RevokedSubject::ACCOUNT)
    .bind(now)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
