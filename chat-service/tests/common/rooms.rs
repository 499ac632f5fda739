//! Room helpers shared by the room test files: creating, inviting, posting, watching.

use std::time::Duration;

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;

use super::Person;

/// How long a test waits for an event it expects.
pub const EVENT_WITHIN: Duration = Duration::from_secs(10);

pub async fn create_room(owner: &Person, name: &str, visibility: pb::RoomVisibility) -> pb::Room {
    owner
        .user
        .rooms()
        .create_room(owner.user.req(pb::CreateRoomRequest {
            name: name.into(),
            topic: format!("about {name}"),
            visibility: visibility as i32,
        }))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap()
}

/// `by` invites `who`, who accepts.
pub async fn invite_and_accept(by: &Person, room: i64, who: &Person) {
    let invitation = by
        .user
        .rooms()
        .invite_user(by.user.req(pb::InviteUserRequest {
            room_id: room,
            account_id: who.account.clone(),
            username: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    who.user
        .rooms()
        .respond_to_invitation(who.user.req(pb::RespondToInvitationRequest {
            invitation_id: invitation.id,
            accept: true,
        }))
        .await
        .unwrap();
}

pub async fn post(who: &Person, room: i64, content: &str) -> Result<pb::RoomMessage, tonic::Status> {
    who.user
        .rooms()
        .post_room_message(who.user.req(pb::PostRoomMessageRequest {
            room_id: room,
            content: content.into(),
            reply_to_id: None,
        }))
        .await
        .map(|r| r.into_inner().message.unwrap())
}

pub async fn watch(who: &Person, after: i64) -> tonic::Streaming<pb::WatchRoomEventsResponse> {
    who.user
        .rooms()
        .watch_room_events(who.user.req(pb::WatchRoomEventsRequest { after_event_id: after }))
        .await
        .unwrap()
        .into_inner()
}

pub async fn next_event(stream: &mut tonic::Streaming<pb::WatchRoomEventsResponse>) -> pb::RoomEvent {
    tokio::time::timeout(EVENT_WITHIN, stream.message())
        .await
        .expect("no room event in time")
        .unwrap()
        .expect("the stream ended")
        .event
        .unwrap()
}

/// The next event that is not a member joining (joins race with what a test waits for), a
/// notification or a read receipt.
pub async fn next_message_event(stream: &mut tonic::Streaming<pb::WatchRoomEventsResponse>) -> pb::RoomEvent {
    loop {
        let event = next_event(stream).await;
        // Notifications (a kick's, an invitation's) are tests/notifications.rs's; read
        // receipts come with every MarkRoomRead.
        if !matches!(
            event.event,
            Some(Event::MemberJoined(_) | Event::Notification(_) | Event::MemberRead(_))
        ) {
            return event;
        }
    }
}

pub fn posted_text(event: &pb::RoomEvent) -> &str {
    match &event.event {
        Some(Event::MessagePosted(m)) => &m.content,
        other => panic!("expected a posted message, got {other:?}"),
    }
}

pub async fn room_of(who: &Person, room: i64) -> Result<pb::Room, tonic::Status> {
    who.user
        .rooms()
        .get_room(who.user.req(pb::GetRoomRequest { room_id: room }))
        .await
        .map(|r| r.into_inner().room.unwrap())
}

pub async fn messages_of(who: &Person, room: i64) -> Result<Vec<pb::RoomMessage>, tonic::Status> {
    who.user
        .rooms()
        .list_room_messages(who.user.req(pb::ListRoomMessagesRequest {
            room_id: room,
            ..Default::default()
        }))
        .await
        .map(|r| r.into_inner().messages)
}

/// Makes the room's messages up to `up_to` (and its events) `days` days old.
pub async fn age_room(db: &sqlx::AnyPool, room: i64, up_to: i64, days: i64) {
    let then = unix_millis_now() - days * 86_400_000;
    sqlx::query(
        "UPDATE chat_messages SET created_at = $1 \
         WHERE session_id = (SELECT session_id FROM rooms WHERE id = $2) AND id <= $3",
    )
    .bind(then)
    .bind(room)
    .bind(up_to)
    .execute(db)
    .await
    .unwrap();
    sqlx::query("UPDATE room_events SET created_at = $1 WHERE room_id = $2")
        .bind(then)
        .bind(room)
        .execute(db)
        .await
        .unwrap();
}

pub fn unix_millis_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// UpdateRoom's retention, by `who`: masked, so 0 sets "forever".
pub async fn set_retention(who: &Person, room: i64, days: i32) -> Result<pb::Room, tonic::Status> {
    who.user
        .rooms()
        .update_room(who.user.req(pb::UpdateRoomRequest {
            room_id: room,
            retention_days: Some(days),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["retention_days".into()],
            }),
            ..Default::default()
        }))
        .await
        .map(|r| r.into_inner().room.unwrap())
}
