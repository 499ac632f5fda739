//! `refresh_token_families` and `refresh_tokens`: sign-ins and their rotations.

use super::{AccountStore, Result, RevokedSubject};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub user_id: i64,
    pub family_id: String,
    pub generation: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FamilyRow {
    pub id: String,
    pub generation: i64,
    pub rotated_at: Option<i64>,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A refresh token to store: only its hash.
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub expires_at: i64,
}

impl AccountStore {
    /// Starts a family (a sign-in) with its first token.
    pub async fn insert_family(
        &self,
        user_id: i64,
        family_id: &str,
        family_expires_at: i64,
        token: NewRefreshToken<'_>,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO refresh_token_families (id, user_id, generation, rotated_at, expires_at, revoked_at, \
             created_at) VALUES ($1, $2, 0, NULL, $3, NULL, $4)",
        )
        .bind(family_id)
        .bind(user_id)
        .bind(family_expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_token(&mut tx, user_id, family_id, 0, &token, now).await?;
        tx.commit().await
    }

    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRow>> {
        sqlx::query_as("SELECT user_id, family_id, generation, expires_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn family(&self, family_id: &str) -> Result<Option<FamilyRow>> {
        sqlx::query_as(
            "SELECT id, generation, rotated_at, expires_at, revoked_at FROM refresh_token_families WHERE id = $1",
        )
        .bind(family_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Rotates a live family from `generation` to the next, with `token` as its one live
    /// token. False when the family is no longer at `generation` (someone rotated first) or
    /// is dead; then nothing was written.
    pub async fn rotate(
        &self,
        user_id: i64,
        family_id: &str,
        generation: i64,
        token: NewRefreshToken<'_>,
        now: i64,
    ) -> Result<bool> {
        let claim = "UPDATE refresh_token_families SET generation = generation + 1, rotated_at = $1 \
                     WHERE id = $2 AND generation = $3 AND revoked_at IS NULL AND expires_at > $1";
        self.claim_family_then_insert(claim, user_id, family_id, generation, generation + 1, token, now)
            .await
    }

    /// Adds another live token to a family still at `generation` (the client lost the answer
    /// that carried the first one). False when the family moved on or died meanwhile.
    pub async fn reissue(
        &self,
        user_id: i64,
        family_id: &str,
        generation: i64,
        token: NewRefreshToken<'_>,
        now: i64,
    ) -> Result<bool> {
        // Writes nothing new, but locks the family against a rotation or revocation meanwhile.
        let claim = "UPDATE refresh_token_families SET generation = generation \
                     WHERE id = $2 AND generation = $3 AND revoked_at IS NULL AND expires_at > $1";
        self.claim_family_then_insert(claim, user_id, family_id, generation, generation, token, now)
            .await
    }

    /// Runs `claim` (binding `$1` now, `$2` the family, `$3` the generation expected) and, if
    /// it updated the family, inserts `token` at `token_generation`, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn claim_family_then_insert(
        &self,
        claim: &'static str,
        user_id: i64,
        family_id: &str,
        generation: i64,
        token_generation: i64,
        token: NewRefreshToken<'_>,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(claim)
            .bind(now)
            .bind(family_id)
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_token(&mut tx, user_id, family_id, token_generation, &token, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a family: none of its tokens works any more, refresh or access (the family is
    /// listed in `token_revocations`). False when it already was revoked.
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE refresh_token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(family_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO token_revocations (subject_kind, subject_id, revoked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (subject_kind, subject_id) DO NOTHING",
        )
        .bind(RevokedSubject::SESSION)
        .bind(family_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends every family of the user except `keep_family`, listing each in
    /// `token_revocations`.
    pub async fn revoke_user_families(&self, user_id: i64, keep_family: Option<&str>, now: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let revoked = revoke_families(&mut tx, user_id, keep_family, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }
}

/// Ends every family of the user except `keep_family`, listing each in `token_revocations`.
pub(super) async fn revoke_families(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    keep_family: Option<&str>,
    now: i64,
) -> Result<u64> {
    // The UPDATE first, so SQLite takes its write lock before the families are read.
    let done = sqlx::query(
        "UPDATE refresh_token_families SET revoked_at = $1 \
         WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
    )
    .bind(now)
    .bind(user_id)
    .bind(keep_family.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO token_revocations (subject_kind, subject_id, revoked_at) \
         SELECT $1, id, $2 FROM refresh_token_families WHERE user_id = $3 AND revoked_at = $2 \
         ON CONFLICT (subject_kind, subject_id) DO NOTHING",
    )
    .bind(RevokedSubject::SESSION)
    .bind(now)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    family_id: &str,
    generation: i64,
    token: &NewRefreshToken<'_>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (user_id, token_hash, family_id, generation, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user_id)
    .bind(token.token_hash)
    .bind(family_id)
    .bind(generation)
    .bind(token.expires_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
