//! Sending verification codes. A request is checked (its login's send limit) and queued; a
//! single background worker then does everything that depends on the account (finding it,
//! its own silent limit, the code, the mail). So the answer takes as long, and says as much,
//! whether or not the login names an account; the bounded queue keeps a flood from growing
//! memory, and one worker delivers in the order the requests came.

use std::sync::Arc;

use parley_service_kit::database::now_millis;
use tokio::sync::mpsc;

use super::{code_account, millis, until};
use crate::Error;
use crate::account_fields::Login;
use crate::mailer::{Mailer, Purpose, VerificationMail};
use crate::store::{AccountStore, SendLimits, SendRefused};
use crate::verification::{self, CODE_TTL, SEND_LIMITS};

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
