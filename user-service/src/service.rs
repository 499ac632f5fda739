//! The account rules: validation, sign-in, profiles, passwords, codes and their limits.
//! Handlers call this; it calls the store.
//!
//! Nothing an unauthenticated caller sees depends on whether an account exists: unknown
//! logins get the same answers, limits and (as near as the database allows) the same work.

mod codes;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use parley_service_kit::access_token;
use parley_service_kit::database::{self, now_millis};

pub use codes::{CODE_QUEUE_CAPACITY, CodeQueue};
pub use sessions::{REFRESH_REUSE_GRACE, REFRESH_TOKEN_TTL, SESSION_LIFETIME};

use crate::Error;
use crate::account_fields::{self, Login};
use crate::mailer::Purpose;
use crate::password::{HashingSlot, PasswordHasher};
use crate::store::{
    AccountStore, AttemptReserved, EmailColumns, NewUser, ProfileUpdate, RevocationRow, RevokedSubject, UserRow,
};
use crate::token_signer::{AccessToken, SigningKeys};
use crate::verification::{self, CODE_TTL, MAX_CODE_ATTEMPTS};

/// How long a revocation of access tokens is published: every token issued before it has
/// expired by then (lifetime, the verifiers' leeway, and a margin for clocks and a token
/// signed while its family was being revoked).
pub const REVOCATION_RETENTION: Duration = access_token::ACCESS_TOKEN_TTL
    .saturating_add(access_token::EXPIRY_LEEWAY)
    .saturating_add(Duration::from_secs(90));

/// Failed sign-ins a login gets before it is locked.
pub const FREE_LOGIN_FAILURES: i64 = 4;
/// The first lock; each further failure doubles it, up to [`MAX_LOGIN_LOCK`].
pub const FIRST_LOGIN_LOCK: Duration = Duration::from_secs(30);
pub const MAX_LOGIN_LOCK: Duration = Duration::from_secs(60 * 60);

/// A signed-in user with a fresh token pair.
pub struct SignedIn {
    pub user: UserRow,
    pub access: AccessToken,
    pub refresh_token: String,
    /// How long the refresh token lives (the cookie's Max-Age).
    pub refresh_expires_in: Duration,
}

/// An UpdateProfile request as it came: the fields and, optionally, the mask naming which to
/// change.
#[derive(Debug, Default)]
pub struct ProfileRequest {
    pub display_name: Option<String>,
    /// An empty string removes the address.
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    /// `None` or empty: change the fields that are set. Otherwise change exactly these, an
    /// unset one becoming empty.
    pub update_mask: Option<Vec<String>>,
}

/// Which session survives a password change.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeepSession<'a> {
    /// Named in the request (gRPC clients): it must be a live token of the account.
    pub refresh_token: Option<&'a str>,
    /// The browser's cookie: kept when it is live, ignored when not.
    pub cookie: Option<&'a str>,
}

pub struct AccountService {
    store: AccountStore,
    keys: Arc<SigningKeys>,
    passwords: PasswordHasher,
    codes: CodeQueue,
}

fn millis(duration: Duration) -> i64 {
    duration.as_millis() as i64
}

fn until(deadline_ms: i64, now: i64) -> Duration {
    Duration::from_millis((deadline_ms - now).max(1000) as u64)
}

/// How long a login stays locked after its `failures`-th failure in a row.
pub fn login_lock(failures: i64) -> Duration {
    if failures <= FREE_LOGIN_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_LOGIN_FAILURES - 1).min(16) as u32;
    FIRST_LOGIN_LOCK.saturating_mul(1 << doublings).min(MAX_LOGIN_LOCK)
}

/// The failure counter of a login as typed (normalized): the same for known and unknown
/// logins, and separate for a username and an email, so locking one says nothing about
/// whether the other names the same account.
fn login_key(login: &Login) -> String {
    verification::bucket_key("login", login.key())
}

