//! Membership: joining (public rooms, invitations, invite codes) and leaving, roles and
//! ownership, kicks, bans and mutes.

use std::time::Duration;

use base64::Engine as _;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_service_kit::database::now_millis;
use sha2::{Digest, Sha256};

use super::{MUTED_UNTIL_LIFTED, Rooms};
use crate::Error;
use crate::convert;
use crate::ids::{OwnerId, RoomId, RoomInviteId};
use crate::store::{RoomRole, RoomRow, Visibility};
use crate::user_directory::CallerToken;

const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_CODE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A new invite code, shown once.
pub struct NewInviteCode {
    pub code: String,
    pub expires_at: i64,
    pub max_uses: Option<i64>,
}

impl Rooms {
    // ---- joining and leaving ----

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
        if self.store.add_member(room, me, RoomRole::Member, now_millis()).await?
            && let Some(member) = self.store.member(room, me).await?
        {
            self.emit(room, Some(me), false, Event::MemberJoined(convert::member(&member)))
                .await?;
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
        let row = self
            .store
            .member(room, member)
            .await?
            .ok_or(Error::NotFound("member"))?;
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
                return Err(Error::invalid(
                    "role",
                    "use TransferOwnership to make someone the owner",
                ));
            }
            _ => return Err(Error::invalid("role", "must be ROOM_ROLE_ADMIN or ROOM_ROLE_MEMBER")),
        };
        let target = self.target_member(room, account_id).await?;
        if target.member_id == me {
            return Err(Error::invalid(
                "account_id",
                "the owner's role changes only by TransferOwnership",
            ));
        }
        self.store.set_member_role(room, target.member_id, role).await?;
        let member = self.member_updated(room, target.member_id).await?;
        if target.role != role {
            self.notify_role(&in_room, target.member_id, convert::role(role)).await;
        }
        Ok(member)
    }

    /// Tells `member` their role in the room is now `role`.
    async fn notify_role(&self, in_room: &super::InRoom, member: OwnerId, role: pb::RoomRole) {
        let notification = pb::Notification {
            kind: pb::NotificationKind::RoleChanged as i32,
            room_id: in_room.room.id.0,
            room_name: in_room.room.name.clone(),
            actor_account_id: in_room.me.account_id.clone(),
            role: role as i32,
            ..Default::default()
        };
        self.notify(member, notification).await;
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
        self.notify_role(&in_room, target.member_id, pb::RoomRole::Owner).await;
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
            .await?;
        let notification = pb::Notification {
            kind: pb::NotificationKind::Removed as i32,
            room_id: room.0,
            room_name: in_room.room.name.clone(),
            actor_account_id: in_room.me.account_id.clone(),
            banned: ban,
            ..Default::default()
        };
        self.notify(target.member_id, notification).await;
        Ok(())
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
            return Err(Error::invalid(
                "duration_seconds",
                "must not be negative (0 mutes until unmuted)",
            ));
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

    /// Invites the account named by its id or (exactly one of the two) its username.
    pub async fn invite(
        &self,
        me: OwnerId,
        room: RoomId,
        account_id: &str,
        username: &str,
        caller: Option<CallerToken>,
    ) -> Result<pb::RoomInvitation, Error> {
        let username = username.trim().trim_start_matches('@');
        match (account_id.is_empty(), username.is_empty()) {
            (true, true) => {
                return Err(Error::invalid(
                    "account_id",
                    "name the invitee by account_id or username",
                ));
            }
            (false, false) => return Err(Error::invalid("username", "give account_id or username, not both")),
            _ => {}
        }
        if username.contains('\0') || username.chars().count() > 64 {
            return Err(Error::invalid("username", "not a username"));
        }
        let in_room = self.in_room(me, room).await?;
        in_room.require_admin("invite")?;
        let account_id = if username.is_empty() {
            account_id.to_owned()
        } else {
            let caller = caller.ok_or(Error::NotFound("account"))?;
            let found = self
                .directory
                .accounts_named(&caller, vec![username.to_owned()])
                .await?;
            match found.as_slice() {
                [one] => one.clone(),
                _ => return Err(Error::NotFound("account with that username")),
            }
        };
        let invitee = self.account(&account_id, true).await?;
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
        let notification = pb::Notification {
            kind: pb::NotificationKind::Invitation as i32,
            room_id: room.0,
            room_name: in_room.room.name.clone(),
            actor_account_id: in_room.me.account_id.clone(),
            invitation_id: invitation.id,
            ..Default::default()
        };
        self.notify(invitee, notification).await;
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
        let room = self
            .store
            .room(invite.room_id)
            .await?
            .ok_or(Error::NotFound("invite code"))?;
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
}

/// Codes are stored only as this hash (they are bearer secrets, like refresh tokens).
fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}
