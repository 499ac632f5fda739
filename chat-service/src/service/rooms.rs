//! Rooms: conversations shared by many accounts. [`Rooms`] holds the rules (who may do what
//! by role, invitations and codes, bans and mutes, limits) and writes every change as a room
//! event, stored then published on the [`RoomBus`]; `messages` is what members post, `watch`
//! the per-user event stream.
//!
//! Roles: the owner does everything (and alone sets roles, transfers ownership and deletes
//! the room); admins update the room, invite, kick, ban and mute members (never the owner or
//! another admin) and delete others' messages; members post, and edit and delete their own.
//! Anyone not a member of a room is answered NOT_FOUND about it.

mod messages;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_service_kit::database::now_millis;
use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::convert;
use crate::ids::{OwnerId, RoomEventId, RoomId, RoomInviteId};
use crate::room_bus::{RoomBus, RoomEnvelope};
use crate::store::{ChatStore, MemberRow, RoomFields, RoomRole, RoomRow, Visibility};
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
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            max_members: 1_000,
            max_rooms_per_user: 200,
            max_message_bytes: 16_384,
            messages_per_minute: 30,
        }
    }
}

/// "Until unmuted": 9999-12-31T23:59:59Z, the last second a Timestamp can hold.
pub const MUTED_UNTIL_LIFTED: i64 = 253_402_300_799_000;
const MAX_TOPIC_CHARS: usize = 1_000;
const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_CODE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Account ids are UUIDs; anything else names no account.
const ACCOUNT_ID_LEN: usize = 36;

pub struct Rooms {
    store: ChatStore,
    bus: Arc<RoomBus>,
    limits: RoomLimits,
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
            Err(Error::PermissionDenied(format!("only the room's owner and admins can {what}")))
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
}

/// A new invite code, shown once.
pub struct NewInviteCode {
    pub code: String,
    pub expires_at: i64,
    pub max_uses: Option<i64>,
}

impl Rooms {
    pub fn new(store: ChatStore, bus: Arc<RoomBus>, limits: RoomLimits) -> Self {
        Self { store, bus, limits }
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
    async fn emit(&self, room: RoomId, subject: Option<OwnerId>, subject_only: bool, event: Event) -> Result<(), Error> {
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

    async fn room_updated(&self, room: RoomId) -> Result<pb::Room, Error> {
        let row = self.store.room(room).await?.ok_or(Error::NotFound("room"))?;
        let room = convert::room(&row, None);
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
            .insert_room(me, &RoomFields { name, topic, visibility }, now_millis())
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
        Ok(convert::room(&in_room.room, Some(in_room.me.role)))
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
        self.store
            .update_room(room, &RoomFields { name, topic, visibility }, now_millis())
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
        self.store.delete_room(&in_room.room).await?;
        Ok(())
    }

    pub async fn my_rooms(&self, me: OwnerId) -> Result<Vec<pb::Room>, Error> {
        Ok(self
            .store
            .rooms_of(me)
            .await?
            .iter()
            .map(|(room, member)| convert::room(room, Some(member.role)))
            .collect())
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
                convert::room(row, role)
            })
            .collect();
        Ok((rooms, next))
    }

    // ---- joining and leaving ----

    async fn check_room_count(&self, me: OwnerId) -> Result<(), Error> {
        if self.store.room_count_of(me).await? >= self.limits.max_rooms_per_user {
            return Err(Error::LimitReached(format!(
                "you are in {} rooms, the most one account may be in",
                self.limits.max_rooms_per_user
            )));
        }
        Ok(())
    }

    /// Whether `me` may join `room` now: not banned, and within the limits. `Ok(true)`: already
    /// a member (joining again changes nothing).
    async fn check_admission(&self, me: OwnerId, room: &RoomRow) -> Result<bool, Error> {
        if let Some(row) = self.store.member(room.id, me).await? {
            if row.banned_at.is_some() {
                return Err(Error::PermissionDenied("you are banned from this room".into()));
            }
            return Ok(true);
        }
        if room.member_count >= self.limits.max_members {
            return Err(Error::LimitReached(format!(
                "the room has {} members, the most a room may have",
                self.limits.max_members
            )));
        }
        self.check_room_count(me).await?;
        Ok(false)
    }

