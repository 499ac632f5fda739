//! Rooms: conversations shared by many accounts. [`Rooms`] holds the rules (who may do what
//! by role, invitations and codes, bans and mutes, limits) and writes every change as a room
//! event, stored then published on the [`RoomBus`]; `messages` is what members post, `watch`
//! the per-user event stream.
//!
//! Roles: the owner does everything (and alone sets roles, transfers ownership and deletes
//! the room); admins update the room, invite, kick, ban and mute members (never the owner or
//! another admin) and delete others' messages; members post, and edit and delete their own.
//! Anyone not a member of a room is answered NOT_FOUND about it.

mod ai;
mod members;
mod mentions;
mod messages;
mod notifications;
mod retention;
mod typing;
mod watch;

pub use notifications::{DEFAULT_NOTIFICATIONS_KEPT, NotificationSettingsChange};
pub use retention::{DEFAULT_EVENTS_KEPT_DAYS, RetentionSweep};

use std::sync::Arc;

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_service_kit::database::now_millis;
use prost::Message as _;

use super::ChatService;
use crate::Error;
use crate::convert;
use crate::ids::{OwnerId, RoomEventId, RoomId};
use crate::room_bus::{RoomBus, RoomEnvelope};
use crate::store::{ChatStore, MemberRow, RoomFields, RoomRole, RoomRow, Visibility};
use crate::user_directory::UserDirectory;
use crate::validation;

/// What rooms may hold; flags with these defaults (see the README).
#[derive(Debug, Clone)]
pub struct RoomLimits {
    pub max_members: i64,
    /// Rooms one account may be a member of.
    pub max_rooms_per_user: i64,
    /// Longest message, in bytes (UTF-8).
    pub max_message_bytes: usize,
    /// Messages one member may post to one room per minute.
    pub messages_per_minute: i64,
    /// Questions the AI member of one room answers per minute.
    pub ai_answers_per_minute: i64,
    /// Rooms of at most this many members show who has read a message.
    pub read_receipts_max_members: i64,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            max_members: 1_000,
            max_rooms_per_user: 200,
            max_message_bytes: 16_384,
            messages_per_minute: 30,
            ai_answers_per_minute: 10,
            read_receipts_max_members: 50,
        }
    }
}

/// "Until unmuted": 9999-12-31T23:59:59Z, the last second a Timestamp can hold.
pub const MUTED_UNTIL_LIFTED: i64 = 253_402_300_799_000;
const MAX_TOPIC_CHARS: usize = 1_000;
/// Account ids are UUIDs; anything else names no account.
const ACCOUNT_ID_LEN: usize = 36;

pub struct Rooms {
    store: ChatStore,
    bus: Arc<RoomBus>,
    limits: RoomLimits,
    /// For the AI member: the owner's API configs, their keys, llm-service.
    chat: Arc<ChatService>,
    /// When each member last had their typing passed on (this instance's throttle).
    typing: typing::TypingThrottle,
    /// Notifications each account keeps (the newest).
    notifications_kept: i64,
    /// Usernames (mentions, invitations by username) live in user-service.
    directory: UserDirectory,
}

/// A room as one of its members sees it.
pub struct InRoom {
    pub room: RoomRow,
    pub me: MemberRow,
}

impl InRoom {
    fn require_owner(&self, what: &str) -> Result<(), Error> {
        if self.me.role == RoomRole::Owner {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!("only the room's owner can {what}")))
        }
    }

    fn require_admin(&self, what: &str) -> Result<(), Error> {
        if matches!(self.me.role, RoomRole::Owner | RoomRole::Admin) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "only the room's owner and admins can {what}"
            )))
        }
    }

    /// Kicking, banning and muting: the owner acts on anyone else, admins on members only.
    fn require_above(&self, target: &MemberRow, what: &str) -> Result<(), Error> {
        self.require_admin(what)?;
        if target.member_id == self.me.member_id {
            return Err(Error::invalid("account_id", format!("you cannot {what} yourself")));
        }
        let allowed = match self.me.role {
            RoomRole::Owner => true,
            RoomRole::Admin => target.role == RoomRole::Member,
            RoomRole::Member => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "admins can only {what} members, not the owner or other admins"
            )))
        }
    }
}

/// The change an UpdateRoom asks for (None: unchanged).
#[derive(Debug, Default)]
pub struct RoomChange {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub visibility: Option<i32>,
    /// 0: keep forever.
    pub retention_days: Option<i32>,
}

impl Rooms {
    pub fn new(chat: Arc<ChatService>, bus: Arc<RoomBus>, limits: RoomLimits, directory: UserDirectory) -> Self {
        Self {
            store: chat.store.clone(),
            bus,
            limits,
            chat,
            typing: Default::default(),
            notifications_kept: DEFAULT_NOTIFICATIONS_KEPT,
            directory,
        }
    }

