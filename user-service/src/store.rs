//! Every SQL statement user-service runs, and nothing else. Queries use `$n` placeholders and
//! plain types so the same text runs on SQLite and PostgreSQL through sqlx's Any driver.
//!
//! Each transaction starts with a write, so SQLite takes its write lock (waiting its busy
//! timeout) before reading anything, and PostgreSQL locks the row the rest depends on.

use parley_service_kit::database::{Database, flag};
use sqlx::AnyPool;

/// What an account may do, as stored in `users.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// A stored value this version does not know: a newer version wrote it, or the row was edited
/// by hand. Reading the row fails rather than guessing (an unknown role is not "user").
#[derive(Debug, thiserror::Error)]
#[error("unknown {column} {value:?} in the users table")]
pub struct UnknownStoredValue {
    column: &'static str,
    value: String,
}

impl TryFrom<String> for Role {
    type Error = UnknownStoredValue;
    fn try_from(value: String) -> std::result::Result<Self, Self::Error> {
        match value.as_str() {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            _ => Err(UnknownStoredValue { column: "role", value }),
        }
    }
}

/// Whether an account may sign in, as stored in `users.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

impl TryFrom<String> for AccountStatus {
    type Error = UnknownStoredValue;
    fn try_from(value: String) -> std::result::Result<Self, Self::Error> {
        match value.as_str() {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            _ => Err(UnknownStoredValue {
                column: "status",
                value,
            }),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub username_normalized: String,
    pub email: Option<String>,
    pub email_normalized: Option<String>,
    pub email_verified: i64,
    pub password_hash: String,
    pub display_name: String,
    pub avatar_url: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[sqlx(try_from = "String")]
    pub status: AccountStatus,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// A random UUID, never reused (the access token's `aid` claim).
    pub account_id: String,
}

impl UserRow {
    pub fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
    }
}

const USER_COLUMNS: &str = "id, username, username_normalized, email, email_normalized, email_verified, \
     password_hash, display_name, avatar_url, role, status, last_login_at, created_at, updated_at, account_id";

pub struct NewUser<'a> {
    /// A fresh random UUID.
    pub account_id: &'a str,
    pub username: &'a str,
    pub username_normalized: &'a str,
    pub email: Option<&'a str>,
    pub email_normalized: Option<&'a str>,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub now: i64,
}

/// The profile fields an update sets; `None` leaves a column alone.
#[derive(Debug, Default)]
pub struct ProfileUpdate<'a> {
    pub display_name: Option<&'a str>,
    /// `Some(None)` removes the address.
    pub email: Option<Option<EmailColumns<'a>>>,
    pub avatar_url: Option<&'a str>,
}

#[derive(Debug, Clone, Copy)]
pub struct EmailColumns<'a> {
    pub display: &'a str,
    pub normalized: &'a str,
}

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

/// A refresh token to store: only its hash.
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub id: i64,
    pub code_hash: String,
}

/// The two windows a send counter counts in (its `minute_…` and `day_…` columns), and how
/// many sends each allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    pub minute_ms: i64,
    pub per_minute: i64,
    pub day_ms: i64,
    pub per_day: i64,
}

/// A rate-limit window that is full, and when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefused {
    Minute { started_at: i64 },
    Day { started_at: i64 },
}

/// What a login-failure key allows right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptReserved {
    /// This is failure number `failures` if the password turns out wrong.
    Granted {
        failures: i64,
    },
    Locked {
        until: i64,
    },
}

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

#[derive(Clone)]
pub struct AccountStore {
    pool: AnyPool,
}

type Result<T> = std::result::Result<T, sqlx::Error>;

impl AccountStore {
    pub fn new(database: &Database) -> Self {
        Self {
            pool: database.pool.clone(),
        }
    }

    // ---- users ----