    async fn admit(&self, me: OwnerId, room: RoomId) -> Result<pb::Room, Error> {
        if self.store.add_member(room, me, RoomRole::Member, now_millis()).await? {
            if let Some(member) = self.store.member(room, me).await? {
                self.emit(room, Some(me), false, Event::MemberJoined(convert::member(&member)))
                    .await?;
            }
        }
        self.get_room(me, room).await
    }

    pub async fn join_public_room(&self, me: OwnerId, room: RoomId) -> Result<pb::Room, Error> {
        let row = self
            .store
            .room(room)
            .await?
            .filter(|r| r.visibility == Visibility::Public)
            .ok_or(Error::NotFound("room"))?;
        self.check_admission(me, &row).await?;
        self.admit(me, room).await
    }

    pub async fn leave_room(&self, me: OwnerId, room: RoomId) -> Result<(), Error> {
        let in_room = self.in_room(me, room).await?;
        if in_room.me.role == RoomRole::Owner {
            return Err(Error::FailedPrecondition(
                "the owner cannot leave the room: transfer ownership first, or delete the room".into(),
            ));
        }
        // Told before it goes, so the leaver's own stream hears it too.
        self.emit(room, Some(me), false, Event::MemberLeft(in_room.me.account_id.clone()))
            .await?;
        self.store.remove_member(room, me).await?;
        Ok(())
    }

    // ---- members ----

    pub async fn members(&self, me: OwnerId, room: RoomId) -> Result<Vec<pb::RoomMember>, Error> {
        self.in_room(me, room).await?;
        Ok(self.store.members(room).await?.iter().map(convert::member).collect())
    }

    async fn member_updated(&self, room: RoomId, member: OwnerId) -> Result<pb::RoomMember, Error> {
        let row = self.store.member(room, member).await?.ok_or(Error::NotFound("member"))?;
        let member = convert::member(&row);
        self.emit(room, Some(row.member_id), false, Event::MemberUpdated(member.clone()))
            .await?;
        Ok(member)
    }

    pub async fn set_member_role(
        &self,
        me: OwnerId,
        room: RoomId,
        account_id: &str,
        role: i32,
    ) -> Result<pb::RoomMember, Error> {
        let in_room = self.in_room(me, room).await?;
        in_room.require_owner("set roles")?;
        let role = match pb::RoomRole::try_from(role) {
            Ok(pb::RoomRole::Admin) => RoomRole::Admin,
            Ok(pb::RoomRole::Member) => RoomRole::Member,
            Ok(pb::RoomRole::Owner) => {
                return Err(Error::invalid("role", "use TransferOwnership to make someone the owner"));
            }
            _ => return Err(Error::invalid("role", "must be ROOM_ROLE_ADMIN or ROOM_ROLE_MEMBER")),
        };
        let target = self.target_member(room, account_id).await?;
        if target.member_id == me {
            return Err(Error::invalid("account_id", "the owner's role changes only by TransferOwnership"));
        }
        self.store.set_member_role(room, target.member_id, role).await?;
        self.member_updated(room, target.member_id).await
    }

    pub async fn transfer_ownership(&self, me: OwnerId, room: RoomId, account_id: &str) -> Result<pb::Room, Error> {
        let in_room = self.in_room(me, room).await?;
        in_room.require_owner("transfer ownership")?;
        let target = self.target_member(room, account_id).await?;
        if target.member_id == me {
            return Err(Error::invalid("account_id", "you already own this room"));
        }
        self.store
            .transfer_ownership(room, me, target.member_id, now_millis())
            .await?;
        self.member_updated(room, target.member_id).await?;
        self.member_updated(room, me).await?;
        let mut updated = self.room_updated(room).await?;
        updated.my_role = pb::RoomRole::Admin as i32;
        Ok(updated)
    }

