//! `room_invites`: invitations of one account, and invite codes (stored as hashes).

use parley_service_kit::database::flag;

use crate::ids::{OwnerId, RoomId, RoomInviteId};
use crate::store::ChatStore;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: RoomInviteId,
    pub room_id: RoomId,
    pub room_name: String,
    pub inviter_account: String,
    pub invitee_id: OwnerId,
    pub invitee_account: String,
    pub created_at: i64,
}

const INVITATION_SELECT: &str = "SELECT i.id, i.room_id, r.name AS room_name, \
     COALESCE(a.account_id, '') AS inviter_account, i.invitee_id, COALESCE(b.account_id, '') AS invitee_account, \
     i.created_at FROM room_invites i JOIN rooms r ON r.id = i.room_id \
     JOIN chat_owners a ON a.id = i.inviter_id JOIN chat_owners b ON b.id = i.invitee_id";

/// An invite code as found by its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InviteCodeRow {
    pub id: RoomInviteId,
    pub room_id: RoomId,
    pub expires_at: Option<i64>,
    pub max_uses: Option<i64>,
    pub uses: i64,
}

impl ChatStore {
    pub async fn insert_invitation(
        &self,
        room: RoomId,
        inviter: OwnerId,
        invitee: OwnerId,
        now: i64,
    ) -> Result<RoomInviteId, sqlx::Error> {
        let (id,): (RoomInviteId,) = sqlx::query_as(
            "INSERT INTO room_invites (room_id, inviter_id, invitee_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(room)
        .bind(inviter)
        .bind(invitee)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// A pending invitation of `invitee` (only theirs).
    pub async fn invitation(&self, id: RoomInviteId, invitee: OwnerId) -> Result<Option<InvitationRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{INVITATION_SELECT} WHERE i.id = $1 AND i.invitee_id = $2 AND i.responded_at IS NULL"
        )))
        .bind(id)
        .bind(invitee)
        .fetch_optional(&self.pool)
        .await
    }

    /// The pending invitation of `invitee` to `room`, if any.
    pub async fn pending_invitation_to(
        &self,
        room: RoomId,
        invitee: OwnerId,
    ) -> Result<Option<InvitationRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{INVITATION_SELECT} WHERE i.room_id = $1 AND i.invitee_id = $2 AND i.responded_at IS NULL"
        )))
        .bind(room)
        .bind(invitee)
        .fetch_optional(&self.pool)
        .await
    }

    /// `invitee`'s pending invitations, newest first.
    pub async fn invitations_of(&self, invitee: OwnerId) -> Result<Vec<InvitationRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{INVITATION_SELECT} WHERE i.invitee_id = $1 AND i.responded_at IS NULL ORDER BY i.id DESC"
        )))
        .bind(invitee)
        .fetch_all(&self.pool)
        .await
    }

    /// Marks an invitation answered; false if it already was (a second answer racing).
    pub async fn respond_to_invitation(&self, id: RoomInviteId, now: i64) -> Result<bool, sqlx::Error> {
        let answered = sqlx::query("UPDATE room_invites SET responded_at = $2 WHERE id = $1 AND responded_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(answered > 0)
    }

    pub async fn insert_invite_code(
        &self,
        room: RoomId,
        inviter: OwnerId,
        code_hash: &str,
        expires_at: i64,
        max_uses: Option<i64>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO room_invites (room_id, inviter_id, code_hash, expires_at, max_uses, created_at) \
             VALUES ($1, $2, $3, $4, CASE WHEN $6 = 0 THEN NULL ELSE $5 END, $7)",
        )
        .bind(room)
        .bind(inviter)
        .bind(code_hash)
        .bind(expires_at)
        .bind(max_uses.unwrap_or_default())
        .bind(flag(max_uses.is_some()))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn invite_code(&self, code_hash: &str) -> Result<Option<InviteCodeRow>, sqlx::Error> {
        sqlx::query_as("SELECT id, room_id, expires_at, max_uses, uses FROM room_invites WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await
    }

    /// Counts one use of a code if it is still unexpired and not used up (racing joins cannot
    /// both take its last use).
    pub async fn use_invite_code(&self, id: RoomInviteId, now: i64) -> Result<bool, sqlx::Error> {
        let used = sqlx::query(
            "UPDATE room_invites SET uses = uses + 1 WHERE id = $1 AND expires_at > $2 \
             AND (max_uses IS NULL OR uses < max_uses)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(used > 0)
    }
}
