//! The AI member of a room, over gRPC on both backends: a persona (its prompt, its name asking
//! it), stopping an answer (who may, and the text it keeps), one answer at a time, the room's
//! AI rate, the owner's quotas and token usage. Also who has read a message (small rooms), the
//! retention sweep telling open streams, and a stream resuming from too far back being told
//! to reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::rooms::next_event;
use common::rooms::*;
use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::quota_service_client::QuotaServiceClient;
use parley_proto::chat::v1::room_event::Event;
use parley_proto::chat::v1::usage_service_client::UsageServiceClient;
use parley_service_kit::grpc_status::{self, Reason};
use parley_testkit::{on_every_backend, wait};
use tonic::Code;

async fn set_ai(
    who: &Person,
    room: i64,
    api_config_id: Option<i64>,
    persona_id: Option<i64>,
) -> Result<pb::Room, tonic::Status> {
    who.user
        .rooms()
        .set_room_ai(who.user.req(pb::SetRoomAiRequest {
            room_id: room,
            api_config_id,
            persona_id,
        }))
        .await
        .map(|r| r.into_inner().room.unwrap())
}

async fn stop(who: &Person, room: i64, message: i64) -> Result<pb::RoomMessage, tonic::Status> {
    who.user
        .rooms()
        .stop_room_answer(who.user.req(pb::StopRoomAnswerRequest {
            room_id: room,
            message_id: message,
        }))
        .await
        .map(|r| r.into_inner().message.unwrap())
}

async fn readers(who: &Person, room: i64, message: i64) -> Result<Vec<String>, tonic::Status> {
    who.user
        .rooms()
        .list_message_readers(who.user.req(pb::ListMessageReadersRequest {
            room_id: room,
            message_id: message,
        }))
        .await
        .map(|r| r.into_inner().account_ids)
}

async fn mark_read(who: &Person, room: i64, message: i64) {
    who.user
        .rooms()
        .mark_room_read(who.user.req(pb::MarkRoomReadRequest {
            room_id: room,
            message_id: message,
        }))
        .await
        .unwrap();
}

