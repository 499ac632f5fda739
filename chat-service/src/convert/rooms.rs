//! Room rows as `parley.chat.v1` room messages.

use parley_proto::chat::v1 as pb;
use parley_proto::timestamp::from_unix_millis;

use crate::store::{
    AuthorKind, InvitationRow, MemberRow, RoomMessageRow, RoomMessageType, RoomRole, RoomRow, Visibility,
};

/// `read_receipts`: the room is small enough to show who has read a message.
pub fn room(row: &RoomRow, my_role: Option<RoomRole>, read_receipts: bool) -> pb::Room {
    pb::Room {
        id: row.id.0,
        name: row.name.clone(),
        topic: row.topic.clone(),
        visibility: visibility(row.visibility) as i32,
        owner_account_id: row.owner_account.clone(),
        member_count: row.member_count,
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
        my_role: my_role.map_or(pb::RoomRole::Unspecified, role) as i32,
        unread_count: 0,
        ai_enabled: row.ai_api_config_id.is_some(),
        // Stored only within 1..=MAX_RETENTION_DAYS, so it fits.
        retention_days: row
            .retention_days
            .map_or(0, |days| i32::try_from(days).unwrap_or(i32::MAX)),
        ai_persona_name: row.ai_persona_name.clone(),
        ai_persona_id: row.ai_persona_id.map(|id| id.0),
        read_receipts,
    }
}

pub fn visibility(visibility: Visibility) -> pb::RoomVisibility {
    match visibility {
        Visibility::Public => pb::RoomVisibility::Public,
        Visibility::Private => pb::RoomVisibility::Private,
    }
}

pub fn role(role: RoomRole) -> pb::RoomRole {
    match role {
        RoomRole::Owner => pb::RoomRole::Owner,
        RoomRole::Admin => pb::RoomRole::Admin,
        RoomRole::Member => pb::RoomRole::Member,
    }
}

pub fn member(row: &MemberRow) -> pb::RoomMember {
    pb::RoomMember {
        room_id: row.room_id.0,
        account_id: row.account_id.clone(),
        role: role(row.role) as i32,
        joined_at: Some(from_unix_millis(row.joined_at)),
        muted_until: row.muted_until.map(from_unix_millis),
        last_read_message_id: row.last_read_message_id.map(|id| id.0),
    }
}

pub fn room_message(row: &RoomMessageRow, room_id: crate::ids::RoomId) -> pb::RoomMessage {
    pb::RoomMessage {
        id: row.id.0,
        room_id: room_id.0,
        author_account_id: row.author_account.clone(),
        author_kind: match row.author_kind {
            AuthorKind::User => pb::AuthorKind::User,
            AuthorKind::Ai => pb::AuthorKind::Ai,
            AuthorKind::System => pb::AuthorKind::System,
        } as i32,
        r#type: match row.message_type {
            RoomMessageType::Text => pb::RoomMessageType::Text,
            RoomMessageType::SystemEvent => pb::RoomMessageType::SystemEvent,
            RoomMessageType::AiAnswer => pb::RoomMessageType::AiAnswer,
        } as i32,
        content: row.content.clone(),
        reply_to_id: row.reply_to_id.map(|id| id.0),
        created_at: Some(from_unix_millis(row.created_at)),
        edited_at: row.edited_at.map(from_unix_millis),
        deleted_at: row.deleted_at.map(from_unix_millis),
        status: super::message_status(row.status) as i32,
        error: row.error.clone(),
    }
}

pub fn invitation(row: &InvitationRow) -> pb::RoomInvitation {
    pb::RoomInvitation {
        id: row.id.0,
        room_id: row.room_id.0,
        room_name: row.room_name.clone(),
        inviter_account_id: row.inviter_account.clone(),
        invitee_account_id: row.invitee_account.clone(),
        created_at: Some(from_unix_millis(row.created_at)),
    }
}
