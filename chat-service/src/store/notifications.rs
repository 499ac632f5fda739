//! `notifications`, `notification_settings` and `notification_room_mutes`: each account's
//! notifications (the newest kept), what it wants to be notified of, and its muted rooms.

use parley_service_kit::database::flag;

use super::ChatStore;
use crate::ids::{NotificationId, OwnerId, RoomId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: NotificationId,
    pub owner_id: OwnerId,
    /// The encoded `parley.chat.v1.Notification` without its id, time and read mark.
    pub payload: Vec<u8>,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

/// An account's choices; every flag 1 (on) without a stored row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotificationSettingsRow {
    pub mentions: i64,
    pub invitations: i64,
    pub role_changes: i64,
    pub removals: i64,
    pub announcements: i64,
    /// None: never changed.
    pub updated_at: Option<i64>,
}

impl Default for NotificationSettingsRow {
    fn default() -> Self {
        Self {
            mentions: 1,
            invitations: 1,
            role_changes: 1,
            removals: 1,
            announcements: 1,
            updated_at: None,
        }
    }
}

/// How many notifications each account keeps (the newest).
#[derive(Debug, Clone, Copy)]
pub struct NotificationsKept(pub i64);

const NOTIFICATION_COLUMNS: &str = "id, owner_id, payload, created_at, read_at";

impl ChatStore {
    pub async fn notification_settings(&self, owner: OwnerId) -> Result<NotificationSettingsRow, sqlx::Error> {
        let row: Option<NotificationSettingsRow> = sqlx::query_as(
            "SELECT mentions, invitations, role_changes, removals, announcements, updated_at \
             FROM notification_settings WHERE owner_id = $1",
        )
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.unwrap_or_default())
    }

    /// The rooms `owner` muted and is still a member of.
    pub async fn muted_rooms(&self, owner: OwnerId) -> Result<Vec<RoomId>, sqlx::Error> {
        let rows: Vec<(RoomId,)> = sqlx::query_as(
            "SELECT n.room_id FROM notification_room_mutes n JOIN room_members m \
             ON m.room_id = n.room_id AND m.member_id = n.owner_id AND m.banned_at IS NULL \
             WHERE n.owner_id = $1 ORDER BY n.room_id",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn room_muted(&self, owner: OwnerId, room: RoomId) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM notification_room_mutes WHERE owner_id = $1 AND room_id = $2")
                .bind(owner)
                .bind(room)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// A membership ended: its room's mute goes with it.
    pub async fn forget_room_mute(&self, room: RoomId, owner: OwnerId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM notification_room_mutes WHERE owner_id = $1 AND room_id = $2")
            .bind(owner)
            .bind(room)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores the settings and (when given) replaces the muted rooms, in one transaction.
    pub async fn save_notification_settings(
        &self,
        owner: OwnerId,
        settings: &NotificationSettingsRow,
        muted_rooms: Option<&[RoomId]>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO notification_settings \
             (owner_id, mentions, invitations, role_changes, removals, announcements, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (owner_id) DO UPDATE SET mentions = $2, invitations = $3, role_changes = $4, \
             removals = $5, announcements = $6, updated_at = $7",
        )
        .bind(owner)
        .bind(settings.mentions)
        .bind(settings.invitations)
        .bind(settings.role_changes)
        .bind(settings.removals)
        .bind(settings.announcements)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(rooms) = muted_rooms {
            sqlx::query("DELETE FROM notification_room_mutes WHERE owner_id = $1")
                .bind(owner)
                .execute(&mut *tx)
                .await?;
            for room in rooms {
                sqlx::query("INSERT INTO notification_room_mutes (owner_id, room_id) VALUES ($1, $2)")
                    .bind(owner)
                    .bind(room)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await
    }

    /// Stores one notification for `owner` and drops their oldest beyond `kept`.
    pub async fn insert_notification(
        &self,
        owner: OwnerId,
        kind: &str,
        payload: &[u8],
        now: i64,
        kept: NotificationsKept,
    ) -> Result<NotificationId, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let (id,): (NotificationId,) = sqlx::query_as(
            "INSERT INTO notifications (owner_id, kind, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(owner)
        .bind(kind)
        .bind(payload)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        // Everything older than the `kept`-th newest goes.
        sqlx::query(
            "DELETE FROM notifications WHERE owner_id = $1 AND id < \
             (SELECT id FROM notifications WHERE owner_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(owner)
        .bind((kept.0 - 1).max(0))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Stores an announcement for every account that used chat-service, is not erased and did
    /// not turn announcements off; drops everyone's oldest beyond `kept`. Answers who got it.
    pub async fn insert_announcement(
        &self,
        payload: &[u8],
        now: i64,
        kept: NotificationsKept,
    ) -> Result<Vec<(NotificationId, OwnerId)>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Reserved owners (shared connections') have no UUID account id.
        let recipients: Vec<(NotificationId, OwnerId)> = sqlx::query_as(
            "INSERT INTO notifications (owner_id, kind, payload, created_at) \
             SELECT o.id, 'announcement', $1, $2 FROM chat_owners o \
             LEFT JOIN notification_settings s ON s.owner_id = o.id \
             WHERE o.erased_at IS NULL AND o.account_id IS NOT NULL AND o.account_id NOT LIKE 'system:%' \
             AND COALESCE(s.announcements, 1) = 1 \
             RETURNING id, owner_id",
        )
        .bind(payload)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM notifications WHERE id IN (SELECT id FROM \
             (SELECT id, ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY id DESC) AS position \
              FROM notifications) ranked WHERE position > $1)",
        )
        .bind(kept.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(recipients)
    }

    /// Newest first, before `before` when given.
    pub async fn notifications(
        &self,
        owner: OwnerId,
        before: Option<NotificationId>,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE owner_id = $1 AND id < $2 \
             AND ($3 = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT $4"
        )))
        .bind(owner)
        .bind(before.map_or(i64::MAX, |id| id.0))
        .bind(flag(unread_only))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn unread_notifications(&self, owner: OwnerId) -> Result<i64, sqlx::Error> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE owner_id = $1 AND read_at IS NULL")
                .bind(owner)
                .fetch_one(&self.pool)
                .await?;
        Ok(count)
    }

    /// Marks `ids` read if every one is `owner`'s; false (nothing changed) otherwise.
    pub async fn mark_notifications_read(
        &self,
        owner: OwnerId,
        ids: &[NotificationId],
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let list = |first: usize| {
            (0..ids.len())
                .map(|i| format!("${}", i + first))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut tx = self.pool.begin().await?;
        let count_sql = format!(
            "SELECT COUNT(*) FROM notifications WHERE owner_id = $1 AND id IN ({})",
            list(2)
        );
        let mut count = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql)).bind(owner);
        for id in ids {
            count = count.bind(*id);
        }
        let (owned,) = count.fetch_one(&mut *tx).await?;
        if owned != ids.len() as i64 {
            return Ok(false);
        }
        let update_sql = format!(
            "UPDATE notifications SET read_at = $2 WHERE owner_id = $1 AND read_at IS NULL AND id IN ({})",
            list(3)
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(update_sql)).bind(owner).bind(now);
        for id in ids {
            update = update.bind(*id);
        }
        update.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn mark_all_notifications_read(&self, owner: OwnerId, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE notifications SET read_at = $2 WHERE owner_id = $1 AND read_at IS NULL")
            .bind(owner)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Everything an erased account had here.
    pub async fn erase_notifications(&self, owner: OwnerId) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for table in ["notifications", "notification_settings", "notification_room_mutes"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE owner_id = $1")))
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}