async fn create_persona(who: &Person, name: &str, prompt: &str) -> pb::Persona {
    who.user
        .personas()
        .create_persona(who.user.req(pb::CreatePersonaRequest {
            name: name.into(),
            description: String::new(),
            system_prompt: prompt.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap()
}

/// The AI's answer posted after a question, then its text streamed, until it ends: (the
/// posted answer, the text streamed, the answer as completed).
async fn follow_answer(
    stream: &mut tonic::Streaming<pb::WatchRoomEventsResponse>,
) -> (pb::RoomMessage, String, pb::RoomMessage) {
    let answer = loop {
        if let Some(Event::MessagePosted(m)) = next_message_event(stream).await.event
            && m.author_kind == pb::AuthorKind::Ai as i32
        {
            break m;
        }
    };
    let mut streamed = String::new();
    let completed = loop {
        match next_message_event(stream).await.event {
            Some(Event::AiAnswerDelta(delta)) => {
                assert_eq!(delta.message_id, answer.id);
                streamed.push_str(&delta.text);
            }
            Some(Event::MessageCompleted(m)) => break m,
            _ => {}
        }
    };
    (answer, streamed, completed)
}

/// Waits for the first piece of the answer's text on `stream`; answers the answer's id.
async fn first_delta(stream: &mut tonic::Streaming<pb::WatchRoomEventsResponse>) -> i64 {
    loop {
        if let Some(Event::AiAnswerDelta(delta)) = next_message_event(stream).await.event {
            return delta.message_id;
        }
    }
}

on_every_backend!(the_ai_member_speaks_as_a_persona, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&alice, "persona room", pb::RoomVisibility::Private).await;
    invite_and_accept(&alice, room.id, &bob).await;
    let config = stack.fake_config(&alice.user, "fake").await;
    let helper = create_persona(&alice, "Helper", "You answer like a pirate.").await;
    let bobs_persona = create_persona(&bob, "Bobby", "Bob's own.").await;

    // Only the owner, only with their own persona, and only with a config.
    assert_code(
        set_ai(&bob, room.id, Some(config.id), Some(helper.id)).await,
        Code::PermissionDenied,
    );
    assert_code(
        set_ai(&alice, room.id, Some(config.id), Some(bobs_persona.id)).await,
        Code::NotFound,
    );
    assert_invalid(set_ai(&alice, room.id, None, Some(helper.id)).await, "persona_id");
    assert!(
        !room_of(&bob, room.id).await.unwrap().ai_enabled,
        "refusals change nothing"
    );
    let set = set_ai(&alice, room.id, Some(config.id), Some(helper.id)).await.unwrap();
    assert!(set.ai_enabled);
    assert_eq!(set.ai_persona_name, "Helper");
    assert_eq!(set.ai_persona_id, Some(helper.id));
    assert_eq!(room_of(&bob, room.id).await.unwrap().ai_persona_name, "Helper");

    // The persona's name asks it, as @ai does.
    stack.fake.push_reply(Reply::text("Arr, four.").chunk_size(3));
    let mut bobs = watch(&bob, 0).await;
    post(&bob, room.id, "@helper what is 2+2?").await.unwrap();
    let (answer, streamed, completed) = follow_answer(&mut bobs).await;
    assert_eq!(answer.status, pb::MessageStatus::Streaming as i32);
    assert_eq!(streamed, "Arr, four.");
    assert_eq!(completed.content, "Arr, four.");
    assert_eq!(completed.status, pb::MessageStatus::Complete as i32);
    let body = stack.fake.chat_requests().pop().unwrap().body.to_string();
    assert!(body.contains("You answer like a pirate."), "{body}");
    assert!(body.contains("You are Helper"), "{body}");

    // @ai still asks it; a name that only starts like the persona's does not.
    let asked_before = stack.fake.chat_requests().len();
    post(&bob, room.id, "@Helpers are not asked").await.unwrap();
    stack.fake.push_reply(Reply::text("Aye."));
    post(&bob, room.id, "@ai and you?").await.unwrap();
    let (_, _, completed) = follow_answer(&mut bobs).await;
    assert_eq!(completed.content, "Aye.");
    assert_eq!(stack.fake.chat_requests().len(), asked_before + 1);

    // A deleted persona leaves the AI member without one.
    alice
        .user
        .personas()
        .delete_persona(alice.user.req(pb::DeletePersonaRequest { id: helper.id }))
        .await
        .unwrap();
    let after = room_of(&bob, room.id).await.unwrap();
    assert!(after.ai_enabled);
    assert_eq!(after.ai_persona_name, "");
    stack.stop().await;
});

on_every_backend!(
    an_ai_answer_is_stopped_by_the_asker_or_an_admin,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = person(&stack, "alice").await;
        let bob = person(&stack, "bob").await;
        let carol = person(&stack, "carol").await;
        let dave = person(&stack, "dave").await;
        let room = create_room(&alice, "stoppable", pb::RoomVisibility::Private).await;
        invite_and_accept(&alice, room.id, &bob).await;
        invite_and_accept(&alice, room.id, &carol).await;
        let config = stack.fake_config(&alice.user, "fake").await;
        set_ai(&alice, room.id, Some(config.id), None).await.unwrap();
        let slow = || {
            Reply::text("word ".repeat(400))
                .chunk_size(5)
                .chunk_delay(Duration::from_millis(30))
        };

        stack.fake.push_reply(slow());
        let mut carols = watch(&carol, 0).await;
        let question = post(&bob, room.id, "@ai talk for a while").await.unwrap();
        let answer = first_delta(&mut carols).await;
        // While it is written, nobody else asks it: refused, nothing stored.
        let stored = messages_of(&alice, room.id).await.unwrap().len();
        let busy = post(&carol, room.id, "@ai me too").await.unwrap_err();
        assert_eq!(busy.code(), Code::FailedPrecondition, "{busy:?}");
        assert_eq!(grpc_status::reason(&busy), Some(Reason::GenerationRunning));
        assert_eq!(messages_of(&alice, room.id).await.unwrap().len(), stored);

        // A member who did not ask may not stop it, a stranger does not see it, and only AI
        // answers are stopped.
        assert_code(stop(&carol, room.id, answer).await, Code::PermissionDenied);
        assert_code(stop(&dave, room.id, answer).await, Code::NotFound);
        assert_invalid(stop(&bob, room.id, question.id).await, "message_id");
        // The asker may: it keeps what it had written.
        let stopped = stop(&bob, room.id, answer).await.unwrap();
        assert_eq!(stopped.status, pb::MessageStatus::Stopped as i32);
        assert!(stopped.content.starts_with("word "), "{stopped:?}");
        assert!(
            stopped.content.len() < 2_000,
            "stopped early: {}",
            stopped.content.len()
        );
        let completed = loop {
            if let Some(Event::MessageCompleted(m)) = next_message_event(&mut carols).await.event {
                break m;
            }
        };
        assert_eq!(completed.id, answer);
        assert_eq!(completed.status, pb::MessageStatus::Stopped as i32);
        assert_eq!(completed.content, stopped.content);
        let listed = messages_of(&carol, room.id).await.unwrap();
        assert_eq!(listed[0].content, stopped.content);
        // Stopping a finished answer changes nothing.
        assert_eq!(stop(&bob, room.id, answer).await.unwrap(), stopped);

        // The owner (or an admin) stops anyone's.
        stack.fake.push_reply(slow());
        post(&carol, room.id, "@ai your turn").await.unwrap();
        let second = first_delta(&mut carols).await;
        let stopped = stop(&alice, room.id, second).await.unwrap();
        assert_eq!(stopped.status, pb::MessageStatus::Stopped as i32);
        assert!(!stopped.content.is_empty());
        stack.stop().await;
    }
);

