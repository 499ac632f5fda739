//! Retention: rooms that keep their messages for a number of days, and the batched deletions
//! of what is older. Each batch is a statement of its own (no transaction around the sweep),
//! so a room is never locked for longer than one batch takes.

use crate::ids::{RoomId, SessionId};
use crate::store::ChatStore;

/// A room whose messages expire.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RetainedRoom {
    pub id: RoomId,
    pub session_id: SessionId,
    pub retention_days: i64,
}

impl ChatStore {
    /// The rooms with a retention setting.
    pub async fn rooms_with_retention(&self) -> Result<Vec<RetainedRoom>, sqlx::Error> {
        sqlx::query_as("SELECT id, session_id, retention_days FROM rooms WHERE retention_days IS NOT NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await
    }

    /// Deletes up to `batch` of the room's messages created before `cutoff` (oldest first);
    /// answers how many went. The caller repeats it until fewer than `batch` go.
    pub async fn delete_room_messages_before(
        &self,
        session: SessionId,
        cutoff: i64,
        batch: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM chat_messages WHERE id IN (SELECT id FROM chat_messages \
             WHERE session_id = $1 AND created_at < $2 ORDER BY created_at, id LIMIT $3)",
        )
        .bind(session)
        .bind(cutoff)
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `batch` of the room's stored events from before `cutoff`: they carry the
    /// expired messages' text, and a stream resuming from that far back finds the messages gone
    /// anyway.
    pub async fn delete_room_events_before(&self, room: RoomId, cutoff: i64, batch: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM room_events WHERE id IN (SELECT id FROM room_events \
             WHERE room_id = $1 AND created_at < $2 ORDER BY id LIMIT $3)",
        )
        .bind(room)
        .bind(cutoff)
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `batch` of every room's stored events from before `cutoff` (the events'
    /// own retention: a stream resuming from before it is told to reload). The newest event
    /// stays, so a client that saw it is known to have missed nothing.
    pub async fn delete_room_events_older_than(&self, cutoff: i64, batch: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM room_events WHERE id IN (SELECT id FROM room_events \
             WHERE created_at < $1 AND id < (SELECT MAX(id) FROM room_events) ORDER BY id LIMIT $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
