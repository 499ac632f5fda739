//! Rooms across replicas: two chat-service instances on one PostgreSQL database, their room
//! events carried by NATS. A member watching through one instance sees what another member
//! does through the other, live. Needs PARLEY_TEST_POSTGRES_URL and PARLEY_TEST_NATS_URL (a
//! SQLite file has one instance only); skipped, saying so, without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_testkit::test_database::TestDatabase;

const EVENT_WITHIN: Duration = Duration::from_secs(10);

async fn next_posted(stream: &mut tonic::Streaming<pb::WatchRoomEventsResponse>) -> pb::RoomMessage {
    loop {
        let event = tokio::time::timeout(EVENT_WITHIN, stream.message())
            .await
            .expect("no room event in time")
            .unwrap()
            .expect("the stream ended")
            .event
            .unwrap();
        if let Some(Event::MessagePosted(message)) = event.event {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_instances_through_nats() {
    let Ok(nats_url) = std::env::var("PARLEY_TEST_NATS_URL") else {
        eprintln!("skipped: PARLEY_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)");
        return;
    };
    let Some(db) = TestDatabase::postgres().await else {
        eprintln!("skipped: PARLEY_TEST_POSTGRES_URL is not set; instances share only a PostgreSQL database");
        return;
    };
    let mut stack = Stack::start_with(&db.url, |config| config.nats_url = Some(nats_url)).await;
    let alice = stack.user("alice").await;
    let bob_on_first = stack.user("bob").await;
    let bob_account = stack.account_id(&bob_on_first).await;
    // Bob talks to the second instance only.
    let bob = stack.second_instance(&bob_on_first).await;

    let room = alice
        .rooms()
        .create_room(alice.req(pb::CreateRoomRequest {
            name: "across".into(),
            visibility: pb::RoomVisibility::Private as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap();
    let mut bobs = bob
        .rooms()
        .watch_room_events(bob.req(pb::WatchRoomEventsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut alices = alice
        .rooms()
        .watch_room_events(alice.req(pb::WatchRoomEventsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    // Invited on the first instance, accepted on the second.
    let invitation = alice
        .rooms()
        .invite_user(alice.req(pb::InviteUserRequest {
            room_id: room.id,
            account_id: bob_account,
            username: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    match tokio::time::timeout(EVENT_WITHIN, bobs.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .event
        .unwrap()
        .event
    {
        Some(Event::Invited(invited)) => assert_eq!(invited.id, invitation.id),
        other => panic!("expected the invitation through NATS, got {other:?}"),
    }
    bob.rooms()
        .respond_to_invitation(bob.req(pb::RespondToInvitationRequest {
            invitation_id: invitation.id,
            accept: true,
        }))
        .await
        .unwrap();

    // Alice posts on the first; bob, on the second, sees it live. And back.
    alice
        .rooms()
        .post_room_message(alice.req(pb::PostRoomMessageRequest {
            room_id: room.id,
            content: "hello from instance one".into(),
            reply_to_id: None,
        }))
        .await
        .unwrap();
    assert_eq!(next_posted(&mut bobs).await.content, "hello from instance one");
    bob.rooms()
        .post_room_message(bob.req(pb::PostRoomMessageRequest {
            room_id: room.id,
            content: "hello from instance two".into(),
            reply_to_id: None,
        }))
        .await
        .unwrap();
    assert_eq!(next_posted(&mut alices).await.content, "hello from instance one");
    assert_eq!(next_posted(&mut alices).await.content, "hello from instance two");

    // Typing is never stored, so only NATS can bring it across.
    bob.rooms()
        .set_typing(bob.req(pb::SetTypingRequest { room_id: room.id }))
        .await
        .unwrap();
    loop {
        let event = tokio::time::timeout(EVENT_WITHIN, alices.message())
            .await
            .expect("no typing in time")
            .unwrap()
            .expect("the stream ended")
            .event
            .unwrap();
        if let Some(Event::Typing(typing)) = event.event {
            assert_eq!(event.room_id, room.id);
            assert_eq!(typing.account_id, stack.account_id(&bob_on_first).await);
            break;
        }
    }
    stack.stop().await;
}