on_every_backend!(the_rooms_ai_rate_is_limited, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.room_limits.ai_answers_per_minute = 2;
    })
    .await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&alice, "rated", pb::RoomVisibility::Private).await;
    invite_and_accept(&alice, room.id, &bob).await;
    let config = stack.fake_config(&alice.user, "fake").await;
    set_ai(&alice, room.id, Some(config.id), None).await.unwrap();
    let mut bobs = watch(&bob, 0).await;
    for i in 0..2 {
        post(&bob, room.id, &format!("@ai question {i}")).await.unwrap();
        let (_, _, completed) = follow_answer(&mut bobs).await;
        assert_eq!(completed.status, pb::MessageStatus::Complete as i32);
    }
    let stored = messages_of(&bob, room.id).await.unwrap().len();
    let refused = post(&bob, room.id, "@ai one more").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(grpc_status::reason(&refused), Some(Reason::RateLimited));
    assert!(grpc_status::retry_delay(&refused).is_some());
    assert!(refused.message().contains("2 questions a minute"), "{refused:?}");
    assert_eq!(messages_of(&bob, room.id).await.unwrap().len(), stored);
    // Messages that do not ask it go on.
    post(&bob, room.id, "no question").await.unwrap();
    stack.stop().await;
});

on_every_backend!(
    ai_answers_count_against_the_owners_quota_and_usage,
    |db_url: String| async move {
        let stack = Stack::start_with(&db_url, |config| {
            config.quotas.messages_per_day = 2;
        })
        .await;
        let alice = person(&stack, "alice").await;
        let bob = person(&stack, "bob").await;
        let room = create_room(&alice, "counted", pb::RoomVisibility::Private).await;
        invite_and_accept(&alice, room.id, &bob).await;
        let config = stack.fake_config(&alice.user, "fake").await;
        set_ai(&alice, room.id, Some(config.id), None).await.unwrap();
        let mut bobs = watch(&bob, 0).await;
        for i in 0..2 {
            stack.fake.push_reply(Reply::text(format!("answer {i}")));
            post(&bob, room.id, &format!("@ai question {i}")).await.unwrap();
            follow_answer(&mut bobs).await;
        }
        let quota_of = |who: &Person| {
            let user = who.user.clone();
            let address = stack.chat_address();
            async move {
                QuotaServiceClient::new(wait::channel(address).await)
                    .get_my_quota(user.req(pb::GetMyQuotaRequest {}))
                    .await
                    .unwrap()
                    .into_inner()
                    .quota
                    .unwrap()
                    .usage
                    .unwrap()
            }
        };
        // The owner's day, not the asker's.
        assert_eq!(quota_of(&alice).await.messages_today, 2);
        assert_eq!(quota_of(&bob).await.messages_today, 0);
        let stored = messages_of(&bob, room.id).await.unwrap().len();
        let refused = post(&bob, room.id, "@ai a third").await.unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(refused.message().contains("owner"), "{refused:?}");
        assert_ne!(grpc_status::reason(&refused), Some(Reason::QuotaExceeded));
        assert!(grpc_status::retry_delay(&refused).is_some());
        assert_eq!(messages_of(&bob, room.id).await.unwrap().len(), stored);

        // The tokens are the owner's, on the config that answered.
        let usage = UsageServiceClient::new(wait::channel(stack.chat_address()).await)
            .get_my_usage(alice.user.req(pb::GetMyUsageRequest {
                grouping: pb::UsageGrouping::Unspecified as i32,
                start_date: String::new(),
                end_date: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .rows;
        assert_eq!(usage.len(), 1, "{usage:?}");
        assert_eq!(usage[0].connection_id, config.id);
        assert_eq!(usage[0].answers, 2);
        assert!(
            usage[0].prompt_tokens > 0 && usage[0].completion_tokens > 0,
            "{usage:?}"
        );
        stack.stop().await;
    }
);

on_every_backend!(who_has_read_a_message_in_small_rooms, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.room_limits.read_receipts_max_members = 3;
    })
    .await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let carol = person(&stack, "carol").await;
    let dave = person(&stack, "dave").await;
    let room = create_room(&alice, "readers", pb::RoomVisibility::Private).await;
    let other = create_room(&dave, "elsewhere", pb::RoomVisibility::Private).await;
    invite_and_accept(&alice, room.id, &bob).await;
    invite_and_accept(&alice, room.id, &carol).await;
    assert!(room_of(&alice, room.id).await.unwrap().read_receipts);
    let message = post(&alice, room.id, "read me").await.unwrap();
    let elsewhere = post(&dave, other.id, "not yours").await.unwrap();
    assert_eq!(
        readers(&alice, room.id, message.id).await.unwrap(),
        Vec::<String>::new()
    );

    let mut alices = watch(&alice, 0).await;
    mark_read(&bob, room.id, message.id).await;
    let read = loop {
        if let Some(Event::MemberRead(read)) = next_event(&mut alices).await.event {
            break read;
        }
    };
    assert_eq!(read.account_id, bob.account);
    assert_eq!(read.last_read_message_id, message.id);
    mark_read(&carol, room.id, message.id).await;
    // The author is not listed as a reader of their own message.
    mark_read(&alice, room.id, message.id).await;
    assert_eq!(
        readers(&bob, room.id, message.id).await.unwrap(),
        [bob.account.clone(), carol.account.clone()]
    );
    // A later message read counts as this one read.
    let later = post(&carol, room.id, "later").await.unwrap();
    mark_read(&alice, room.id, later.id).await;
    assert_eq!(
        readers(&carol, room.id, later.id).await.unwrap(),
        std::slice::from_ref(&alice.account)
    );

    assert_code(readers(&dave, room.id, message.id).await, Code::NotFound);
    assert_code(readers(&alice, room.id, elsewhere.id).await, Code::NotFound);
    // A bigger room does not show it.
    invite_and_accept(&alice, room.id, &dave).await;
    assert!(!room_of(&alice, room.id).await.unwrap().read_receipts);
    assert_code(readers(&alice, room.id, message.id).await, Code::FailedPrecondition);
    stack.stop().await;
});