    pub async fn kick(&self, me: OwnerId, room: RoomId, account_id: &str) -> Result<(), Error> {
        self.remove(me, room, account_id, false).await
    }

    pub async fn ban(&self, me: OwnerId, room: RoomId, account_id: &str) -> Result<(), Error> {
        self.remove(me, room, account_id, true).await
    }

    /// Takes a member out (for good when `ban`); their streams stop carrying the room with
    /// the event that says so.
    async fn remove(&self, me: OwnerId, room: RoomId, account_id: &str, ban: bool) -> Result<(), Error> {
        let in_room = self.in_room(me, room).await?;
        let what = if ban { "ban" } else { "kick" };
        let target = self.target_member(room, account_id).await?;
        in_room.require_above(&target, what)?;
        if ban {
            self.store.ban_member(room, target.member_id, now_millis()).await?;
        } else {
            self.store.remove_member(room, target.member_id).await?;
        }
        let removed = pb::MemberRemoved {
            account_id: target.account_id.clone(),
            by_account_id: in_room.me.account_id.clone(),
            banned: ban,
        };
        self.emit(room, Some(target.member_id), false, Event::MemberRemoved(removed))
            .await
    }

    pub async fn unban(&self, me: OwnerId, room: RoomId, account_id: &str) -> Result<(), Error> {
        let in_room = self.in_room(me, room).await?;
        in_room.require_admin("unban")?;
        let owner = self.account(account_id, false).await?;
        match self.store.member(room, owner).await? {
            Some(row) if row.banned_at.is_some() => {
                self.store.remove_member(room, owner).await?;
                Ok(())
            }
            _ => Err(Error::NotFound("ban")),
        }
    }

    /// `duration` None mutes until unmuted.
    pub async fn mute(
        &self,
        me: OwnerId,
        room: RoomId,
        account_id: &str,
        duration_seconds: i64,
    ) -> Result<pb::RoomMember, Error> {
        if duration_seconds < 0 {
            return Err(Error::invalid("duration_seconds", "must not be negative (0 mutes until unmuted)"));
        }
        let in_room = self.in_room(me, room).await?;
        let target = self.target_member(room, account_id).await?;
        in_room.require_above(&target, "mute")?;
        let until = if duration_seconds == 0 {
            MUTED_UNTIL_LIFTED
        } else {
            now_millis()
                .saturating_add(duration_seconds.saturating_mul(1000))
                .min(MUTED_UNTIL_LIFTED)
        };
        self.store.set_muted_until(room, target.member_id, Some(until)).await?;
        self.member_updated(room, target.member_id).await
    }

    pub async fn unmute(&self, me: OwnerId, room: RoomId, account_id: &str) -> Result<pb::RoomMember, Error> {
        let in_room = self.in_room(me, room).await?;
        let target = self.target_member(room, account_id).await?;
        in_room.require_above(&target, "unmute")?;
        self.store.set_muted_until(room, target.member_id, None).await?;
        self.member_updated(room, target.member_id).await
    }

    // ---- invitations ----

    pub async fn invite(&self, me: OwnerId, room: RoomId, account_id: &str) -> Result<pb::RoomInvitation, Error> {
        let in_room = self.in_room(me, room).await?;
        in_room.require_admin("invite")?;
        let invitee = self.account(account_id, true).await?;
        match self.store.member(room, invitee).await? {
            Some(row) if row.banned_at.is_some() => {
                return Err(Error::FailedPrecondition(
                    "that account is banned from this room; unban it first".into(),
                ));
            }
            Some(_) => {
                return Err(Error::AlreadyExists {
                    field: "account_id",
                    reason: "is already a member of this room".into(),
                });
            }
            None => {}
        }
        if let Some(pending) = self.store.pending_invitation_to(room, invitee).await? {
            return Ok(convert::invitation(&pending));
        }
        let id = self.store.insert_invitation(room, me, invitee, now_millis()).await?;
        let row = self
            .store
            .invitation(id, invitee)
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        let invitation = convert::invitation(&row);
        self.emit(room, Some(invitee), true, Event::Invited(invitation.clone()))
            .await?;
        Ok(invitation)
    }

