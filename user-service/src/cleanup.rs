//! The periodic sweep of expired codes, dead sessions and refresh tokens, old rate-limit
//! counters, and revocations that outlived every access token they were about.

use std::future::Future;
use std::time::Duration;

use parley_service_kit::database::now_millis;

use crate::service::REVOCATION_RETENTION;
use crate::store::{AccountStore, Removed, Retention};
use crate::verification::SEND_LIMITS;

const RETENTION: Retention = Retention {
    // Send counters are kept as long as the longest send window.
    send_window_ms: SEND_LIMITS.day_ms,
    // Failed sign-ins are forgotten a day after the last one (when not locked).
    failure_memory_ms: 24 * 60 * 60 * 1000,
    revocation_ms: REVOCATION_RETENTION.as_millis() as i64,
};

/// One sweep.
pub async fn sweep(store: &AccountStore) -> Result<Removed, sqlx::Error> {
    store.cleanup(now_millis(), RETENTION).await
}

/// Sweeps every `interval` until `shutdown` resolves.
pub async fn run(store: AccountStore, interval: Duration, shutdown: impl Future<Output = ()>) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sweeps = async {
        loop {
            ticker.tick().await;
            match sweep(&store).await {
                Ok(removed) if removed != Removed::default() => {
                    tracing::debug!(?removed, "cleanup removed dead codes and tokens");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cleanup failed; will retry"),
            }
        }
    };
    tokio::select! {
        () = sweeps => {}
        () = shutdown => {}
    }
}