on_every_backend!(the_retention_sweep_tells_open_streams, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.room_retention = chat_service::RetentionSweep {
            interval: Duration::from_millis(100),
            batch: 4,
            pause: Duration::from_millis(1),
            ..Default::default()
        };
    })
    .await;
    let db = stack.database().await;
    let alice = person(&stack, "alice").await;
    let bob = person(&stack, "bob").await;
    let room = create_room(&alice, "forgetful", pb::RoomVisibility::Private).await;
    invite_and_accept(&alice, room.id, &bob).await;
    let mut last_old = 0;
    for i in 0..6 {
        last_old = post(&alice, room.id, &format!("old {i}")).await.unwrap().id;
    }
    age_room(&db, room.id, last_old, 8).await;
    let mut bobs = watch(&bob, 0).await;
    set_retention(&alice, room.id, 7).await.unwrap();
    let (event_id, expired) = loop {
        let event = next_message_event(&mut bobs).await;
        if let Some(Event::MessagesExpired(expired)) = event.event {
            break (event.id, expired);
        }
    };
    let before = expired.before.unwrap().seconds * 1000;
    let seven_days_ago = unix_millis_now() - 7 * 86_400_000;
    assert!((before - seven_days_ago).abs() < 60_000, "{before} vs {seven_days_ago}");
    assert!(messages_of(&bob, room.id).await.unwrap().is_empty());
    // It is stored: a stream resuming from before it gets it too.
    let mut resumed = watch(&bob, event_id - 1).await;
    let replayed = next_message_event(&mut resumed).await;
    assert_eq!(replayed.id, event_id);
    assert!(
        matches!(replayed.event, Some(Event::MessagesExpired(_))),
        "{replayed:?}"
    );
    stack.stop().await;
});

