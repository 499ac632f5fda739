//! The account rules: validation, sign-in, token rotation, codes and their limits. Handlers
//! call this; it calls the store.

use std::sync::Arc;
use std::time::Duration;

use parley_service_kit::database::{self, now_millis};

use crate::Error;
use crate::account_fields::{self, Login};
use crate::mailer::{Mailer, Purpose, VerificationMail};
use crate::password::PasswordHasher;
use crate::store::{AccountStore, NewUser, ProfileRow, UserRow};
use crate::token_signer::{AccessToken, TokenSigner};
use crate::verification::{self, CODE_TTL, MAX_CODE_ATTEMPTS, SENDS_PER_DAY, SENDS_PER_MINUTE};

/// How long a refresh token lives.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Failed sign-ins an account gets before it is locked.
pub const FREE_LOGIN_FAILURES: i64 = 4;
/// The first lock; each further failure doubles it, up to [`MAX_LOGIN_LOCK`].
pub const FIRST_LOGIN_LOCK: Duration = Duration::from_secs(30);
pub const MAX_LOGIN_LOCK: Duration = Duration::from_secs(60 * 60);

const MINUTE_MS: i64 = 60 * 1000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// A signed-in user with a fresh token pair.
pub struct SignedIn {
    pub user: UserRow,
    pub access: AccessToken,
    pub refresh_token: String,
}

/// Profile fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub display_name: Option<String>,
    /// `Some("")` removes the email.
    pub email: Option<String>,
    pub avatar_url: Option<String>,
}

pub struct AccountService {
    store: AccountStore,
    signer: Arc<TokenSigner>,
    passwords: PasswordHasher,
    mailer: Arc<dyn Mailer>,
}

fn millis(duration: Duration) -> i64 {
    duration.as_millis() as i64
}

fn until(deadline_ms: i64, now: i64) -> Duration {
    Duration::from_millis((deadline_ms - now).max(1000) as u64)
}

/// How long an account stays locked after its `failures`-th failure in a row.
pub fn login_lock(failures: i64) -> Duration {
    if failures <= FREE_LOGIN_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_LOGIN_FAILURES - 1).min(16) as u32;
    FIRST_LOGIN_LOCK.saturating_mul(1 << doublings).min(MAX_LOGIN_LOCK)
}

