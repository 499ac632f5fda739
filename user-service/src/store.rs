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
    /// Signed up while sign-ups need an administrator's approval.
    Pending,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Pending => "pending",
        }
    }
}

impl TryFrom<String> for AccountStatus {
    type Error = UnknownStoredValue;
    fn try_from(value: String) -> std::result::Result<Self, Self::Error> {
        match value.as_str() {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            "pending" => Ok(Self::Pending),
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
    pub terms_accepted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    pub fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
    }
}

const USER_COLUMNS: &str = "id, username, username_normalized, email, email_normalized, email_verified, \
     password_hash, display_name, avatar_url, role, status, last_login_at, terms_accepted_at, created_at, updated_at";

pub struct NewUser<'a> {
    pub role: Role,
    pub status: AccountStatus,
    pub username: &'a str,
    pub username_normalized: &'a str,
    pub email: Option<&'a str>,
    pub email_normalized: Option<&'a str>,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub terms_accepted_at: Option<i64>,
    /// The hash of the invite code the sign-up uses up, if it needs one.
    pub invite_code_hash: Option<&'a str>,
    pub now: i64,
}

/// What inserting an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    User(i64),
    /// The invite code is wrong, expired, used up or revoked; nothing was written.
    InviteUnusable,
}

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

/// Which accounts a listing shows: those matching `search` (a lowercase text found in the
/// username, the address or the display name) and `status`, with ids above `after_id`.
#[derive(Debug, Clone, Copy)]
pub struct UserFilter<'a> {
    pub search: Option<&'a str>,
    pub status: Option<AccountStatus>,
    pub after_id: i64,
    pub limit: i64,
}

/// What `cleanup` removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub codes: u64,
    pub refresh_tokens: u64,
    pub refresh_token_families: u64,
    pub send_counters: u64,
    pub login_failures: u64,
}

/// How long cleanup keeps what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// The longest send window.
    pub send_window_ms: i64,
    /// Failed sign-ins are forgotten this long after the last one (when not locked).
    pub failure_memory_ms: i64,
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

    /// Inserts the account, using up one use of its invite code in the same transaction (so a
    /// failed insert, a taken username say, uses none).
    pub async fn insert_user(&self, user: NewUser<'_>) -> Result<Inserted> {
        let mut tx = self.pool.begin().await?;
        if let Some(hash) = user.invite_code_hash {
            let used = sqlx::query(
                "UPDATE invite_codes SET uses = uses + 1 WHERE code_hash = $1 AND revoked_at IS NULL \
                 AND expires_at > $2 AND uses < max_uses",
            )
            .bind(hash)
            .bind(user.now)
            .execute(&mut *tx)
            .await?;
            if used.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(Inserted::InviteUnusable);
            }
        }
        let row: (i64,) = sqlx::query_as(
            "INSERT INTO users (username, username_normalized, email, email_normalized, email_verified, \
             password_hash, display_name, avatar_url, role, status, last_login_at, terms_accepted_at, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $9, $10, $11, $10, $10) RETURNING id",
        )
        .bind(user.username)
        .bind(user.username_normalized)
        .bind(user.email)
        .bind(user.email_normalized)
        .bind(flag(false))
        .bind(user.password_hash)
        .bind(user.display_name)
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(user.now)
        .bind(user.terms_accepted_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Inserted::User(row.0))
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

    /// Whether any account exists at all.
    pub async fn any_user(&self) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM users LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Gives the account `role`; false when there is no such username.
    pub async fn set_role_by_username(&self, username_normalized: &str, role: Role, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET role = $1, updated_at = CASE WHEN role <> $1 THEN $2 ELSE updated_at END \
             WHERE username_normalized = $3",
        )
        .bind(role.as_str())
        .bind(now)
        .bind(username_normalized)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves the account from one of `from` to `to`; false when it does not exist or its status
    /// is not one of `from` (then nothing changed).
    pub async fn set_status(&self, id: i64, from: &[AccountStatus], to: AccountStatus, now: i64) -> Result<bool> {
        let mut placeholders = Vec::new();
        for i in 0..from.len() {
            placeholders.push(format!("${}", i + 4));
        }
        let statement = format!(
            "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(to.as_str())
            .bind(now)
            .bind(id);
        for status in from {
            query = query.bind(status.as_str());
        }
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Accounts in id order, as [`UserFilter`] says.
    pub async fn list_users(&self, filter: UserFilter<'_>) -> Result<Vec<UserRow>> {
        // LIKE with `\` as the escape, so a search for `%` or `_` finds those characters.
        let pattern = filter.search.map(|text| {
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            format!("%{escaped}%")
        });
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id > $1 \
             AND ($2 = '' OR status = $2) \
             AND ($3 = '' OR username_normalized LIKE $3 ESCAPE '\\' \
                  OR LOWER(COALESCE(email, '')) LIKE $3 ESCAPE '\\' \
                  OR LOWER(display_name) LIKE $3 ESCAPE '\\') \
             ORDER BY id LIMIT $4"
        )))
        .bind(filter.after_id)
        .bind(filter.status.map_or("", AccountStatus::as_str))
        .bind(pattern.unwrap_or_default())
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await
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

    /// Removes the user with every session and code they had.
    pub async fn delete_user(&self, id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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

    // ---- settings and invite codes ----

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

    /// Ends a family: none of its tokens works any more. False when it already was revoked.
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE refresh_token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(family_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every family of the user except `keep_family`.
    pub async fn revoke_user_families(&self, user_id: i64, keep_family: Option<&str>, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 \
             WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep_family.unwrap_or(""))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
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

    /// Until when the counter is locked (a time in the past when it is not), if it exists.
    pub async fn locked_until(&self, key_hash: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT locked_until FROM login_failures WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(until,)| until))
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
        Ok(Removed {
            codes,
            refresh_tokens: dead_family_tokens + expired_tokens,
            refresh_token_families,
            send_counters,
            login_failures,
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
