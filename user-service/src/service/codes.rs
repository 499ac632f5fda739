//! Sending verification codes. A request is checked (its login's send limit) and queued; a
//! single background worker then does everything that depends on the account (finding it,
//! its own silent limit, the code, the mail). So the answer takes as long, and says as much,
//! whether or not the login names an account; the bounded queue keeps a flood from growing
//! memory, and one worker delivers in the order the requests came.

use std::sync::Arc;
use std::time::Duration;

use parley_service_kit::database::{self, now_millis};
use tokio::sync::mpsc;

use super::sign_in::{ClientAddress, login_address_key, login_key, own_password_key};
use super::{AccountService, code_account, millis, until};
use crate::Error;
use crate::account_fields::{self, Login};
use crate::mailer::{Mailer, Purpose, VerificationMail};
use crate::store::{AccountStore, SendLimits, SendRefused, UserRow};
use crate::verification::{self, CODE_TTL, MAX_CODE_ATTEMPTS, SEND_LIMITS};

/// Code requests waiting for the worker; beyond this, requests are refused (for known and
/// unknown logins alike).
pub const CODE_QUEUE_CAPACITY: usize = 1024;

struct CodeJob {
    login: Login,
    purpose: Purpose,
}

/// Where code requests go.
#[derive(Clone)]
pub struct CodeQueue {
    jobs: mpsc::Sender<CodeJob>,
}

/// The default of `--codes-per-address-per-day`.
pub const CODES_PER_ADDRESS_PER_DAY: u32 = 10;

/// How many codes one email address receives a day, over every account that names it and
/// every purpose: anyone can register accounts with someone else's address, and each account
/// has its own limit, so without this an address could be flooded.
fn address_limits(per_day: u32) -> SendLimits {
    let per_day = i64::from(per_day);
    SendLimits {
        // The day is the limit; the minute window is made as wide as the day's allowance.
        per_minute: per_day,
        per_day,
        ..SEND_LIMITS
    }
}

impl CodeQueue {
    /// The queue and its worker, which runs until every sender is gone.
    /// `per_address_per_day` caps the codes one email address receives a day.
    pub fn start(
        store: AccountStore,
        mailer: Arc<dyn Mailer>,
        capacity: usize,
        per_address_per_day: u32,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (jobs, mut queued) = mpsc::channel::<CodeJob>(capacity.max(1));
        let address_limits = address_limits(per_address_per_day);
        let worker = tokio::spawn(async move {
            while let Some(job) = queued.recv().await {
                if let Err(e) = deliver(&store, mailer.as_ref(), address_limits, job).await {
                    tracing::warn!(error = %e, "could not send a verification code");
                }
            }
        });
        (Self { jobs }, worker)
    }

    /// Counts the send against the login's limit and queues it. Nothing here depends on
    /// whether the login names an account.
    pub(super) async fn send(&self, store: &AccountStore, login: Login, purpose: Purpose) -> Result<(), Error> {
        // A place in the queue first, so a refused request has not used up a send.
        let place = self.jobs.try_reserve().map_err(|_| Error::RateLimited {
            message: "too many codes are being sent right now",
            retry_after: std::time::Duration::from_secs(5),
        })?;
        let now = now_millis();
        let key = verification::bucket_key(&format!("send-{}", purpose.as_str()), login.key());
        match store.count_send(&key, now, SEND_LIMITS).await? {
            Ok(()) => {}
            Err(SendRefused::Minute { started_at }) => {
                return Err(Error::RateLimited {
                    message: "a code was sent moments ago",
                    retry_after: until(started_at + SEND_LIMITS.minute_ms, now),
                });
            }
            Err(SendRefused::Day { started_at }) => {
                return Err(Error::RateLimited {
                    message: "too many codes sent today",
                    retry_after: until(started_at + SEND_LIMITS.day_ms, now),
                });
            }
        }
        place.send(CodeJob { login, purpose });
        Ok(())
    }
}

/// The account-specific part of a send, in the background.
async fn deliver(
    store: &AccountStore,
    mailer: &dyn Mailer,
    address_limits: SendLimits,
    job: CodeJob,
) -> Result<(), Error> {
    let Some(user) = code_account(store, &job.login).await? else {
        return Ok(());
    };
    let purpose = job.purpose;
    // A reset code goes only to an address the owner has proved they read: an unverified one
    // may be anyone's (typed by whoever held an access token for a moment). With no address
    // at all the code goes to the operator's log mailer, or nowhere with SMTP.
    if purpose == Purpose::PasswordReset && user.email.is_some() && user.email_verified == 0 {
        return Ok(());
    }
    if purpose == Purpose::EmailVerify {
        // A missing or verified address has nothing to verify, and an address another
        // account has verified cannot be verified again.
        let Some(address) = user.email_normalized.as_deref().filter(|_| user.email_verified == 0) else {
            return Ok(());
        };
        if store.email_verified_elsewhere(address, user.id).await? {
            return Ok(());
        }
    }
    // The limit above counts per login; an account reachable by username and by email is
    // also limited as a whole, silently, so the answer still says nothing about it.
    let now = now_millis();
    let account_key = verification::bucket_key(&format!("send-{}-account", purpose.as_str()), &user.id.to_string());
    if store.count_send(&account_key, now, SEND_LIMITS).await?.is_err() {
        return Ok(());
    }
    // And the address it goes to, whichever accounts name it.
    if let Some(address) = user.email_normalized.as_deref() {
        let address_key = verification::bucket_key("send-to-address", address);
        if store.count_send(&address_key, now, address_limits).await?.is_err() {
            tracing::info!(
                user_id = user.id,
                "code not sent: the address has had its codes for today"
            );
            return Ok(());
        }
    }
    let code = verification::new_code()?;
    let address = user.email_normalized.as_deref().unwrap_or("");
    store
        .replace_code(
            user.id,
            purpose.as_str(),
            &verification::code_hash(user.id, purpose, address, &code),
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
    if let Err(e) = mailer.send_code(mail).await {
        tracing::warn!(user_id = user.id, error = %e, "could not deliver a verification code");
    }
    Ok(())
}

impl AccountService {
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