impl AccountService {
    pub fn new(
        store: AccountStore,
        signer: Arc<TokenSigner>,
        passwords: PasswordHasher,
        mailer: Arc<dyn Mailer>,
    ) -> Self {
        Self {
            store,
            signer,
            passwords,
            mailer,
        }
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    // ---- sign-up, sign-in, tokens ----

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
        self.check_free(&username.normalized, email.as_ref().map(|e| e.normalized.as_str()))
            .await?;
        let password_hash = self.passwords.hash(password).await?;
        let now = now_millis();
        let inserted = self
            .store
            .insert_user(NewUser {
                username: &username.display,
                username_normalized: &username.normalized,
                email: email.as_ref().map(|e| e.display.as_str()),
                email_normalized: email.as_ref().map(|e| e.normalized.as_str()),
                password_hash: &password_hash,
                display_name: &display_name,
                now,
            })
            .await;
        let id = match inserted {
            Ok(id) => id,
            Err(e) if database::is_unique_violation(&e) => {
                // Someone registered the same name between the check and the insert.
                self.check_free(&username.normalized, email.as_ref().map(|e| e.normalized.as_str()))
                    .await?;
                return Err(Error::AlreadyTaken {
                    field: "username",
                    reason: "is already taken".into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let user = self.store.user_by_id(id).await?.ok_or(Error::UserNotFound)?;
        tracing::info!(user_id = id, "account registered");
        self.sign_in(user, None).await
    }

    async fn check_free(&self, username: &str, email: Option<&str>) -> Result<(), Error> {
        if self.store.username_taken(username).await? {
            return Err(Error::AlreadyTaken {
                field: "username",
                reason: "is already taken".into(),
            });
        }
        if let Some(email) = email
            && self.store.email_taken(email, 0).await?
        {
            return Err(Error::AlreadyTaken {
                field: "email",
                reason: "is already in use".into(),
            });
        }
        Ok(())
    }

    async fn find(&self, login: &Login) -> Result<Option<UserRow>, Error> {
        Ok(match login {
            Login::Username(name) => self.store.user_by_username(name).await?,
            Login::Email(email) => self.store.user_by_email(email).await?,
        })
    }

    /// The failure counter of an account, or of a login with no account, so both behave alike.
    fn failure_key(user: Option<&UserRow>, login: &Login) -> String {
        match user {
            Some(user) => verification::bucket_key("login-user", &user.id.to_string()),
            None => verification::bucket_key("login-unknown", login.key()),
        }
    }

    async fn check_not_locked(&self, key: &str, now: i64) -> Result<(), Error> {
        let locked_until = self.store.locked_until(key).await?;
        if locked_until > now {
            return Err(Error::RateLimited {
                message: "too many failed sign-in attempts",
                retry_after: until(locked_until, now),
            });
        }
        Ok(())
    }

    async fn count_failure(&self, key: &str, now: i64) -> Result<(), Error> {
        let failures = self.store.record_login_failure(key, now).await?;
        let lock = login_lock(failures);
        if !lock.is_zero() {
            self.store.lock_login(key, now + millis(lock)).await?;
        }
        Ok(())
    }

    pub async fn login(&self, login: &str, password: &str) -> Result<SignedIn, Error> {
        let login = Login::parse("login", login)?;
        check_password_given("password", password)?;
        let user = self.find(&login).await?;
        let key = Self::failure_key(user.as_ref(), &login);
        let now = now_millis();
        self.check_not_locked(&key, now).await?;
        let matches = match &user {
            Some(user) => self.passwords.verify(password, &user.password_hash).await?,
            None => {
                self.passwords.verify_nothing(password).await?;
                false
            }
        };
        let Some(user) = user.filter(|_| matches) else {
            self.count_failure(&key, now).await?;
            return Err(Error::BadCredentials);
        };
        self.store.clear_login_failures(&key).await?;
        if user.status != "active" {
            return Err(Error::AccountDisabled);
        }
        self.sign_in(user, None).await
    }

    /// Issues a token pair; `family` continues a rotation chain, `None` starts a new one.
    async fn sign_in(&self, mut user: UserRow, family: Option<String>) -> Result<SignedIn, Error> {
        let now = now_millis();
        if family.is_none() {
            self.store.set_last_login(user.id, now).await?;
            user.last_login_at = Some(now);
        }
        let family = family.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let refresh_token = verification::new_refresh_token()?;
        self.store
            .insert_refresh_token(
                user.id,
                &verification::token_hash(&refresh_token),
                &family,
                now + millis(REFRESH_TOKEN_TTL),
                now,
            )
            .await?;
        let access = self.signer.sign(user.id, &user.role, now / 1000)?;
        Ok(SignedIn {
            user,
            access,
            refresh_token,
        })
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, Error> {
        let now = now_millis();
        let Some(token) = self
            .store
            .refresh_token(&verification::token_hash(refresh_token))
            .await?
        else {
            return Err(Error::BadRefreshToken);
        };
        if token.revoked_at.is_some() {
            return Err(self.reuse_detected(&token.family_id, token.user_id, now).await);
        }
        if token.expires_at <= now {
            return Err(Error::BadRefreshToken);
        }
        if !self.store.revoke_token_if_active(token.id, now).await? {
            // Another request rotated it a moment ago: the same token was used twice.
            return Err(self.reuse_detected(&token.family_id, token.user_id, now).await);
        }
        let user = match self.store.user_by_id(token.user_id).await? {
            Some(user) if user.status == "active" => user,
            _ => {
                self.store.revoke_family(&token.family_id, now).await?;
                return Err(Error::BadRefreshToken);
            }
        };
        self.sign_in(user, Some(token.family_id)).await
    }

    async fn reuse_detected(&self, family_id: &str, user_id: i64, now: i64) -> Error {
        match self.store.revoke_family(family_id, now).await {
            Ok(revoked) => {
                tracing::warn!(
                    user_id,
                    revoked,
                    "a rotated refresh token was reused; revoked its whole family"
                );
                Error::BadRefreshToken
            }
            Err(e) => e.into(),
        }
    }

    /// Revokes the token's whole family (that device's session). Unknown tokens are fine.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), Error> {
        if let Some(token) = self
            .store
            .refresh_token(&verification::token_hash(refresh_token))
            .await?
        {
            self.store.revoke_family(&token.family_id, now_millis()).await?;
        }
        Ok(())
    }

    /// The family of a refresh token, if it belongs to `user_id` and is live.
    pub async fn live_family(&self, user_id: i64, refresh_token: &str) -> Result<Option<String>, Error> {
        let token = self
            .store
            .refresh_token(&verification::token_hash(refresh_token))
            .await?;
        Ok(token
            .filter(|t| t.user_id == user_id && t.revoked_at.is_none() && t.expires_at > now_millis())
            .map(|t| t.family_id))
    }

    // ---- the signed-in user ----

    pub async fn me(&self, user_id: i64) -> Result<UserRow, Error> {
        self.store.user_by_id(user_id).await?.ok_or(Error::UserNotFound)
    }

    pub async fn update_profile(&self, user_id: i64, change: ProfileChange) -> Result<UserRow, Error> {
        let display_name = change
            .display_name
            .as_deref()
            .map(|name| account_fields::display_name("display_name", name))
            .transpose()?;
        let email = match change.email.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(email) => Some(Some(account_fields::email("email", email)?)),
        };
        let avatar_url = change
            .avatar_url
            .as_deref()
            .map(|url| account_fields::avatar_url("avatar_url", url))
            .transpose()?;
        let user = self.me(user_id).await?;
        if let Some(Some(email)) = &email
            && self.store.email_taken(&email.normalized, user_id).await?
        {
            return Err(Error::AlreadyTaken {
                field: "email",
                reason: "is already in use".into(),
            });
        }
        let (new_email, new_email_normalized) = match &email {
            None => (user.email.clone(), user.email_normalized.clone()),
            Some(None) => (None, None),
            Some(Some(e)) => (Some(e.display.clone()), Some(e.normalized.clone())),
        };
        let email_changed = new_email_normalized != user.email_normalized;
        let email_verified = user.email_verified != 0 && !email_changed;
        let written = self
            .store
            .update_profile(
                user_id,
                ProfileRow {
                    display_name: display_name.as_deref().unwrap_or(&user.display_name),
                    email: new_email.as_deref(),
                    email_normalized: new_email_normalized.as_deref(),
                    email_verified,
                    avatar_url: avatar_url.as_deref().unwrap_or(&user.avatar_url),
                },
                email_changed,
                now_millis(),
            )
            .await;
        match written {
            Ok(()) => self.me(user_id).await,
            Err(e) if database::is_unique_violation(&e) => Err(Error::AlreadyTaken {
                field: "email",
                reason: "is already in use".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks the password of a signed-in user, counting failures like sign-ins do, so a stolen
    /// access token cannot be used to guess the password.
    async fn check_own_password(&self, user: &UserRow, field: &'static str, password: &str) -> Result<(), Error> {
        check_password_given(field, password)?;
        let key = verification::bucket_key("login-user", &user.id.to_string());
        let now = now_millis();
        self.check_not_locked(&key, now).await?;
        if !self.passwords.verify(password, &user.password_hash).await? {
            self.count_failure(&key, now).await?;
            return Err(Error::invalid(field, "is not the current password"));
        }
        self.store.clear_login_failures(&key).await?;
        Ok(())
    }

    /// Sets a new password and revokes every refresh token but those of `keep_family` (the
    /// caller's own session, when it is known).
    pub async fn change_password(
        &self,
        user_id: i64,
        old_password: &str,
        new_password: &str,
        keep_family: Option<&str>,
    ) -> Result<(), Error> {
        account_fields::password("new_password", new_password)?;
        let user = self.me(user_id).await?;
        self.check_own_password(&user, "old_password", old_password).await?;
        let hash = self.passwords.hash(new_password).await?;
        let now = now_millis();
        self.store.set_password(user_id, &hash, now).await?;
        let revoked = self.store.revoke_user_tokens(user_id, keep_family, now).await?;
        tracing::info!(user_id, revoked, "password changed; other sessions signed out");
        Ok(())
    }

    pub async fn delete_account(&self, user_id: i64, password: &str) -> Result<(), Error> {
        let user = self.me(user_id).await?;
        self.check_own_password(&user, "password", password).await?;
        self.store.delete_user(user_id).await?;
        tracing::info!(user_id, "account deleted");
        Ok(())
    }

    // ---- verification codes ----

    /// Sends a code when the login names an account; answers the same either way, including
    /// the rate limit, which counts sends per login whether or not it exists.
    pub async fn send_code(&self, login: &str, purpose: Purpose) -> Result<Duration, Error> {
        let login = Login::parse("login", login)?;
        let key = verification::bucket_key(&format!("send-{}", purpose.as_str()), login.key());
        let now = now_millis();
        let minute = self.store.sends_since(&key, now - MINUTE_MS).await?;
        if minute.count >= SENDS_PER_MINUTE {
            return Err(Error::RateLimited {
                message: "a code was sent moments ago",
                retry_after: until(minute.oldest.unwrap_or(now) + MINUTE_MS, now),
            });
        }
        let day = self.store.sends_since(&key, now - DAY_MS).await?;
        if day.count >= SENDS_PER_DAY {
            return Err(Error::RateLimited {
                message: "too many codes sent today",
                retry_after: until(day.oldest.unwrap_or(now) + DAY_MS, now),
            });
        }
        self.store.record_send(&key, now).await?;
        let user = self.find(&login).await?.filter(|u| u.status == "active");
        let Some(user) = user else {
            return Ok(CODE_TTL);
        };
        // An address that is verified, or missing, has nothing to verify.
        if purpose == Purpose::EmailVerify && (user.email.is_none() || user.email_verified != 0) {
            return Ok(CODE_TTL);
        }
        // The visible limit counts per login; an account reachable by username and by email
        // is also limited as a whole, silently, so the answer still says nothing about it.
        let account_key = verification::bucket_key(&format!("send-{}-account", purpose.as_str()), &user.id.to_string());
        if self.store.sends_since(&account_key, now - MINUTE_MS).await?.count >= SENDS_PER_MINUTE
            || self.store.sends_since(&account_key, now - DAY_MS).await?.count >= SENDS_PER_DAY
        {
            return Ok(CODE_TTL);
        }
        self.store.record_send(&account_key, now).await?;
        let code = verification::new_code()?;
        self.store
            .replace_code(
                user.id,
                purpose.as_str(),
                &verification::code_hash(user.id, purpose, &code),
                now + millis(CODE_TTL),
                now,
            )
            .await?;
        let mail = VerificationMail {
            username: user.username.clone(),
            email: user.email.clone(),
            purpose,
            code,
            expires_in: CODE_TTL,
        };
        // Delivered in the background so the answer takes as long whether or not a mail goes out.
        let mailer = Arc::clone(&self.mailer);
        let user_id = user.id;
        tokio::spawn(async move {
            if let Err(e) = mailer.send_code(mail).await {
                tracing::warn!(user_id, error = %e, "could not deliver a verification code");
            }
        });
        Ok(CODE_TTL)
    }

    /// The id of the user's live code for `purpose` if `code` is it. Every wrong guess uses up
    /// one of the code's attempts.
    async fn matching_code(&self, user: &UserRow, purpose: Purpose, code: &str) -> Result<Option<i64>, Error> {
        let now = now_millis();
        let Some(row) = self
            .store
            .active_code(user.id, purpose.as_str(), MAX_CODE_ATTEMPTS, now)
            .await?
        else {
            return Ok(None);
        };
        if !self.store.take_attempt(row.id, MAX_CODE_ATTEMPTS, now).await? {
            return Ok(None);
        }
        if verification::constant_time_eq(&verification::code_hash(user.id, purpose, code), &row.code_hash) {
            self.store.return_attempt(row.id).await?;
            Ok(Some(row.id))
        } else {
            Ok(None)
        }
    }

    pub async fn verify_code(&self, login: &str, code: &str, purpose: Purpose) -> Result<bool, Error> {
        let login = Login::parse("login", login)?;
        let code = account_fields::code("code", code)?;
        let Some(user) = self.find(&login).await? else {
            return Ok(false);
        };
        let Some(code_id) = self.matching_code(&user, purpose, &code).await? else {
            return Ok(false);
        };
        if purpose == Purpose::EmailVerify {
            let now = now_millis();
            if !self.store.consume_code(code_id, now).await? {
                return Ok(false);
            }
            self.store.set_email_verified(user.id, now).await?;
        }
        Ok(true)
    }

    pub async fn reset_password(&self, login: &str, code: &str, new_password: &str) -> Result<(), Error> {
        let login = Login::parse("login", login)?;
        let code = account_fields::code("code", code)?;
        account_fields::password("new_password", new_password)?;
        let wrong = || Error::invalid("code", "is wrong or has expired");
        let Some(user) = self.find(&login).await? else {
            return Err(wrong());
        };
        let Some(code_id) = self.matching_code(&user, Purpose::PasswordReset, &code).await? else {
            return Err(wrong());
        };
        let hash = self.passwords.hash(new_password).await?;
        let now = now_millis();
        if !self.store.consume_code(code_id, now).await? {
            return Err(wrong());
        }
        self.store.set_password(user.id, &hash, now).await?;
        let revoked = self.store.revoke_user_tokens(user.id, None, now).await?;
        self.store
            .clear_login_failures(&verification::bucket_key("login-user", &user.id.to_string()))
            .await?;
        tracing::info!(user_id = user.id, revoked, "password reset; every session signed out");
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
