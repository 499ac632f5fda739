//! The account rules: validation, sign-in, profiles, passwords, codes and their limits.
//! Handlers call this; it calls the store.
//!
//! Nothing an unauthenticated caller sees depends on whether an account exists: unknown
//! logins get the same answers, limits and (as near as the database allows) the same work.

mod admin;
mod codes;
mod sessions;
mod signup;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parley_service_kit::database::{self, now_millis};

pub use admin::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, UserListing, UserPage};
pub use codes::{CODE_QUEUE_CAPACITY, CODES_PER_ADDRESS_PER_DAY, CodeQueue};
pub use sessions::{REFRESH_REUSE_GRACE, REFRESH_TOKEN_TTL, SESSION_LIFETIME};
pub use signup::{InviteRequest, SignupPolicy};

use crate::Error;
use crate::account_fields::{self, Login};
use crate::mailer::Purpose;
use crate::password::{HashingSlot, PasswordHasher};
use crate::store::{
    AccountStatus, AccountStore, AttemptReserved, EmailColumns, Inserted, NewUser, ProfileUpdate, Role, UserRow,
};
use crate::token_signer::{AccessToken, SigningKeys};
use crate::verification::{self, CODE_TTL, MAX_CODE_ATTEMPTS};

/// How failures on one counter turn into a lock: `free_failures` in a row cost nothing, then
/// each locks for `first_lock`, doubling with every further failure up to `max_lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSchedule {
    pub free_failures: i64,
    pub first_lock: Duration,
    pub max_lock: Duration,
}

impl LockSchedule {
    /// How long the counter stays locked after its `failures`-th failure.
    pub fn lock_after(&self, failures: i64) -> Duration {
        if failures <= self.free_failures {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free_failures - 1).min(16) as u32;
        self.first_lock.saturating_mul(1 << doublings).min(self.max_lock)
    }
}

/// The three counters a failed sign-in is counted on. A guesser at one address is stopped by
/// the first, which leaves the owner, elsewhere, alone. The second slows one address trying
/// many logins; the third, a ceiling one address cannot reach, slows a guesser spread over
/// many addresses (and then, unavoidably, the owner too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// A login (as typed) from one client address.
    pub per_login_and_address: LockSchedule,
    /// Every login from one client address (an IPv6 address counts by its /64).
    pub per_address: LockSchedule,
    /// A login from every address together.
    pub per_login: LockSchedule,
}

/// One address hardly dents the per-login ceiling: its own counter allows 4 failures, then
/// locks 30 s, 1 min, … up to an hour, 34 failures a day (counters are forgotten a day
/// after their last failure). 200 takes six addresses guessing all day; beyond it a
/// distributed guesser gets about one guess every 15 minutes.
pub const SIGN_IN_LIMITS: SignInLimits = SignInLimits {
    per_login_and_address: LockSchedule {
        free_failures: 4,
        first_lock: Duration::from_secs(30),
        max_lock: Duration::from_secs(60 * 60),
    },
    per_address: LockSchedule {
        free_failures: 50,
        first_lock: Duration::from_secs(30),
        max_lock: Duration::from_secs(15 * 60),
    },
    per_login: LockSchedule {
        free_failures: 200,
        first_lock: Duration::from_secs(30),
        max_lock: Duration::from_secs(15 * 60),
    },
};

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

/// A Register request as it came.
#[derive(Debug, Default, Clone, Copy)]
pub struct Registration<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub invite_code: Option<&'a str>,
    pub accepted_terms: bool,
}

/// Where a request came from: the address the gateway saw (its `x-parley-client-ip`
/// header), or the connection's peer for a direct call; `None` when neither is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientAddress {
    pub ip: Option<IpAddr>,
    /// Whether the gateway named it. Only then is it counted for every login together: a
    /// peer address may be a gateway that does not forward (every user behind one address),
    /// and one guesser there must not lock everyone out.
    pub forwarded: bool,
}

