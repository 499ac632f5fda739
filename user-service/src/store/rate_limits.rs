//! `send_counters` (codes sent per window) and `login_failures` (failed sign-ins and locks).

use super::{AccountStore, Result};

/// The two windows a send counter counts in (its `minute_…` and `day_…` columns), and how
/// many sends each allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    pub minute_ms: i64,
    pub per_minute: i64,
    pub day_ms: i64,
    pub per_day: i64,
}

/// A rate-limit window that is full, and when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefused {
    Minute { started_at: i64 },
    Day { started_at: i64 },
}

/// What a login-failure key allows right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptReserved {
    /// This is failure number `failures` if the password turns out wrong.
    Granted {
        failures: i64,
    },
    Locked {
        until: i64,
    },
}

impl AccountStore {
    /// Counts one send for `key_hash` if both windows have room, in one statement (a window
    /// that has ended starts again at `now`); otherwise counts nothing and answers the full
    /// window.
    pub async fn count_send(
        &self,
        key_hash: &str,
        now: i64,
        limits: SendLimits,
    ) -> Result<std::result::Result<(), SendRefused>> {
        let counted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO send_counters (key_hash, minute_started_at, minute_sends, day_started_at, day_sends) \
             VALUES ($1, $2, 1, $2, 1) \
             ON CONFLICT (key_hash) DO UPDATE SET \
               minute_sends = CASE WHEN send_counters.minute_started_at <= $2 - $3 THEN 1 \
                              ELSE send_counters.minute_sends + 1 END, \
               minute_started_at = CASE WHEN send_counters.minute_started_at <= $2 - $3 THEN $2 \
                                   ELSE send_counters.minute_started_at END, \
               day_sends = CASE WHEN send_counters.day_started_at <= $2 - $4 THEN 1 \
                           ELSE send_counters.day_sends + 1 END, \
               day_started_at = CASE WHEN send_counters.day_started_at <= $2 - $4 THEN $2 \
                                ELSE send_counters.day_started_at END \
             WHERE (send_counters.minute_started_at <= $2 - $3 OR send_counters.minute_sends < $5) \
               AND (send_counters.day_started_at <= $2 - $4 OR send_counters.day_sends < $6) \
             RETURNING minute_sends",
        )
        .bind(key_hash)
        .bind(now)
        .bind(limits.minute_ms)
        .bind(limits.day_ms)
        .bind(limits.per_minute)
        .bind(limits.per_day)
        .fetch_optional(&self.pool)
        .await?;
        if counted.is_some() {
            return Ok(Ok(()));
        }
        let (minute_started_at, minute_sends, day_started_at): (i64, i64, i64) = sqlx::query_as(
            "SELECT minute_started_at, minute_sends, day_started_at FROM send_counters WHERE key_hash = $1",
        )
        .bind(key_hash)
        .fetch_one(&self.pool)
        .await?;
        Ok(Err(
            if minute_started_at > now - limits.minute_ms && minute_sends >= limits.per_minute {
                SendRefused::Minute {
                    started_at: minute_started_at,
                }
            } else {
                SendRefused::Day {
                    started_at: day_started_at,
                }
            },
        ))
    }

    /// Reserves a sign-in attempt for `key_hash` before the password is checked: counts it as
    /// a failure up front and, when that failure would lock the key, locks it already, so
    /// parallel guesses cannot all slip in before the first failure is counted. A correct
    /// password then clears the key. `lock_for(failures)` is the lock after that many.
    pub async fn reserve_attempt(
        &self,
        key_hash: &str,
        now: i64,
        lock_for: impl Fn(i64) -> i64,
    ) -> Result<AttemptReserved> {
        let mut tx = self.pool.begin().await?;
        let counted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO login_failures (key_hash, failures, locked_until, updated_at) VALUES ($1, 1, 0, $2) \
             ON CONFLICT (key_hash) DO UPDATE SET failures = login_failures.failures + 1, updated_at = $2 \
             WHERE login_failures.locked_until <= $2 \
             RETURNING failures",
        )
        .bind(key_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let reserved = match counted {
            Some((failures,)) => {
                let lock_ms = lock_for(failures);
                if lock_ms > 0 {
                    sqlx::query("UPDATE login_failures SET locked_until = $1 WHERE key_hash = $2")
                        .bind(now + lock_ms)
                        .bind(key_hash)
                        .execute(&mut *tx)
                        .await?;
                }
                AttemptReserved::Granted { failures }
            }
            None => {
                let (until,): (i64,) = sqlx::query_as("SELECT locked_until FROM login_failures WHERE key_hash = $1")
                    .bind(key_hash)
                    .fetch_one(&mut *tx)
                    .await?;
                AttemptReserved::Locked { until }
            }
        };
        tx.commit().await?;
        Ok(reserved)
    }

    /// Until when the counter is locked (a time in the past when it is not), if it exists.
    pub async fn locked_until(&self, key_hash: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT locked_until FROM login_failures WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(until,)| until))
    }

    pub async fn clear_login_failures(&self, key_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key_hash = $1")
            .bind(key_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