    /// How many notifications each account keeps (the newest; at least 1).
    pub fn with_notifications_kept(mut self, kept: i64) -> Self {
        self.notifications_kept = kept.max(1);
        self
    }

    /// The room and the caller's membership; NOT_FOUND unless the caller is a member.
    pub async fn in_room(&self, me: OwnerId, room_id: RoomId) -> Result<InRoom, Error> {
        let member = self
            .store
            .member(room_id, me)
            .await?
            .filter(|m| m.banned_at.is_none())
            .ok_or(Error::NotFound("room"))?;
        let room = self.store.room(room_id).await?.ok_or(Error::NotFound("room"))?;
        Ok(InRoom { room, me: member })
    }

    /// The owner id of `account_id`, made if the account never used chat-service (an invitee
    /// may not have). Erased accounts, and anything that is not an account id, are NOT_FOUND.
    async fn account(&self, account_id: &str, create: bool) -> Result<OwnerId, Error> {
        if account_id.is_empty() {
            return Err(Error::invalid("account_id", "must not be empty"));
        }
        if account_id.len() != ACCOUNT_ID_LEN || !account_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(Error::invalid("account_id", "must be an account id (a UUID)"));
        }
        let row = match self.store.owner_by_account(account_id).await? {
            Some(row) => row,
            None if create => self.store.insert_owner(account_id, now_millis()).await?,
            None => return Err(Error::NotFound("member")),
        };
        if row.erased_at.is_some() {
            return Err(Error::NotFound("account"));
        }
        Ok(row.id)
    }

    /// A current member of the room, by account id.
    async fn target_member(&self, room: RoomId, account_id: &str) -> Result<MemberRow, Error> {
        let owner = self.account(account_id, false).await?;
        self.store
            .member(room, owner)
            .await?
            .filter(|m| m.banned_at.is_none())
            .ok_or(Error::NotFound("member"))
    }

    /// Stores the event, then hands it to the bus.
    async fn emit(
        &self,
        room: RoomId,
        subject: Option<OwnerId>,
        subject_only: bool,
        event: Event,
    ) -> Result<(), Error> {
        let now = now_millis();
        let mut event = pb::RoomEvent {
            id: 0,
            room_id: room.0,
            occurred_at: Some(parley_proto::timestamp::from_unix_millis(now)),
            event: Some(event),
        };
        let id = self
            .store
            .insert_room_event(room, subject, subject_only, &event.encode_to_vec(), now)
            .await?;
        event.id = id.0;
        self.bus
            .publish(RoomEnvelope {
                event,
                subject,
                subject_only,
            })
            .await;
        Ok(())
    }

    /// Hands an event that is never stored (typing, AI answer deltas, read marks,
    /// notifications: id 0, no place in the event order) to the bus.
    async fn publish_live(&self, room: RoomId, subject: Option<OwnerId>, subject_only: bool, event: Event) {
        let event = pb::RoomEvent {
            id: 0,
            room_id: room.0,
            occurred_at: Some(parley_proto::timestamp::from_unix_millis(now_millis())),
            event: Some(event),
        };
        self.bus
            .publish(RoomEnvelope {
                event,
                subject,
                subject_only,
            })
            .await;
    }

    async fn room_updated(&self, room: RoomId) -> Result<pb::Room, Error> {
        let row = self.store.room(room).await?.ok_or(Error::NotFound("room"))?;
        let room = convert::room(&row, None, self.read_receipts_shown(&row));
        self.emit(row.id, None, false, Event::RoomUpdated(room.clone())).await?;
        Ok(room)
    }

    // ---- rooms ----

    pub async fn create_room(&self, me: OwnerId, name: &str, topic: &str, visibility: i32) -> Result<pb::Room, Error> {
        let name = name.trim();
        validation::name("name", name)?;
        validate_topic(topic)?;
        let visibility = visibility_from(visibility)?;
        self.check_room_count(me).await?;
        let id = self
            .store
            .insert_room(
                me,
                &RoomFields {
                    name,
                    topic,
                    visibility,
                    retention_days: None,
                },
                now_millis(),
            )
            .await?;
        // The owner's streams start carrying the room with this.
        if let Some(owner) = self.store.member(id, me).await? {
            self.emit(id, Some(me), false, Event::MemberJoined(convert::member(&owner)))
                .await?;
        }
        self.get_room(me, id).await
    }

    pub async fn get_room(&self, me: OwnerId, room: RoomId) -> Result<pb::Room, Error> {
        let in_room = self.in_room(me, room).await?;
        self.room_for_member(&in_room.room, &in_room.me).await
    }

    /// The room as `member` sees it: their role and unread count.
    async fn room_for_member(&self, room: &RoomRow, member: &MemberRow) -> Result<pb::Room, Error> {
        let mut shown = convert::room(room, Some(member.role), self.read_receipts_shown(room));
        shown.unread_count = self
            .store
            .unread_count(room.session_id, member.member_id, member.last_read_message_id)
            .await?;
        Ok(shown)
    }

    pub async fn update_room(&self, me: OwnerId, room: RoomId, change: RoomChange) -> Result<pb::Room, Error> {
        let in_room = self.in_room(me, room).await?;
        in_room.require_admin("update the room")?;
        let name = change.name.as_deref().map(str::trim).unwrap_or(&in_room.room.name);
        validation::name("name", name)?;
        let topic = change.topic.as_deref().unwrap_or(&in_room.room.topic);
        validate_topic(topic)?;
        let visibility = match change.visibility {
            Some(v) => visibility_from(v)?,
            None => in_room.room.visibility,
        };
        let retention_days = match change.retention_days {
            Some(days) => retention::days_from(days)?,
            None => in_room.room.retention_days,
        };
        self.store
            .update_room(
                room,
                &RoomFields {
                    name,
                    topic,
                    visibility,
                    retention_days,
                },
                now_millis(),
            )
            .await?;
        let mut updated = self.room_updated(room).await?;
        updated.my_role = convert::role(in_room.me.role) as i32;
        Ok(updated)
    }

    pub async fn delete_room(&self, me: OwnerId, room: RoomId) -> Result<(), Error> {
        let in_room = self.in_room(me, room).await?;
        in_room.require_owner("delete the room")?;
        // The event first: the members must still be found to be told.
        self.emit(room, None, false, Event::RoomDeleted(room.0)).await?;
        // An answer the AI member is writing here ends with the room.
        self.chat
            .registry
            .stop_session(in_room.room.session_id, crate::generation::StopReason::SessionDeleted);
        self.store.delete_room(&in_room.room).await?;
        Ok(())
    }

    pub async fn my_rooms(&self, me: OwnerId) -> Result<Vec<pb::Room>, Error> {
        let mut rooms = Vec::new();
        for (room, member) in self.store.rooms_of(me).await? {
            rooms.push(self.room_for_member(&room, &member).await?);
        }
        Ok(rooms)
    }

    pub async fn search_public_rooms(
        &self,
        me: OwnerId,
        query: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<pb::Room>, String), Error> {
        let limit = validation::page_size("page_size", page_size)?;
        if query.contains('\0') || query.chars().count() > validation::MAX_NAME_CHARS {
            return Err(Error::invalid(
                "query",
                format!("must be at most {} characters, without NUL", validation::MAX_NAME_CHARS),
            ));
        }
        let after = if page_token.is_empty() {
            None
        } else {
            Some(
                crate::page_token::RoomCursor::decode(page_token)
                    .ok_or_else(|| Error::invalid("page_token", "not a token from a previous response"))?,
            )
        };
        let pattern = query.trim().to_lowercase().replace(['%', '_'], "");
        let rows = self
            .store
            .public_rooms(&pattern, after.map(|c| (c.last_active_at, c.id)), i64::from(limit) + 1)
            .await?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next = match rows.last() {
            Some(last) if more => crate::page_token::RoomCursor {
                last_active_at: last.last_active_at,
                id: last.id,
            }
            .encode(),
            _ => String::new(),
        };
        let mine = self.store.rooms_of(me).await?;
        let rooms = rows
            .iter()
            .map(|row| {
                let role = mine.iter().find(|(r, _)| r.id == row.id).map(|(_, m)| m.role);
                convert::room(row, role, self.read_receipts_shown(row))
            })
            .collect();
        Ok((rooms, next))
    }

    async fn check_room_count(&self, me: OwnerId) -> Result<(), Error> {
        if self.store.room_count_of(me).await? >= self.limits.max_rooms_per_user {
            return Err(Error::LimitReached(format!(
                "you are in {} rooms, the most one account may be in",
                self.limits.max_rooms_per_user
            )));
        }
        Ok(())
    }

    /// The id of the newest event, where a stream asking for "only new events" starts.
    pub async fn last_event_id(&self) -> Result<RoomEventId, Error> {
        Ok(self.store.last_room_event_id().await?)
    }
}

fn validate_topic(topic: &str) -> Result<(), Error> {
    if topic.contains('\0') {
        return Err(Error::invalid("topic", "must not contain NUL characters"));
    }
    if topic.chars().count() > MAX_TOPIC_CHARS {
        return Err(Error::invalid(
            "topic",
            format!("must be at most {MAX_TOPIC_CHARS} characters"),
        ));
    }
    Ok(())
}

fn visibility_from(value: i32) -> Result<Visibility, Error> {
    match pb::RoomVisibility::try_from(value) {
        Ok(pb::RoomVisibility::Public) => Ok(Visibility::Public),
        Ok(pb::RoomVisibility::Private) => Ok(Visibility::Private),
        _ => Err(Error::invalid(
            "visibility",
            "must be ROOM_VISIBILITY_PUBLIC or ROOM_VISIBILITY_PRIVATE",
        )),
    }
}
