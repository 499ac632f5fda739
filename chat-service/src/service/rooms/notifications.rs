//! Notifications: what happened that concerns one account (mentions, invitations, role
//! changes, removals, administrators' announcements). Each is stored for its recipient (the
//! newest `notifications_kept` per account stay) and then sent live on the room bus to the
//! recipient's own streams only (event id 0, like typing: never in `room_events`, so a
//! resumed stream does not replay it; ListNotifications is the record). Settings decide what
//! is notified: each kind can be turned off, and a muted room notifies nothing.

use std::collections::BTreeSet;

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_proto::timestamp::from_unix_millis;
use parley_service_kit::database::now_millis;
use prost::Message as _;

use super::Rooms;
use crate::Error;
use crate::ids::{NotificationId, OwnerId, RoomId};
use crate::page_token::NotificationCursor;
use crate::service::Administrator;
use crate::store::{NotificationRow, NotificationSettingsRow, NotificationsKept};
use crate::validation;

/// Notifications each account keeps unless configured otherwise.
pub const DEFAULT_NOTIFICATIONS_KEPT: i64 = 500;
/// A mention's notification carries the message's start.
const EXCERPT_CHARS: usize = 280;
const MAX_ANNOUNCEMENT_CHARS: usize = 2_000;
/// Ids one MarkNotificationsRead may name.
const MAX_MARKED_IDS: usize = 100;
/// An announcement is published once per recipient; the publisher yields this often so the
/// streams drain the bus as it goes.
const PUBLISH_YIELD_EVERY: usize = 256;

/// A change of notification settings (None: unchanged).
#[derive(Debug, Default)]
pub struct NotificationSettingsChange {
    pub mentions: Option<bool>,
    pub invitations: Option<bool>,
    pub role_changes: Option<bool>,
    pub removals: Option<bool>,
    pub announcements: Option<bool>,
    pub muted_room_ids: Option<Vec<i64>>,
}

/// The stored word of a kind, and whether the recipient's settings let it through.
fn kind_allowed(kind: pb::NotificationKind, settings: &NotificationSettingsRow) -> Option<(&'static str, bool)> {
    let (word, flag) = match kind {
        pb::NotificationKind::Mention => ("mention", settings.mentions),
        pb::NotificationKind::Invitation => ("invitation", settings.invitations),
        pb::NotificationKind::RoleChanged => ("role_changed", settings.role_changes),
        pb::NotificationKind::Removed => ("removed", settings.removals),
        pb::NotificationKind::Announcement => ("announcement", settings.announcements),
        pb::NotificationKind::Unspecified => return None,
    };
    Some((word, flag != 0))
}

/// The start of a message, for a mention's notification.
pub(super) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn notification_from(row: &NotificationRow) -> Option<pb::Notification> {
    let mut notification = match pb::Notification::decode(row.payload.as_slice()) {
        Ok(notification) => notification,
        Err(e) => {
            tracing::warn!(notification_id = row.id.0, error = %e, "undecodable stored notification skipped");
            return None;
        }
    };
    notification.id = row.id.0;
    notification.created_at = Some(from_unix_millis(row.created_at));
    notification.read_at = row.read_at.map(from_unix_millis);
    Some(notification)
}

fn settings_to_proto(row: &NotificationSettingsRow, muted: &[RoomId]) -> pb::NotificationSettings {
    pb::NotificationSettings {
        mentions: row.mentions != 0,
        invitations: row.invitations != 0,
        role_changes: row.role_changes != 0,
        removals: row.removals != 0,
        announcements: row.announcements != 0,
        muted_room_ids: muted.iter().map(|id| id.0).collect(),
        updated_at: row.updated_at.map(from_unix_millis),
    }
}

impl Rooms {
    fn kept(&self) -> NotificationsKept {
        NotificationsKept(self.notifications_kept.max(1))
    }

    /// Notifies `recipient` unless their settings say otherwise (the kind is off, or the room
    /// it is about is muted). What caused it already happened and stays: a failure here is
    /// logged, not answered.
    pub(super) async fn notify(&self, recipient: OwnerId, notification: pb::Notification) {
        if let Err(e) = self.try_notify(recipient, notification).await {
            tracing::warn!(owner_id = recipient.0, error = %e, "could not store a notification");
        }
    }

    async fn try_notify(&self, recipient: OwnerId, mut notification: pb::Notification) -> Result<(), Error> {
        let settings = self.store.notification_settings(recipient).await?;
        let Some((word, allowed)) = kind_allowed(notification.kind(), &settings) else {
            return Ok(());
        };
        if !allowed {
            return Ok(());
        }
        if notification.room_id != 0 && self.store.room_muted(recipient, RoomId(notification.room_id)).await? {
            return Ok(());
        }
        let now = now_millis();
        let id = self
            .store
            .insert_notification(recipient, word, &notification.encode_to_vec(), now, self.kept())
            .await?;
        notification.id = id.0;
        notification.created_at = Some(from_unix_millis(now));
        self.send_notification(recipient, notification).await;
        Ok(())
    }

    /// Hands a stored notification to the recipient's streams (on every instance).
    async fn send_notification(&self, recipient: OwnerId, notification: pb::Notification) {
        let room = RoomId(notification.room_id);
        self.publish_live(room, Some(recipient), true, Event::Notification(notification))
            .await;
    }