    pub async fn insert_user(&self, user: NewUser<'_>) -> Result<i64> {
        let row: (i64,) = sqlx::query_as(
            "INSERT INTO users (username, username_normalized, email, email_normalized, email_verified, \
             password_hash, display_name, avatar_url, role, status, last_login_at, created_at, updated_at, \
             account_id) VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $9, $10, $10, $10, $11) RETURNING id",
        )
        .bind(user.username)
        .bind(user.username_normalized)
        .bind(user.email)
        .bind(user.email_normalized)
        .bind(flag(false))
        .bind(user.password_hash)
        .bind(user.display_name)
        .bind(Role::User.as_str())
        .bind(AccountStatus::Active.as_str())
        .bind(user.now)
        .bind(user.account_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.0)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn user_by_username(&self, normalized: &str) -> Result<Option<UserRow>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_normalized = $1"
        )))
        .bind(normalized)
        .fetch_optional(&self.pool)
        .await
    }

    /// The account that has verified this address. Unverified claims name no account: anyone
    /// may claim any address, so only a verified one says who it belongs to.
    pub async fn user_by_verified_email(&self, normalized: &str) -> Result<Option<UserRow>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email_normalized = $1 AND email_verified = $2"
        )))
        .bind(normalized)
        .bind(flag(true))
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn username_taken(&self, normalized: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE username_normalized = $1")
            .bind(normalized)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Whether an account other than `except_user` has verified this address.
    pub async fn email_verified_elsewhere(&self, normalized: &str, except_user: i64) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM users WHERE email_normalized = $1 AND email_verified = $2 AND id <> $3")
                .bind(normalized)
                .bind(flag(true))
                .bind(except_user)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    pub async fn set_last_login(&self, id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets only the named columns, so concurrent updates of other fields are never undone.
    /// `updated_at` moves only when a value actually changes; a new address starts
    /// unverified and ends every unused code (they were sent to the old one). False when the
    /// user does not exist.
    pub async fn update_profile(&self, id: i64, update: &ProfileUpdate<'_>, now: i64) -> Result<bool> {
        let mut columns = Assignments::default();
        if let Some(name) = update.display_name {
            let p = columns.param(Some(name));
            columns.set(format!("display_name = {p}"), format!("display_name <> {p}"));
        }
        if let Some(url) = update.avatar_url {
            let p = columns.param(Some(url));
            columns.set(format!("avatar_url = {p}"), format!("avatar_url <> {p}"));
        }
        if let Some(email) = &update.email {
            let display = columns.param(email.map(|e| e.display));
            let normalized = columns.param(email.map(|e| e.normalized));
            // The right-hand sides see the row as it was: a changed address is unverified.
            columns.set(
                format!(
                    "email = {display}, email_normalized = {normalized}, email_verified = CASE WHEN \
                     COALESCE(email_normalized, '') = COALESCE({normalized}, '') THEN email_verified ELSE 0 END"
                ),
                format!("COALESCE(email, '') <> COALESCE({display}, '')"),
            );
        }
        if columns.sets.is_empty() {
            return Ok(self.user_by_id(id).await?.is_some());
        }
        let now_param = format!("${}", columns.values.len() + 2);
        let statement = format!(
            "UPDATE users SET {}, updated_at = CASE WHEN {} THEN {now_param} ELSE updated_at END WHERE id = $1",
            columns.sets.join(", "),
            columns.changed.join(" OR "),
        );

        let mut tx = self.pool.begin().await?;
        if let Some(email) = &update.email {
            sqlx::query(
                "DELETE FROM verification_codes WHERE user_id = $1 AND used_at IS NULL AND EXISTS \
                 (SELECT 1 FROM users WHERE id = $1 AND COALESCE(email_normalized, '') <> $2)",
            )
            .bind(id)
            .bind(email.map_or("", |e| e.normalized))
            .execute(&mut *tx)
            .await?;
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(id);
        for value in columns.values {
            query = query.bind(value);
        }
        let done = query.bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_password(&self, id: i64, password_hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks the address verified if it is still `email_normalized` (a concurrent profile
    /// update may have changed it since the code was checked). False when it changed. Fails
    /// with a unique violation when another account has verified the address.
    pub async fn set_email_verified(&self, id: i64, email_normalized: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET email_verified = $1, updated_at = $2 WHERE id = $3 AND email_normalized = $4",
        )
        .bind(flag(true))
        .bind(now)
        .bind(id)
        .bind(email_normalized)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes the user with every session and code they had, in one transaction that also
    /// revokes the account's access tokens and queues the deletion of its data elsewhere
    /// (the `account_deletions` outbox).
    pub async fn delete_user(&self, id: i64, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO account_deletions (account_id, user_id, deleted_at, attempts, next_attempt_at) \
             SELECT account_id, id, $2, 0, $2 FROM users WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        record_account_revocation(&mut tx, id, now).await?;
        for statement in [
            "DELETE FROM verification_codes WHERE user_id = $1",
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM refresh_token_families WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    // ---- sessions: refresh-token families ----

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

    // ---- the account-deletion outbox ----

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

    // ---- verification codes ----

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

    // ---- rate limits ----

    /// Counts one send for `key_hash` if both windows have room, in one statement (a window
    /// that has ended starts again at `now`); otherwise counts nothing and answers the full
    /// window.
    pub async fn count_send(
        &self,
        key_hash: &str,
        now: i64,
        limits: SendLimits,
    ) -> Result<std::result::Result<(), SendRefused>> {
        let counted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO send_counters (key_hash, minute_started_at, minute_sends, day_started_at, day_sends) \
             VALUES ($1, $2, 1, $2, 1) \
             ON CONFLICT (key_hash) DO UPDATE SET \
               minute_sends = CASE WHEN send_counters.minute_started_at <= $2 - $3 THEN 1 \
                              ELSE send_counters.minute_sends + 1 END, \
               minute_started_at = CASE WHEN send_counters.minute_started_at <= $2 - $3 THEN $2 \
                                   ELSE send_counters.minute_started_at END, \
               day_sends = CASE WHEN send_counters.day_started_at <= $2 - $4 THEN 1 \
                           ELSE send_counters.day_sends + 1 END, \
               day_started_at = CASE WHEN send_counters.day_started_at <= $2 - $4 THEN $2 \
                                ELSE send_counters.day_started_at END \
             WHERE (send_counters.minute_started_at <= $2 - $3 OR send_counters.minute_sends < $5) \
               AND (send_counters.day_started_at <= $2 - $4 OR send_counters.day_sends < $6) \
             RETURNING minute_sends",
        )
        .bind(key_hash)
        .bind(now)
        .bind(limits.minute_ms)
        .bind(limits.day_ms)
        .bind(limits.per_minute)
        .bind(limits.per_day)
        .fetch_optional(&self.pool)
        .await?;
        if counted.is_some() {
            return Ok(Ok(()));
        }
        let (minute_started_at, minute_sends, day_started_at): (i64, i64, i64) = sqlx::query_as(
            "SELECT minute_started_at, minute_sends, day_started_at FROM send_counters WHERE key_hash = $1",
        )
        .bind(key_hash)
        .fetch_one(&self.pool)
        .await?;
        Ok(Err(
            if minute_started_at > now - limits.minute_ms && minute_sends >= limits.per_minute {
                SendRefused::Minute {
                    started_at: minute_started_at,
                }
            } else {
                SendRefused::Day {
                    started_at: day_started_at,
                }
            },
        ))
    }

    /// Reserves a sign-in attempt for `key_hash` before the password is checked: counts it as
    /// a failure up front and, when that failure would lock the key, locks it already, so
    /// parallel guesses cannot all slip in before the first failure is counted. A correct
    /// password then clears the key. `lock_for(failures)` is the lock after that many.
    pub async fn reserve_attempt(
        &self,
        key_hash: &str,
        now: i64,
        lock_for: impl Fn(i64) -> i64,
    ) -> Result<AttemptReserved> {
        let mut tx = self.pool.begin().await?;
        let counted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO login_failures (key_hash, failures, locked_until, updated_at) VALUES ($1, 1, 0, $2) \
             ON CONFLICT (key_hash) DO UPDATE SET failures = login_failures.failures + 1, updated_at = $2 \
             WHERE login_failures.locked_until <= $2 \
             RETURNING failures",
        )
        .bind(key_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let reserved = match counted {
            Some((failures,)) => {
                let lock_ms = lock_for(failures);
                if lock_ms > 0 {
                    sqlx::query("UPDATE login_failures SET locked_until = $1 WHERE key_hash = $2")
                        .bind(now + lock_ms)
                        .bind(key_hash)
                        .execute(&mut *tx)
                        .await?;
                }
                AttemptReserved::Granted { failures }
            }
            None => {
                let (until,): (i64,) = sqlx::query_as("SELECT locked_until FROM login_failures WHERE key_hash = $1")
                    .bind(key_hash)
                    .fetch_one(&mut *tx)
                    .await?;
                AttemptReserved::Locked { until }
            }
        };
        tx.commit().await?;
        Ok(reserved)
    }

    pub async fn clear_login_failures(&self, key_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key_hash = $1")
            .bind(key_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- cleanup ----

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

/// The `SET` list of a partial update and the test for whether it changes anything.
#[derive(Default)]
struct Assignments<'a> {
    sets: Vec<String>,
    changed: Vec<String>,
    values: Vec<Option<&'a str>>,
}

impl<'a> Assignments<'a> {
    /// The placeholder for the next value; `$1` is taken by the row's id.
    fn param(&mut self, value: Option<&'a str>) -> String {
        self.values.push(value);
        format!("${}", self.values.len() + 1)
    }

    fn set(&mut self, assignment: String, differs: String) {
        self.sets.push(assignment);
        self.changed.push(differs);
    }
}

/// Ends every family of the user except `keep_family`, listing each in `token_revocations`.
async fn revoke_families(
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

/// Lists the account in `token_revocations` as revoked at `now` (a later revocation of the
/// same account moves the time forward).
async fn record_account_revocation(tx: &mut sqlx::Transaction<'_, sqlx::Any>, user_id: i64, now: i64) -> Result<()> {
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