/// The failure counter of a signed-in user's own password checks (ChangePassword,
/// DeleteAccount), so a stolen access token cannot be used to guess the password.
fn own_password_key(user_id: i64) -> String {
    verification::bucket_key("own-password", &user_id.to_string())
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
    pub fn new(store: AccountStore, keys: Arc<SigningKeys>, passwords: PasswordHasher, codes: CodeQueue) -> Self {
        Self {
            store,
            keys,
            passwords,
            codes,
        }
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The revocations still in force: those of the last [`REVOCATION_RETENTION`].
    pub async fn revocations(&self) -> Result<Vec<RevocationRow>, Error> {
        let since = now_millis() - millis(REVOCATION_RETENTION);
        Ok(self.store.revocations_since(since).await?)
    }

    // ---- sign-up, sign-in ----

    pub async fn register(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
        display_name: Option<&str>,
    ) -> Result<SignedIn, Error> {
        let username = account_fields::username("username", username)?;
        account_fields::password("password", password)?;
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(email) => Some(account_fields::email("email", email)?),
            None => None,
        };
        let display_name = match display_name {
            Some(name) => account_fields::display_name("display_name", name)?,
            None => String::new(),
        };
        let display_name = if display_name.is_empty() {
            username.display.clone()
        } else {
            display_name
        };
        let taken = || Error::AlreadyTaken {
            field: "username",
            reason: "is already taken".into(),
        };
        // A taken username has to be said (the person must pick another); an address in use
        // is accepted and stays unverified, so Register never tells who has an account.
        if self.store.username_taken(&username.normalized).await? {
            return Err(taken());
        }
        let password_hash = self.passwords.hash(password).await?;
        let inserted = self
            .store
            .insert_user(NewUser {
                account_id: &uuid::Uuid::new_v4().to_string(),
                username: &username.display,
                username_normalized: &username.normalized,
                email: email.as_ref().map(|e| e.display.as_str()),
                email_normalized: email.as_ref().map(|e| e.normalized.as_str()),
                password_hash: &password_hash,
                display_name: &display_name,
                now: now_millis(),
            })
            .await;
        let id = match inserted {
            Ok(id) => id,
            // Someone registered the same name between the check and the insert.
            Err(e) if database::is_unique_violation(&e) => return Err(taken()),
            Err(e) => return Err(e.into()),
        };
        let user = self.store.user_by_id(id).await?.ok_or(Error::UserNotFound)?;
        tracing::info!(user_id = id, "account registered");
        self.start_session(user).await
    }

    /// Reserves an attempt on a failure counter before a password is checked (see
    /// [`AccountStore::reserve_attempt`]); RESOURCE_EXHAUSTED while it is locked.
    async fn reserve_attempt(&self, key: &str) -> Result<(), Error> {
        let now = now_millis();
        match self
            .store
            .reserve_attempt(key, now, |failures| millis(login_lock(failures)))
            .await?
        {
            AttemptReserved::Granted { .. } => Ok(()),
            AttemptReserved::Locked { until: locked_until } => Err(Error::RateLimited {
                message: "too many failed sign-in attempts",
                retry_after: until(locked_until, now),
            }),
        }
    }

    pub async fn login(&self, login: &str, password: &str) -> Result<SignedIn, Error> {
        let login = Login::parse("login", login)?;
        check_password_given("password", password)?;
        // Taken first: a request refused because the server is busy has used no attempt.
        let slot = self.passwords.slot().await?;
        let user = find_account(&self.store, &login).await?;
        let key = login_key(&login);
        self.reserve_attempt(&key).await?;
        let matches = match &user {
            Some(user) => slot.verify(password, &user.password_hash).await?,
            None => {
                slot.verify_nothing(password).await?;
                false
            }
        };
        drop(slot);
        // A failure was counted when the attempt was reserved.
        let Some(user) = user.filter(|_| matches) else {
            return Err(Error::BadCredentials);
        };
        self.store.clear_login_failures(&key).await?;
        if !user.is_active() {
            return Err(Error::AccountDisabled);
        }
        self.start_session(user).await
    }

    // ---- the signed-in user ----

    pub async fn me(&self, user_id: i64) -> Result<UserRow, Error> {
        self.store.user_by_id(user_id).await?.ok_or(Error::UserNotFound)
    }

    /// Changes the fields the request names. Only those columns are written, so concurrent
    /// updates of other fields are kept; values equal to the stored ones change nothing (and
    /// leave `updated_at` alone), which keeps a retried update harmless.
    pub async fn update_profile(&self, user_id: i64, request: ProfileRequest) -> Result<UserRow, Error> {
        let ProfileRequest {
            display_name,
            email,
            avatar_url,
            update_mask,
        } = request;
        let (display_name, email, avatar_url) = match update_mask.filter(|paths| !paths.is_empty()) {
            None => (display_name, email, avatar_url),
            Some(paths) => {
                let mut named = (None, None, None);
                for path in &paths {
                    match path.as_str() {
                        "display_name" => named.0 = Some(display_name.clone().unwrap_or_default()),
                        "email" => named.1 = Some(email.clone().unwrap_or_default()),
                        "avatar_url" => named.2 = Some(avatar_url.clone().unwrap_or_default()),
                        other => {
                            return Err(Error::invalid(
                                "update_mask",
                                format!("unknown field {other:?}; use display_name, email or avatar_url"),
                            ));
                        }
                    }
                }
                named
            }
        };
        if display_name.is_none() && email.is_none() && avatar_url.is_none() {
            return Err(Error::invalid(
                "update_mask",
                "names no field to change; set display_name, email or avatar_url",
            ));
        }
        let display_name = display_name
            .as_deref()
            .map(|name| account_fields::display_name("display_name", name))
            .transpose()?;
        let email = match email.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(email) => Some(Some(account_fields::email("email", email)?)),
        };
        let avatar_url = avatar_url
            .as_deref()
            .map(|url| account_fields::avatar_url("avatar_url", url))
            .transpose()?;
        // An empty display name falls back to the username, as at sign-up; only then is the
        // account read before the update.
        let display_name = match display_name {
            Some(name) if name.is_empty() => Some(self.me(user_id).await?.username),
            other => other,
        };
        let update = ProfileUpdate {
            display_name: display_name.as_deref(),
            email: email.as_ref().map(|email| {
                email.as_ref().map(|e| EmailColumns {
                    display: &e.display,
                    normalized: &e.normalized,
                })
            }),
            avatar_url: avatar_url.as_deref(),
        };
        if !self.store.update_profile(user_id, &update, now_millis()).await? {
            return Err(Error::UserNotFound);
        }
        self.me(user_id).await
    }

    /// Checks the password of a signed-in user, counting failures like sign-ins do.
    async fn check_own_password(
        &self,
        user: &UserRow,
        field: &'static str,
        password: &str,
        slot: &HashingSlot,
    ) -> Result<(), Error> {
        let key = own_password_key(user.id);
        self.reserve_attempt(&key).await?;
        if !slot.verify(password, &user.password_hash).await? {
            return Err(Error::invalid(field, "is not the current password"));
        }
        self.store.clear_login_failures(&key).await?;
        Ok(())
    }

    /// Sets a new password and signs out every session but the one `keep` names.
    pub async fn change_password(
        &self,
        user_id: i64,
        old_password: &str,
        new_password: &str,
        keep: KeepSession<'_>,
    ) -> Result<(), Error> {
        check_password_given("old_password", old_password)?;
        account_fields::password("new_password", new_password)?;
        let keep_family =
            match keep.refresh_token.map(str::trim) {
                Some("") => return Err(Error::invalid("keep_refresh_token", "must not be empty when given")),
                Some(token) => Some(self.live_family(user_id, token).await?.ok_or_else(|| {
                    Error::invalid("keep_refresh_token", "is not a live refresh token of this account")
                })?),
                None => match keep.cookie {
                    Some(token) => self.live_family(user_id, token).await?,
                    None => None,
                },
            };
        let user = self.me(user_id).await?;
        let slot = self.passwords.slot().await?;
        self.check_own_password(&user, "old_password", old_password, &slot)
            .await?;
        let hash = slot.hash(new_password).await?;
        drop(slot);
        let now = now_millis();
        self.store.set_password(user_id, &hash, now).await?;
        let revoked = self
            .store
            .revoke_user_families(user_id, keep_family.as_deref(), now)
            .await?;
        tracing::info!(user_id, revoked, "password changed; other sessions signed out");
        Ok(())
    }

    pub async fn delete_account(&self, user_id: i64, password: &str) -> Result<(), Error> {
        check_password_given("password", password)?;
        let user = self.me(user_id).await?;
        let slot = self.passwords.slot().await?;
        self.check_own_password(&user, "password", password, &slot).await?;
        drop(slot);
        self.store.delete_user(user_id, now_millis()).await?;
        tracing::info!(user_id, "account deleted; its access tokens are revoked");
        Ok(())
    }

    // ---- verification codes ----

    /// Queues a code for the login (sent in the background, if the login names an active
    /// account); answers the same either way, including the rate limit, which counts sends
    /// per login whether or not it exists.
    pub async fn send_code(&self, login: &str, purpose: Purpose) -> Result<Duration, Error> {
        let login = Login::parse("login", login)?;
        self.codes.send(&self.store, login, purpose).await?;
        Ok(CODE_TTL)
    }

    /// The id of the account's live code for `purpose` if `code` is it. Takes an attempt
    /// with one statement whether or not there is an account or a code (user id 0 has
    /// none), so unknown logins cost about what known ones do; every wrong guess uses up one
    /// of the code's attempts.
    async fn matching_code(&self, user: Option<&UserRow>, purpose: Purpose, code: &str) -> Result<Option<i64>, Error> {
        let now = now_millis();
        let row = self
            .store
            .take_code_attempt(user.map_or(0, |u| u.id), purpose.as_str(), MAX_CODE_ATTEMPTS, now)
            .await?;
        let (Some(user), Some(row)) = (user, row) else {
            return Ok(None);
        };
        let expected = verification::code_hash(user.id, purpose, user.email_normalized.as_deref().unwrap_or(""), code);
        if verification::constant_time_eq(&expected, &row.code_hash) {
            self.store.return_attempt(row.id).await?;
            Ok(Some(row.id))
        } else {
            Ok(None)
        }
    }

    pub async fn verify_code(&self, login: &str, code: &str, purpose: Purpose) -> Result<bool, Error> {
        let login = Login::parse("login", login)?;
        let code = account_fields::code("code", code)?;
        let user = code_account(&self.store, &login).await?;
        let Some(code_id) = self.matching_code(user.as_ref(), purpose, &code).await? else {
            return Ok(false);
        };
        let (Some(user), Purpose::EmailVerify) = (user, purpose) else {
            return Ok(true);
        };
        let now = now_millis();
        // The code was made for this address (its hash says so); mark that address, and only
        // if it is still the account's.
        let Some(address) = user.email_normalized.as_deref() else {
            return Ok(false);
        };
        if !self.store.consume_code(code_id, now).await? {
            return Ok(false);
        }
        match self.store.set_email_verified(user.id, address, now).await {
            Ok(marked) => Ok(marked),
            // Whoever holds this code reads that mailbox, and may learn it has an account.
            Err(e) if database::is_unique_violation(&e) => Err(Error::AlreadyTaken {
                field: "email",
                reason: "is verified on another account".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a new password with a PASSWORD_RESET code, signs out every session and lifts the
    /// sign-in locks of the account's logins. A disabled account answers as an unknown one
    /// does and keeps its locks.
    pub async fn reset_password(&self, login: &str, code: &str, new_password: &str) -> Result<(), Error> {
        let login = Login::parse("login", login)?;
        let code = account_fields::code("code", code)?;
        account_fields::password("new_password", new_password)?;
        let wrong = || Error::invalid("code", "is wrong or has expired");
        let user = code_account(&self.store, &login).await?;
        let Some(code_id) = self.matching_code(user.as_ref(), Purpose::PasswordReset, &code).await? else {
            return Err(wrong());
        };
        let Some(user) = user else {
            return Err(wrong());
        };
        let hash = self.passwords.hash(new_password).await?;
        let now = now_millis();
        if !self.store.consume_code(code_id, now).await? {
            return Err(wrong());
        }
        self.store.set_password(user.id, &hash, now).await?;
        let revoked = self.store.revoke_user_families(user.id, None, now).await?;
        let mut keys = vec![
            own_password_key(user.id),
            login_key(&Login::Username(user.username_normalized.clone())),
        ];
        if let Some(email) = &user.email_normalized {
            keys.push(login_key(&Login::Email(email.clone())));
        }
        for key in keys {
            self.store.clear_login_failures(&key).await?;
        }
        tracing::info!(user_id = user.id, revoked, "password reset; every session signed out");
        Ok(())
    }
}

/// A stored revocation as verifiers apply it; `None` for a kind this version does not know.
pub fn revocation(row: &RevocationRow) -> Option<access_token::Revocation> {
    match row.subject_kind.as_str() {
        RevokedSubject::SESSION => Some(access_token::Revocation::Session {
            session_id: row.subject_id.clone(),
        }),
        RevokedSubject::ACCOUNT => Some(access_token::Revocation::Account {
            account_id: row.subject_id.clone(),
            revoked_at_ms: row.revoked_at,
        }),
        _ => None,
    }
}

/// What this service publishes, read directly for its own verifier (no call to itself).
pub struct LocalKeySource(pub Arc<AccountService>);

#[tonic::async_trait]
impl access_token::PublicKeySource for LocalKeySource {
    async fn fetch(&self) -> Result<access_token::PublishedKeys, tonic::Status> {
        let revocations = self.0.revocations().await?;
        Ok(access_token::PublishedKeys {
            keys: self.0.keys.accepted.clone(),
            revocations: revocations.iter().filter_map(revocation).collect(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_grows_then_caps() {
        assert_eq!(login_lock(1), Duration::ZERO);
        assert_eq!(login_lock(4), Duration::ZERO);
        assert_eq!(login_lock(5), Duration::from_secs(30));
        assert_eq!(login_lock(6), Duration::from_secs(60));
        assert_eq!(login_lock(7), Duration::from_secs(120));
        assert_eq!(login_lock(100), MAX_LOGIN_LOCK);
    }
}
