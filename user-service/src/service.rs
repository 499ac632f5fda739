//! The account rules: validation, sign-in, profiles, passwords, codes and their limits.
//! Handlers call this; it calls the store.
//!
//! Nothing an unauthenticated caller sees depends on whether an account exists: unknown
//! logins get the same answers, limits and (as near as the database allows) the same work.
//!
//! Each concern lives in its own file: `sign_in` (sign-in and its failure counters),
//! `signup` (registration, the policy, invite codes), `accounts` (the signed-in user's
//! profile, password and deletion), `sessions` (refresh-token families), `tokens` (signing
//! keys and revocations for verifiers), `codes` (verification codes) and `admin`.

mod accounts;
mod admin;
mod codes;
mod sessions;
mod sign_in;
mod signup;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use parley_service_kit::database::now_millis;

pub use accounts::{KeepSession, ProfileRequest};
pub use admin::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, UserListing, UserPage};
pub use codes::{CODE_QUEUE_CAPACITY, CODES_PER_ADDRESS_PER_DAY, CodeQueue};
pub use sessions::{REFRESH_REUSE_GRACE, REFRESH_TOKEN_TTL, SESSION_LIFETIME};
pub use sign_in::{ClientAddress, LockSchedule, SIGN_IN_LIMITS, SignInLimits};
pub use signup::{InviteRequest, Registration, SignupPolicy};
pub use tokens::{LocalKeySource, REVOCATION_RETENTION, revocation};

use crate::Error;
use crate::account_fields::{self, Login};
use crate::password::PasswordHasher;
use crate::store::{AccountStore, Role, UserRow};
use crate::token_signer::{AccessToken, SigningKeys};

/// The operator's choices the account rules follow.
#[derive(Debug, Clone)]
pub struct AccountRules {
    pub sign_in_limits: SignInLimits,
    /// This username (as typed; compared normalized) is an administrator: made one at start-up
    /// if the account exists, or when it signs up. The first account is one in any case.
    pub admin_username: Option<String>,
    /// Who may sign up until an administrator sets otherwise.
    pub signup_policy: SignupPolicy,
    /// The operator's terms/privacy page: sign-up then needs consent, and records it.
    pub terms_url: Option<String>,
}

impl Default for AccountRules {
    fn default() -> Self {
        Self {
            sign_in_limits: SIGN_IN_LIMITS,
            admin_username: None,
            signup_policy: SignupPolicy::Open,
            terms_url: None,
        }
    }
}

/// A signed-in user with a fresh token pair.
pub struct SignedIn {
    pub user: UserRow,
    pub access: AccessToken,
    pub refresh_token: String,
    /// How long the refresh token lives (the cookie's Max-Age).
    pub refresh_expires_in: Duration,
}

pub struct AccountService {
    store: AccountStore,
    keys: Arc<SigningKeys>,
    passwords: PasswordHasher,
    codes: CodeQueue,
    limits: SignInLimits,
    /// The normalized username of `--admin-username`.
    admin_username: Option<String>,
    default_signup_policy: SignupPolicy,
    terms_url: Option<String>,
}

fn millis(duration: Duration) -> i64 {
    duration.as_millis() as i64
}

fn until(deadline_ms: i64, now: i64) -> Duration {
    Duration::from_millis((deadline_ms - now).max(1000) as u64)
}

/// The account a login names: by username, or by an email address it has verified.
async fn find_account(store: &AccountStore, login: &Login) -> Result<Option<UserRow>, Error> {
    Ok(match login {
        Login::Username(name) => store.user_by_username(name).await?,
        Login::Email(email) => store.user_by_verified_email(email).await?,
    })
}

/// The account a code request names, if it may use codes at all (disabled accounts are
/// treated as unknown).
async fn code_account(store: &AccountStore, login: &Login) -> Result<Option<UserRow>, Error> {
    Ok(find_account(store, login).await?.filter(UserRow::is_active))
}

impl AccountService {
    pub fn new(
        store: AccountStore,
        keys: Arc<SigningKeys>,
        passwords: PasswordHasher,
        codes: CodeQueue,
        rules: AccountRules,
    ) -> Result<Self, Error> {
        let admin_username = match rules.admin_username.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => Some(account_fields::username("admin_username", name)?.normalized),
        };
        let terms_url = match rules.terms_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => Some(account_fields::avatar_url("terms_url", url)?),
        };
        Ok(Self {
            store,
            keys,
            passwords,
            codes,
            limits: rules.sign_in_limits,
            admin_username,
            default_signup_policy: rules.signup_policy,
            terms_url,
        })
    }

    /// Makes the `--admin-username` account an administrator, if it exists yet (otherwise it
    /// becomes one when it signs up).
    pub async fn promote_named_admin(&self) -> Result<(), Error> {
        if let Some(name) = &self.admin_username
            && self.store.set_role_by_username(name, Role::Admin, now_millis()).await?
        {
            tracing::info!(username = %name, "administrator named by --admin-username");
        }
        Ok(())
    }
}

fn check_password_given(field: &'static str, password: &str) -> Result<(), Error> {
    if password.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if password.chars().count() > account_fields::PASSWORD_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {} characters", account_fields::PASSWORD_MAX),
        ));
    }
    Ok(())
}
