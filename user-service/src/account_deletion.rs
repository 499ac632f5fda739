//! Delivering account deletions to the services that hold an account's data.
//!
//! `DeleteAccount` writes an `account_deletions` row (user id + account UUID) in the same
//! transaction that deletes the account, so a deletion is never lost between the two. This
//! worker hands each row to an [`AccountDataEraser`] and removes it once that succeeded;
//! a failure is retried with a growing delay, and nothing is dropped. Several replicas may
//! run the worker: each row is leased to one of them while it is delivered, and erasers must
//! be idempotent anyway (a replica can stop between the delivery and the removal).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parley_service_kit::database::now_millis;

use crate::store::{AccountDeletionRow, AccountStore};

/// Removes a deleted account's data from another service (chat-service's sessions, messages
/// and API configs). Erasing an account twice must be harmless.
#[tonic::async_trait]
pub trait AccountDataEraser: Send + Sync + 'static {
    /// The service's name, for the log.
    fn name(&self) -> &str;
    async fn erase(&self, deletion: &AccountDeletion) -> Result<(), tonic::Status>;
}

/// A deleted account, as an eraser gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDeletion {
    pub user_id: i64,
    /// The account's UUID (the `aid` claim of its access tokens).
    pub account_id: String,
    /// When the account was deleted (Unix ms).
    pub deleted_at: i64,
}

/// The first retry after a failed delivery; each further failure doubles it, up to
/// [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10 * 60);
/// How long a replica holds a row while it delivers it; a replica that dies meanwhile leaves
/// the row to be tried again after this.
const LEASE: Duration = Duration::from_secs(60);
/// Rows taken per pass.
const BATCH: i64 = 50;

/// The delay before the next try after `attempts` failed deliveries.
pub fn retry_delay(attempts: i64) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
    FIRST_RETRY_DELAY.saturating_mul(1 << doublings).min(MAX_RETRY_DELAY)
}

/// One pass: delivers every due deletion; answers how many were delivered.
pub async fn deliver_due(store: &AccountStore, eraser: &dyn AccountDataEraser) -> Result<usize, sqlx::Error> {
    let now = now_millis();
    let mut delivered = 0;
    for row in store.due_account_deletions(now, BATCH).await? {
        if !store
            .claim_account_deletion(&row, now + LEASE.as_millis() as i64)
            .await?
        {
            continue;
        }
        let AccountDeletionRow {
            account_id,
            user_id,
            deleted_at,
            attempts,
            ..
        } = row;
        let deletion = AccountDeletion {
            user_id,
            account_id,
            deleted_at,
        };
        match eraser.erase(&deletion).await {
            Ok(()) => {
                store.remove_account_deletion(&deletion.account_id).await?;
                tracing::info!(user_id, to = eraser.name(), "deleted account's data erased");
                delivered += 1;
            }
            Err(status) => {
                let attempts = attempts + 1;
                let delay = retry_delay(attempts);
                let error = format!("{:?}: {}", status.code(), status.message());
                store
                    .postpone_account_deletion(&deletion.account_id, now_millis() + delay.as_millis() as i64, &error)
                    .await?;
                tracing::warn!(user_id, to = eraser.name(), attempts, retry_in = ?delay, %error, "could not erase a deleted account's data; will retry");
            }
        }
    }
    Ok(delivered)
}

/// Delivers due deletions every `interval` until `shutdown` resolves.
pub async fn run(
    store: AccountStore,
    eraser: Arc<dyn AccountDataEraser>,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let passes = async {
        loop {
            ticker.tick().await;
            if let Err(e) = deliver_due(&store, eraser.as_ref()).await {
                tracing::warn!(error = %e, "could not read the account-deletion outbox; will retry");
            }
        }
    };
    tokio::select! {
        () = passes => {}
        () = shutdown => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(4), Duration::from_secs(8));
        assert_eq!(retry_delay(100), MAX_RETRY_DELAY);
    }
}