    pub async fn my_invitations(&self, me: OwnerId) -> Result<Vec<pb::RoomInvitation>, Error> {
        Ok(self
            .store
            .invitations_of(me)
            .await?
            .iter()
            .map(convert::invitation)
            .collect())
    }

    /// Accepting joins the room (bans and limits still apply); declining only answers it.
    pub async fn respond_to_invitation(
        &self,
        me: OwnerId,
        id: RoomInviteId,
        accept: bool,
    ) -> Result<Option<pb::Room>, Error> {
        let invitation = self
            .store
            .invitation(id, me)
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        if accept {
            let room = self
                .store
                .room(invitation.room_id)
                .await?
                .ok_or(Error::NotFound("invitation"))?;
            self.check_admission(me, &room).await?;
        }
        if !self.store.respond_to_invitation(id, now_millis()).await? {
            return Err(Error::NotFound("invitation"));
        }
        if accept {
            Ok(Some(self.admit(me, invitation.room_id).await?))
        } else {
            Ok(None)
        }
    }

    pub async fn create_invite_code(
        &self,
        me: OwnerId,
        room: RoomId,
        expires_in_seconds: i64,
        max_uses: i32,
    ) -> Result<NewInviteCode, Error> {
        let lifetime = match expires_in_seconds {
            0 => DEFAULT_CODE_LIFETIME,
            s if s < 0 => return Err(Error::invalid("expires_in_seconds", "must not be negative")),
            s if s as u64 > MAX_CODE_LIFETIME.as_secs() => {
                return Err(Error::invalid(
                    "expires_in_seconds",
                    format!("must be at most {} (a year)", MAX_CODE_LIFETIME.as_secs()),
                ));
            }
            s => Duration::from_secs(s as u64),
        };
        let max_uses = match max_uses {
            0 => None,
            n if n < 0 => return Err(Error::invalid("max_uses", "must not be negative (0: no limit)")),
            n => Some(i64::from(n)),
        };
        let in_room = self.in_room(me, room).await?;
        in_room.require_admin("create invite codes")?;
        let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let now = now_millis();
        let expires_at = now + lifetime.as_millis() as i64;
        self.store
            .insert_invite_code(room, me, &code_hash(&code), expires_at, max_uses, now)
            .await?;
        Ok(NewInviteCode {
            code,
            expires_at,
            max_uses,
        })
    }

    pub async fn join_by_code(&self, me: OwnerId, code: &str) -> Result<pb::Room, Error> {
        let code = code.trim();
        if code.is_empty() {
            return Err(Error::invalid("code", "must not be empty"));
        }
        let invite = self
            .store
            .invite_code(&code_hash(code))
            .await?
            .ok_or(Error::NotFound("invite code"))?;
        let room = self.store.room(invite.room_id).await?.ok_or(Error::NotFound("invite code"))?;
        if self.check_admission(me, &room).await? {
            return self.get_room(me, room.id).await;
        }
        let now = now_millis();
        if invite.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::FailedPrecondition("this invite code has expired".into()));
        }
        if !self.store.use_invite_code(invite.id, now).await? {
            return Err(Error::FailedPrecondition("this invite code has been used up".into()));
        }
        self.admit(me, room.id).await
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
        return Err(Error::invalid("topic", format!("must be at most {MAX_TOPIC_CHARS} characters")));
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

/// Codes are stored only as this hash (they are bearer secrets, like refresh tokens).
fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}