impl ClientAddress {
    /// The address as counters key it: IPv4 (also IPv4-mapped IPv6) in full, IPv6 by its /64,
    /// since one subscriber usually holds a whole /64 and could otherwise count afresh from
    /// each of its addresses.
    fn key(&self) -> String {
        match self.ip {
            None => "unknown".to_string(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
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
    /// Needed when the email changes: it decides where password-reset codes go.
    pub current_password: Option<String>,
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

/// The ceiling counter of a login as typed (normalized), over every address: the same for
/// known and unknown logins, and separate for a username and an email, so locking one says
/// nothing about whether the other names the same account.
fn login_key(login: &Login) -> String {
    verification::bucket_key("login", login.key())
}

/// The counter of a login as typed from one client address.
fn login_address_key(login: &Login, address: &ClientAddress) -> String {
    verification::bucket_key("login-address", &format!("{}\u{0}{}", login.key(), address.key()))
}

/// The counter of every sign-in failure from one client address.
fn address_key(address: &ClientAddress) -> String {
    verification::bucket_key("address", &address.key())
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

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    // ---- sign-up, sign-in ----

    pub async fn register(&self, request: Registration<'_>) -> Result<SignedIn, Error> {
        let Registration {
            username,
            password,
            email,
            display_name,
            invite_code,
            accepted_terms,
        } = request;
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
        let now = now_millis();
        // Consent is recorded only where the operator publishes terms.
        let terms_accepted_at = match &self.terms_url {
            Some(url) if !accepted_terms => {
                return Err(Error::invalid(
                    "accepted_terms",
                    format!("must be true: signing up means accepting the terms at {url}"),
                ));
            }
            Some(_) => Some(now),
            None => None,
        };
        // The first account administers the instance (two sign-ups racing on an empty
        // database could both be; both are then the operator's), as does the one the operator
        // names; neither is subject to the sign-up policy.
        let administrator =
            self.admin_username.as_deref() == Some(username.normalized.as_str()) || !self.store.any_user().await?;
        let (status, invite_code_hash) = if administrator {
            (AccountStatus::Active, None)
        } else {
            match self.signup_policy().await?.0 {
                SignupPolicy::Open => (AccountStatus::Active, None),
                SignupPolicy::Approval => (AccountStatus::Pending, None),
                SignupPolicy::Invite => match invite_code.map(str::trim).filter(|c| !c.is_empty()) {
                    Some(code) => (AccountStatus::Active, Some(verification::token_hash(code))),
                    None => {
                        return Err(Error::invalid(
                            "invite_code",
                            "is required: sign-up here is by invitation",
                        ));
                    }
                },
                SignupPolicy::Closed => {
                    return Err(Error::Precondition("sign-up is closed on this server".to_string()));
                }
            }
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
                role: if administrator { Role::Admin } else { Role::User },
                status,
                username: &username.display,
                username_normalized: &username.normalized,
                email: email.as_ref().map(|e| e.display.as_str()),
                email_normalized: email.as_ref().map(|e| e.normalized.as_str()),
                password_hash: &password_hash,
                display_name: &display_name,
                terms_accepted_at,
                invite_code_hash: invite_code_hash.as_deref(),
                now,
            })
            .await;
        let id = match inserted {
            Ok(Inserted::User(id)) => id,
            Ok(Inserted::InviteUnusable) => {
                return Err(Error::invalid("invite_code", "is wrong, expired, used up or revoked"));
            }
            // Someone registered the same name between the check and the insert.
            Err(e) if database::is_unique_violation(&e) => return Err(taken()),
            Err(e) => return Err(e.into()),
        };
        let user = self.store.user_by_id(id).await?.ok_or(Error::UserNotFound)?;
        tracing::info!(user_id = id, status = status.as_str(), "account registered");
        if status == AccountStatus::Pending {
            return Err(Error::AwaitingApproval);
        }
        self.start_session(user).await
    }

    /// Reserves an attempt on a failure counter before a password is checked (see
    /// [`AccountStore::reserve_attempt`]); RESOURCE_EXHAUSTED while it is locked. Also counts
    /// a failure already known to have happened.
    async fn reserve_attempt(&self, key: &str, schedule: LockSchedule) -> Result<(), Error> {
        let now = now_millis();
        match self
            .store
            .reserve_attempt(key, now, |failures| millis(schedule.lock_after(failures)))
            .await?
        {
            AttemptReserved::Granted { .. } => Ok(()),
            AttemptReserved::Locked { until: locked_until } => Err(Error::RateLimited {
                message: "too many failed sign-in attempts",
                retry_after: until(locked_until, now),
            }),
        }
    }

    /// RESOURCE_EXHAUSTED if any of the counters is locked now; counts nothing.
    async fn refuse_if_locked(&self, keys: &[&str]) -> Result<(), Error> {
        let now = now_millis();
        let mut latest = None;
        for key in keys {
            if let Some(locked_until) = self.store.locked_until(key).await?
                && locked_until > now
            {
                latest = latest.max(Some(locked_until));
            }
        }
        match latest {
            None => Ok(()),
            Some(locked_until) => Err(Error::RateLimited {
                message: "too many failed sign-in attempts",
                retry_after: until(locked_until, now),
            }),
        }
    }

    /// Signs in. Failures count on three counters (see [`SignInLimits`]): the login from this
    /// address is reserved before the password is checked, so parallel guesses cannot slip
    /// past its small allowance; the address's and the login's wide ones are checked first
    /// and counted once a password turned out wrong (a burst overshoots them by at most the
    /// hashing concurrency, which their size makes irrelevant). Only the first is cleared by
    /// a success: clearing the others would let a guesser holding any account of its own
    /// (or the owner, by signing in daily) reset them.
    pub async fn login(&self, login: &str, password: &str, client: ClientAddress) -> Result<SignedIn, Error> {
        let login = Login::parse("login", login)?;
        check_password_given("password", password)?;
        // Taken first: a request refused because the server is busy has used no attempt.
        let slot = self.passwords.slot().await?;
        let user = find_account(&self.store, &login).await?;
        let pair_key = login_address_key(&login, &client);
        let address_key = address_key(&client);
        let login_key = login_key(&login);
        // The address's own counter only for an address the gateway named (see ClientAddress).
        let wide: Vec<(&str, LockSchedule)> = [
            Some((address_key.as_str(), self.limits.per_address)).filter(|_| client.forwarded),
            Some((login_key.as_str(), self.limits.per_login)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let wide_keys: Vec<&str> = wide.iter().map(|(key, _)| *key).collect();
        self.refuse_if_locked(&wide_keys).await?;
        self.reserve_attempt(&pair_key, self.limits.per_login_and_address)
            .await?;
        let matches = match &user {
            Some(user) => slot.verify(password, &user.password_hash).await?,
            None => {
                slot.verify_nothing(password).await?;
                false
            }
        };
        drop(slot);
        // A failure was counted on the pair's counter when the attempt was reserved.
        let Some(user) = user.filter(|_| matches) else {
            for (key, schedule) in wide {
                // Locked meanwhile by a parallel failure: this one need not count as well.
                match self.reserve_attempt(key, schedule).await {
                    Ok(()) | Err(Error::RateLimited { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            return Err(Error::BadCredentials);
        };
        self.store.clear_login_failures(&pair_key).await?;
        match user.status {
            AccountStatus::Active => {}
            AccountStatus::Disabled => return Err(Error::AccountDisabled),
            AccountStatus::Pending => return Err(Error::AwaitingApproval),
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
            current_password,
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
        // The address is where reset codes go: with only an access token (a stolen one), moving
        // it would be a permanent takeover. Checked last, so bad fields never use an attempt.
        if email.is_some() {
            let password = current_password.as_deref().unwrap_or("");
            if password.is_empty() {
                return Err(Error::invalid(
                    "current_password",
                    "is required to change the email address",
                ));
            }
            check_password_given("current_password", password)?;
            let user = self.me(user_id).await?;
            let slot = self.passwords.slot().await?;
            self.check_own_password(&user, "current_password", password, &slot)
                .await?;
        }
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
        self.reserve_attempt(&key, self.limits.per_login_and_address).await?;
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
        self.store.delete_user(user_id).await?;
        tracing::info!(user_id, "account deleted");
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
    pub async fn reset_password(
        &self,
        login: &str,
        code: &str,
        new_password: &str,
        client: ClientAddress,
    ) -> Result<(), Error> {
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
        // The new password makes earlier guessing moot: the account's own counter and its
        // logins' ceilings start afresh, and so do its logins from the address the reset came
        // from (the owner's; other addresses' counters cannot be named, and stay).
        let mut logins = vec![Login::Username(user.username_normalized.clone())];
        if let Some(email) = &user.email_normalized {
            logins.push(Login::Email(email.clone()));
        }
        let mut keys = vec![own_password_key(user.id)];
        for login in &logins {
            keys.push(login_key(login));
            keys.push(login_address_key(login, &client));
        }
        for key in keys {
            self.store.clear_login_failures(&key).await?;
        }
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
        let pair = SIGN_IN_LIMITS.per_login_and_address;
        assert_eq!(pair.lock_after(1), Duration::ZERO);
        assert_eq!(pair.lock_after(4), Duration::ZERO);
        assert_eq!(pair.lock_after(5), Duration::from_secs(30));
        assert_eq!(pair.lock_after(6), Duration::from_secs(60));
        assert_eq!(pair.lock_after(7), Duration::from_secs(120));
        assert_eq!(pair.lock_after(100), Duration::from_secs(60 * 60));
        let ceiling = SIGN_IN_LIMITS.per_login;
        assert_eq!(ceiling.lock_after(200), Duration::ZERO);
        assert_eq!(ceiling.lock_after(201), Duration::from_secs(30));
        assert_eq!(ceiling.lock_after(1000), Duration::from_secs(15 * 60));
    }

    /// What one address can add to a login's ceiling in a day of steady guessing (its counter
    /// is forgotten a day after its last failure): far below the ceiling's free failures, or
    /// one address could lock the owner out.
    #[test]
    fn one_address_cannot_reach_the_ceiling_in_a_day() {
        let pair = SIGN_IN_LIMITS.per_login_and_address;
        let day = 24 * 60 * 60 * 1000;
        let (mut now, mut failures) = (0i64, 0i64);
        while now < day {
            failures += 1;
            now += millis(pair.lock_after(failures)).max(1);
        }
        assert!(
            failures * 5 < SIGN_IN_LIMITS.per_login.free_failures,
            "{failures} a day"
        );
    }

    fn address(text: &str) -> ClientAddress {
        ClientAddress {
            ip: Some(text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))),
            forwarded: true,
        }
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(
            address("2001:db8:1:2:aaaa::1").key(),
            address("2001:db8:1:2:bbbb::9").key()
        );
        assert_ne!(address("2001:db8:1:2::1").key(), address("2001:db8:1:3::1").key());
        assert_eq!(address("::ffff:192.0.2.7").key(), "192.0.2.7");
        assert_eq!(address("192.0.2.7").key(), "192.0.2.7");
        assert_eq!(ClientAddress::default().key(), "unknown");
    }
}
