//! Every SQL statement user-service runs, and nothing else. Queries use `$n` placeholders and
//! plain types so the same text runs on SQLite and PostgreSQL through sqlx's Any driver.
//!
//! Each transaction starts with a write, so SQLite takes its write lock (waiting its busy
//! timeout) before reading anything, and PostgreSQL locks the row the rest depends on.
//!
//! This file holds the account rows and the store; the statements live by table: `users`,
//! `signup` (settings and invite codes), `sessions` (refresh-token families), `revocations`,
//! `deletions` (the account-deletion outbox), `codes` (verification codes), `rate_limits`
//! (send counters and login failures) and `cleanup`.

mod cleanup;
mod codes;
mod deletions;
mod rate_limits;
mod revocations;
mod sessions;
mod signup;
mod users;

pub use cleanup::{Removed, Retention};
pub use codes::CodeRow;
pub use deletions::AccountDeletionRow;
use parley_service_kit::database::Database;
pub use rate_limits::{AttemptReserved, SendLimits, SendRefused};
pub use revocations::{RevocationRow, RevokedSubject};
pub use sessions::{FamilyRow, NewRefreshToken, RefreshTokenRow};
pub use signup::InviteRow;
use sqlx::AnyPool;
pub use users::{EmailColumns, Inserted, NewUser, ProfileUpdate, UserFilter};

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
    /// A random UUID, never reused (the access token's `aid` claim).
    pub account_id: String,
}

impl UserRow {
    pub fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
    }
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
}