    /// The caller's notifications, newest first, the next page's token and their unread count.
    pub async fn list_notifications(
        &self,
        me: OwnerId,
        page_size: i32,
        page_token: &str,
        unread_only: bool,
    ) -> Result<(Vec<pb::Notification>, String, i64), Error> {
        let limit = validation::page_size("page_size", page_size)?;
        let before = if page_token.is_empty() {
            None
        } else {
            Some(
                NotificationCursor::decode(page_token)
                    .ok_or_else(|| Error::invalid("page_token", "not a token from a previous response"))?
                    .id,
            )
        };
        let mut rows = self
            .store
            .notifications(me, before, unread_only, i64::from(limit) + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = match rows.last() {
            Some(last) if more => NotificationCursor { id: last.id }.encode(),
            _ => String::new(),
        };
        let unread = self.store.unread_notifications(me).await?;
        Ok((rows.iter().filter_map(notification_from).collect(), next, unread))
    }

    /// Marks the named notifications (all of them the caller's, or NOT_FOUND and nothing
    /// changes) or every one read; answers the unread count after.
    pub async fn mark_notifications_read(&self, me: OwnerId, ids: &[i64], all: bool) -> Result<i64, Error> {
        let now = now_millis();
        if all {
            self.store.mark_all_notifications_read(me, now).await?;
            return Ok(self.store.unread_notifications(me).await?);
        }
        if ids.is_empty() {
            return Err(Error::invalid(
                "notification_ids",
                "name at least one notification, or set `all`",
            ));
        }
        if ids.len() > MAX_MARKED_IDS {
            return Err(Error::invalid(
                "notification_ids",
                format!("at most {MAX_MARKED_IDS} at a time (or set `all`)"),
            ));
        }
        if ids.iter().any(|&id| id <= 0) {
            return Err(Error::invalid("notification_ids", "ids are positive"));
        }
        let ids: Vec<NotificationId> = ids
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(NotificationId)
            .collect();
        if !self.store.mark_notifications_read(me, &ids, now).await? {
            return Err(Error::NotFound("notification"));
        }
        Ok(self.store.unread_notifications(me).await?)
    }

    pub async fn notification_settings(&self, me: OwnerId) -> Result<pb::NotificationSettings, Error> {
        let row = self.store.notification_settings(me).await?;
        let muted = self.store.muted_rooms(me).await?;
        Ok(settings_to_proto(&row, &muted))
    }

    /// Muted rooms must be rooms the caller is in (others' are NOT_FOUND); nothing changes
    /// unless all of the change is valid.
    pub async fn update_notification_settings(
        &self,
        me: OwnerId,
        change: NotificationSettingsChange,
    ) -> Result<pb::NotificationSettings, Error> {
        let muted = match change.muted_room_ids {
            Some(ids) => {
                if ids.len() as i64 > self.limits.max_rooms_per_user {
                    return Err(Error::invalid(
                        "settings.muted_room_ids",
                        format!("at most {} rooms", self.limits.max_rooms_per_user),
                    ));
                }
                if ids.iter().any(|&id| id <= 0) {
                    return Err(Error::invalid("settings.muted_room_ids", "room ids are positive"));
                }
                let ids: BTreeSet<i64> = ids.into_iter().collect();
                let mut rooms = Vec::with_capacity(ids.len());
                for id in ids {
                    self.in_room(me, RoomId(id)).await?;
                    rooms.push(RoomId(id));
                }
                Some(rooms)
            }
            None => None,
        };
        let mut row = self.store.notification_settings(me).await?;
        let set = |slot: &mut i64, value: Option<bool>| {
            if let Some(value) = value {
                *slot = i64::from(value);
            }
        };
        set(&mut row.mentions, change.mentions);
        set(&mut row.invitations, change.invitations);
        set(&mut row.role_changes, change.role_changes);
        set(&mut row.removals, change.removals);
        set(&mut row.announcements, change.announcements);
        self.store
            .save_notification_settings(me, &row, muted.as_deref(), now_millis())
            .await?;
        self.notification_settings(me).await
    }

    /// An administrator's announcement to every account; answers the caller's own copy (if
    /// they take announcements) and how many accounts got it.
    pub async fn post_announcement(
        &self,
        _: &Administrator,
        me: OwnerId,
        my_account_id: &str,
        text: &str,
    ) -> Result<(Option<pb::Notification>, i64), Error> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::invalid("text", "must not be empty"));
        }
        if text.contains('\0') {
            return Err(Error::invalid("text", "must not contain NUL characters"));
        }
        if text.chars().count() > MAX_ANNOUNCEMENT_CHARS {
            return Err(Error::invalid(
                "text",
                format!("must be at most {MAX_ANNOUNCEMENT_CHARS} characters"),
            ));
        }
        let notification = pb::Notification {
            kind: pb::NotificationKind::Announcement as i32,
            actor_account_id: my_account_id.to_owned(),
            text: text.to_owned(),
            ..Default::default()
        };
        let now = now_millis();
        let recipients = self
            .store
            .insert_announcement(&notification.encode_to_vec(), now, self.kept())
            .await?;
        let mut mine = None;
        for (i, (id, owner)) in recipients.iter().enumerate() {
            let mut copy = notification.clone();
            copy.id = id.0;
            copy.created_at = Some(from_unix_millis(now));
            if *owner == me {
                mine = Some(copy.clone());
            }
            self.send_notification(*owner, copy).await;
            if (i + 1) % PUBLISH_YIELD_EVERY == 0 {
                tokio::task::yield_now().await;
            }
        }
        Ok((mine, recipients.len() as i64))
    }
}
