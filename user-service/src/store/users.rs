//! `users`: accounts, their profiles, passwords, roles and states.

use parley_service_kit::database::flag;

use super::revocations::record_account_revocation;
use super::{AccountStatus, AccountStore, Result, Role, UserRow};

const USER_COLUMNS: &str = "id, username, username_normalized, email, email_normalized, email_verified, \
     password_hash, display_name, avatar_url, role, status, last_login_at, terms_accepted_at, created_at, updated_at, account_id";

pub struct NewUser<'a> {
    /// A fresh random UUID.
    pub account_id: &'a str,
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

/// Which accounts a listing shows: those matching `search` (a lowercase text found in the
/// username, the address or the display name) and `status`, with ids above `after_id`.
#[derive(Debug, Clone, Copy)]
pub struct UserFilter<'a> {
    pub search: Option<&'a str>,
    pub status: Option<AccountStatus>,
    pub after_id: i64,
    pub limit: i64,
}

impl AccountStore {
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
             created_at, updated_at, account_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $9, $10, $11, $10, $10, $12) RETURNING id",
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
        .bind(user.account_id)
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

    /// Active accounts with one of these normalized usernames or account ids.
    pub async fn active_users_named(&self, usernames: &[String], account_ids: &[String]) -> Result<Vec<UserRow>> {
        if usernames.is_empty() && account_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = |first: usize, count: usize| {
            (first..first + count)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // `IN ()` is not SQL: an empty list becomes one that matches nothing.
        let names = if usernames.is_empty() {
            "NULL".to_owned()
        } else {
            placeholders(1, usernames.len())
        };
        let ids = if account_ids.is_empty() {
            "NULL".to_owned()
        } else {
            placeholders(usernames.len() + 1, account_ids.len())
        };
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE status = 'active' \
             AND (username_normalized IN ({names}) OR account_id IN ({ids}))"
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for value in usernames.iter().chain(account_ids) {
            query = query.bind(value.as_str());
        }
        query.fetch_all(&self.pool).await
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