on_every_backend!(
    a_stream_resuming_from_too_far_back_is_told_to_reload,
    |db_url: String| async move {
        let stack = Stack::start_with(&db_url, |config| {
            config.room_retention = chat_service::RetentionSweep {
                interval: Duration::from_millis(100),
                events_kept: Duration::from_millis(300),
                ..Default::default()
            };
        })
        .await;
        let alice = person(&stack, "alice").await;
        let bob = person(&stack, "bob").await;
        let room = create_room(&alice, "long ago", pb::RoomVisibility::Private).await;
        invite_and_accept(&alice, room.id, &bob).await;
        let mut bobs = watch(&bob, 0).await;
        post(&alice, room.id, "seen").await.unwrap();
        let seen = next_message_event(&mut bobs).await;
        assert_eq!(posted_text(&seen), "seen");
        drop(bobs);
        for i in 0..3 {
            post(&alice, room.id, &format!("missed {i}")).await.unwrap();
        }
        // The events older than 300 ms go, all but the newest.
        let db = stack.database().await;
        wait::eventually("old room events to be deleted", EVENT_WITHIN, || async {
            let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM room_events")
                .fetch_one(&db)
                .await
                .unwrap();
            (left == 1).then_some(())
        })
        .await;

        // Up to date (the newest event seen): nothing to reload.
        let (newest,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM room_events")
            .fetch_one(&db)
            .await
            .unwrap();
        let mut current = watch(&bob, newest).await;
        // From further back: told to reload first, then live from there.
        let mut behind = watch(&bob, seen.id).await;
        let reload = next_event(&mut behind).await;
        assert!(matches!(reload.event, Some(Event::ReloadRequired(_))), "{reload:?}");
        assert_eq!(reload.id, newest);
        post(&alice, room.id, "after").await.unwrap();
        assert_eq!(posted_text(&next_message_event(&mut behind).await), "after");
        assert_eq!(posted_text(&next_message_event(&mut current).await), "after");
        stack.stop().await;
    }
);
