//! Retention: a room may keep its messages for a number of days. The sweeper (a task of
//! `serve`, every `--room-retention-sweep-secs`) deletes what is older, room by room, in
//! small batches with a pause between them, so no statement holds a lock for long and posting
//! to the room goes on meanwhile. Several instances sweeping at once only delete the same rows.

use std::time::Duration;

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_service_kit::database::now_millis;

use super::Rooms;
use crate::Error;

/// The longest retention a room may have: 100 years (anything longer is "forever", 0).
pub const MAX_RETENTION_DAYS: i32 = 36_500;
const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;
/// Stored room events are kept this many days unless configured otherwise.
pub const DEFAULT_EVENTS_KEPT_DAYS: u64 = 30;

/// How the retention sweeper runs.
#[derive(Debug, Clone)]
pub struct RetentionSweep {
    /// Between sweeps (`--room-retention-sweep-secs`).
    pub interval: Duration,
    /// Rows deleted per statement.
    pub batch: i64,
    /// Between two batches of the same sweep, leaving the tables to everyone else.
    pub pause: Duration,
    /// How long stored room events are kept (`--room-events-kept-days`): a stream resuming
    /// from further back is told to reload (`reload_required`).
    pub events_kept: Duration,
}

impl Default for RetentionSweep {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3600),
            batch: 500,
            pause: Duration::from_millis(50),
            events_kept: Duration::from_secs(DEFAULT_EVENTS_KEPT_DAYS * 24 * 3600),
        }
    }
}

/// UpdateRoom's `retention_days`: 0 is forever (None).
pub(super) fn days_from(days: i32) -> Result<Option<i64>, Error> {
    match days {
        0 => Ok(None),
        1..=MAX_RETENTION_DAYS => Ok(Some(i64::from(days))),
        _ => Err(Error::invalid(
            "retention_days",
            format!("must be 0 (keep forever) or 1 to {MAX_RETENTION_DAYS} days"),
        )),
    }
}

impl Rooms {
    /// Deletes every room's messages (and stored events) older than its retention, telling
    /// the room's members (`messages_expired`), then every stored event older than
    /// `events_kept`; answers how many messages went.
    pub async fn sweep_retention(&self, sweep: &RetentionSweep) -> Result<u64, Error> {
        let batch = sweep.batch.max(1);
        let mut deleted = 0;
        for room in self.store.rooms_with_retention().await? {
            let cutoff = now_millis() - room.retention_days.saturating_mul(DAY_MILLIS);
            let mut gone_here = 0;
            loop {
                let gone = self
                    .store
                    .delete_room_messages_before(room.session_id, cutoff, batch)
                    .await?;
                gone_here += gone;
                if gone < batch as u64 {
                    break;
                }
                tokio::time::sleep(sweep.pause).await;
            }
            deleted += gone_here;
            while self.store.delete_room_events_before(room.id, cutoff, batch).await? == batch as u64 {
                tokio::time::sleep(sweep.pause).await;
            }
            // After the events' deletion: this one is newer than the cutoff and stays, so a
            // stream resuming later learns of the deletion too.
            if gone_here > 0 {
                let expired = pb::MessagesExpired {
                    before: Some(parley_proto::timestamp::from_unix_millis(cutoff)),
                };
                self.emit(room.id, None, false, Event::MessagesExpired(expired)).await?;
            }
        }
        let events_cutoff = now_millis() - i64::try_from(sweep.events_kept.as_millis()).unwrap_or(i64::MAX);
        while self.store.delete_room_events_older_than(events_cutoff, batch).await? == batch as u64 {
            tokio::time::sleep(sweep.pause).await;
        }
        if deleted > 0 {
            tracing::info!(deleted, "deleted room messages past their rooms' retention");
        }
        Ok(deleted)
    }
}
