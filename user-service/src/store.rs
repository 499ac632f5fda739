//! Every SQL statement user-service runs, and nothing else. Queries use `$n` placeholders and
//! plain types so the same text runs on SQLite and PostgreSQL through sqlx's Any driver.

use parley_service_kit::database::{Database, flag};
use sqlx::AnyPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_normalized: Option<String>,
    pub email_verified: i64,
    pub password_hash: String,
    pub display_name: String,
    pub avatar_url: String,
    pub role: String,
    pub status: String,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const USER_COLUMNS: &str = "id, username, email, email_normalized, email_verified, password_hash, \
     display_name, avatar_url, role, status, last_login_at, created_at, updated_at";

pub struct NewUser<'a> {
    pub username: &'a str,
    pub username_normalized: &'a str,
    pub email: Option<&'a str>,
    pub email_normalized: Option<&'a str>,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub now: i64,
}

/// The profile fields as they will be after an update.
pub struct ProfileRow<'a> {
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub email_normalized: Option<&'a str>,
    pub email_verified: bool,
    pub avatar_url: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub family_id: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub id: i64,
    pub code_hash: String,
}

/// How many sends a key made in a window, and when the oldest of them was.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct SendWindow {
    pub count: i64,
    pub oldest: Option<i64>,
}

/// What `cleanup` removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub codes: u64,
    pub refresh_tokens: u64,
    pub sends: u64,
    pub login_failures: u64,
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
             password_hash, display_name, avatar_url, role, status, last_login_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, '', 'user', 'active', $8, $8, $8) RETURNING id",
        )
        .bind(user.username)
        .bind(user.username_normalized)
        .bind(user.email)
        .bind(user.email_normalized)
        .bind(flag(false))
        .bind(user.password_hash)
        .bind(user.display_name)
        .bind(user.now)
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

    pub async fn user_by_email(&self, normalized: &str) -> Result<Option<UserRow>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email_normalized = $1"
        )))
        .bind(normalized)
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

    /// Whether someone other than `except_user` has this email.
    pub async fn email_taken(&self, normalized: &str, except_user: i64) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE email_normalized = $1 AND id <> $2")
            .bind(normalized)
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

    /// Writes the profile and, when the email changed, drops the codes that verified the old one.
    pub async fn update_profile(&self, id: i64, profile: ProfileRow<'_>, email_changed: bool, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE users SET display_name = $1, email = $2, email_normalized = $3, email_verified = $4, \
             avatar_url = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(profile.display_name)
        .bind(profile.email)
        .bind(profile.email_normalized)
        .bind(flag(profile.email_verified))
        .bind(profile.avatar_url)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if email_changed {
            sqlx::query("DELETE FROM verification_codes WHERE user_id = $1 AND purpose = $2")
                .bind(id)
                .bind(crate::mailer::Purpose::EmailVerify.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
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

    pub async fn set_email_verified(&self, id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE users SET email_verified = $1, updated_at = $2 WHERE id = $3")
            .bind(flag(true))
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes the user with every token and code they had.
    pub async fn delete_user(&self, id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for statement in [
            "DELETE FROM verification_codes WHERE user_id = $1",
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    // ---- refresh tokens ----

    pub async fn insert_refresh_token(
        &self,
        user_id: i64,
        token_hash: &str,
        family_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (user_id, token_hash, family_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(family_id)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRow>> {
        sqlx::query_as(
            "SELECT id, user_id, family_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
    }

    /// Revokes one token; false when it was already revoked (someone else used it first).
    pub async fn revoke_token_if_active(&self, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64> {
        let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Revokes every token of the user except those of `keep_family`.
    pub async fn revoke_user_tokens(&self, user_id: i64, keep_family: Option<&str>, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 \
             WHERE user_id = $2 AND revoked_at IS NULL AND family_id <> $3",
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

    /// The user's live code for a purpose: unused, unexpired, attempts left.
    pub async fn active_code(
        &self,
        user_id: i64,
        purpose: &str,
        max_attempts: i64,
        now: i64,
    ) -> Result<Option<CodeRow>> {
        sqlx::query_as(
            "SELECT id, code_hash FROM verification_codes \
             WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 AND attempts < $4 \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(purpose)
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(&self.pool)
        .await
    }

    /// Takes one attempt from a code before it is compared, so concurrent guesses cannot
    /// exceed the limit; false when none is left.
    pub async fn take_attempt(&self, code_id: i64, max_attempts: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE verification_codes SET attempts = attempts + 1 \
             WHERE id = $1 AND attempts < $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(code_id)
        .bind(max_attempts)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
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

    pub async fn sends_since(&self, key_hash: &str, since: i64) -> Result<SendWindow> {
        sqlx::query_as(
            "SELECT COUNT(*) AS count, MIN(sent_at) AS oldest FROM verification_sends \
             WHERE key_hash = $1 AND sent_at > $2",
        )
        .bind(key_hash)
        .bind(since)
        .fetch_one(&self.pool)
        .await
    }

    pub async fn record_send(&self, key_hash: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO verification_sends (key_hash, sent_at) VALUES ($1, $2)")
            .bind(key_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When the key's sign-in lock ends (0 or a past time: not locked).
    pub async fn locked_until(&self, key_hash: &str) -> Result<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT locked_until FROM login_failures WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// Counts one more failure; answers the total.
    pub async fn record_login_failure(&self, key_hash: &str, now: i64) -> Result<i64> {
        let row: (i64,) = sqlx::query_as(
            "INSERT INTO login_failures (key_hash, failures, locked_until, updated_at) VALUES ($1, 1, 0, $2) \
             ON CONFLICT (key_hash) DO UPDATE SET failures = login_failures.failures + 1, updated_at = $2 \
             RETURNING failures",
        )
        .bind(key_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.0)
    }

    pub async fn lock_login(&self, key_hash: &str, until: i64) -> Result<()> {
        sqlx::query("UPDATE login_failures SET locked_until = $1 WHERE key_hash = $2")
            .bind(until)
            .bind(key_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, key_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key_hash = $1")
            .bind(key_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- cleanup ----

    /// Deletes what can no longer be used. Revoked refresh tokens stay while their family
    /// still has a live token, so reusing one keeps revoking the family.
    pub async fn cleanup(&self, now: i64, send_window_ms: i64, failure_memory_ms: i64) -> Result<Removed> {
        let codes = sqlx::query("DELETE FROM verification_codes WHERE expires_at <= $1 OR used_at IS NOT NULL")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let refresh_tokens = sqlx::query(
            "DELETE FROM refresh_tokens WHERE expires_at <= $1 OR (revoked_at IS NOT NULL AND family_id NOT IN \
             (SELECT family_id FROM refresh_tokens WHERE revoked_at IS NULL AND expires_at > $1))",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let sends = sqlx::query("DELETE FROM verification_sends WHERE sent_at <= $1")
            .bind(now - send_window_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let login_failures = sqlx::query("DELETE FROM login_failures WHERE locked_until <= $1 AND updated_at <= $2")
            .bind(now)
            .bind(now - failure_memory_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(Removed {
            codes,
            refresh_tokens,
            sends,
            login_failures,
        })
    }
}
