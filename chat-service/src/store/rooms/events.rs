//! `room_events`: every room event in order, what WatchRoomEvents resumes from.

use parley_service_kit::database::flag;

use crate::ids::{OwnerId, RoomEventId, RoomId};
use crate::store::ChatStore;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoomEventRow {
    pub id: RoomEventId,
    pub room_id: RoomId,
    pub subject_id: Option<OwnerId>,
    pub subject_only: i64,
    pub payload: Vec<u8>,
    pub created_at: i64,
}

impl ChatStore {
    pub async fn insert_room_event(
        &self,
        room: RoomId,
        subject: Option<OwnerId>,
        subject_only: bool,
        payload: &[u8],
        now: i64,
    ) -> Result<RoomEventId, sqlx::Error> {
        let (id,): (RoomEventId,) = sqlx::query_as(
            "INSERT INTO room_events (room_id, subject_id, subject_only, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(room)
        .bind(subject)
        .bind(flag(subject_only))
        .bind(payload)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Up to `limit` events after `after` that `member` may see: those of the rooms they are in
    /// now, and those about them (their removal from a room, their invitations).
    pub async fn room_events_after(
        &self,
        member: OwnerId,
        after: RoomEventId,
        limit: i64,
    ) -> Result<Vec<RoomEventRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, room_id, subject_id, subject_only, payload, created_at FROM room_events \
             WHERE id > $2 AND (subject_id = $1 OR (subject_only = 0 AND room_id IN \
                (SELECT room_id FROM room_members WHERE member_id = $1 AND banned_at IS NULL))) \
             ORDER BY id LIMIT $3",
        )
        .bind(member)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// The newest event's id (0 without any).
    pub async fn last_room_event_id(&self) -> Result<RoomEventId, sqlx::Error> {
        let (id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM room_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(RoomEventId(id.unwrap_or(0)))
    }

    /// The oldest stored event's id (None without any): a stream resuming from before it
    /// missed events that were deleted.
    pub async fn first_room_event_id(&self) -> Result<Option<RoomEventId>, sqlx::Error> {
        let (id,): (Option<i64>,) = sqlx::query_as("SELECT MIN(id) FROM room_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(id.map(RoomEventId))
    }
}
