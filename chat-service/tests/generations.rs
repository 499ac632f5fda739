//! Generations against the real chat-service + llm-service + user-service and the fake
//! provider over HTTP: streaming, persistence while streaming, clients that leave and come
//! back, stopping, provider failures, one generation per session, regeneration, context
//! budgeting, titles, shutdown and crash recovery. Every test runs on SQLite and, when
//! configured, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event;
use parley_testkit::{on_every_backend, wait};
use tonic::Code;

fn words(n: usize) -> String {
    (0..n).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ")
}

/// A reply that takes a while: `n` words, one per chunk, `delay` apart.
fn slow(n: usize, delay: Duration) -> Reply {
    Reply::text(words(n)).chunk_delay(delay)
}

fn titled() -> pb::CreateSessionRequest {
    pb::CreateSessionRequest {
        title: Some("titled".into()),
        ..Default::default()
    }
}

/// Reads events until `count` deltas arrived; answers the assistant message id.
async fn read_deltas(stream: &mut tonic::Streaming<pb::SendMessageResponse>, count: usize) -> i64 {
    let mut answer = None;
    let mut seen = 0;
    while seen < count {
        match next_event(stream).await {
            Some(Event::AssistantStarted(m)) => answer = Some(m.id),
            Some(Event::Delta(_)) => seen += 1,
            Some(_) => {}
            None => panic!("the stream ended early"),
        }
    }
    answer.expect("no assistant_started")
}

/// Alice, signed in with a config pointing at the fake provider, and a new session.
async fn alice_chatting(stack: &Stack, session: pb::CreateSessionRequest) -> (User, pb::Session) {
    let alice = stack.user("alice").await;
    stack.fake_config(&alice, "fake").await;
    let session = alice.create_session(session).await;
    (alice, session)
}

on_every_backend!(streams_in_order_stores_usage_and_titles, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    stack.fake_config(&alice, "fake").await;
    let session = alice
        .create_session(pb::CreateSessionRequest {
            system_prompt: Some("Be brief.".into()),
            ..Default::default()
        })
        .await;
    stack
        .fake
        .push_reply(Reply::text("Hello there, my friend").reasoning("The user greets me."));
    stack.fake.push_reply(Reply::text("\"Friendly Greeting\"."));

    let events = collect_send(alice.send(session.id, "hi").await).await;
    let kinds = common::kinds(&events);
    assert_eq!(&kinds[..2], ["user_message", "assistant_started"], "{kinds:?}");
    let completed_at = kinds.iter().position(|k| *k == "completed").unwrap();
    let first_delta = kinds.iter().position(|k| *k == "delta").unwrap();
    let last_reasoning = kinds.iter().rposition(|k| *k == "reasoning_delta").unwrap();
    assert!(last_reasoning < first_delta, "{kinds:?}");
    assert!(
        kinds[2..completed_at]
            .iter()
            .all(|k| matches!(*k, "delta" | "reasoning_delta"))
    );
    assert_eq!(&kinds[completed_at..], ["completed", "session_updated"], "{kinds:?}");

    let Event::UserMessage(question) = &events[0] else {
        panic!()
    };
    assert_eq!(question.content, "hi");
    assert_eq!(question.status, pb::MessageStatus::Complete as i32);
    assert_eq!(text_of(&events), "Hello there, my friend");
    let Event::Completed(answer) = &events[completed_at] else {
        panic!()
    };
    assert_eq!(answer.content, "Hello there, my friend");
    assert_eq!(answer.reasoning, "The user greets me.");
    assert_eq!(answer.status, pb::MessageStatus::Complete as i32);
    assert_eq!(answer.model, "fake-model");
    let usage = answer.usage.expect("usage stored");
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0, "{usage:?}");
    let Event::SessionUpdated(updated) = &events[completed_at + 1] else {
        panic!()
    };
    assert_eq!(updated.title, "Friendly Greeting");

    // Stored as streamed.
    let stored = alice.list_messages(session.id).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0], *question);
    assert_eq!(stored[1].content, answer.content);
    assert_eq!(stored[1].usage, answer.usage);
    // The completed event is the row exactly as stored.
    assert_eq!(stored[1], *answer);
    assert_eq!(alice.session(session.id).await.title, "Friendly Greeting");

    // The provider saw the system prompt, then the question.
    let requests = stack.fake.chat_requests();
    assert_eq!(
        role_and_content(&requests[0].body),
        [("system".into(), "Be brief.".into()), ("user".into(), "hi".into())]
    );
    assert_eq!(requests[0].body["model"], "fake-model");

    // A second exchange sends the history and does not retitle.
    let events = collect_send(alice.send(session.id, "and again").await).await;
    assert!(!common::kinds(&events).contains(&"session_updated"));
    let requests = stack.fake.chat_requests();
    assert_eq!(requests.len(), 3, "two answers and one title");
    assert_eq!(
        role_and_content(&requests[2].body),
        [
            ("system".into(), "Be brief.".into()),
            ("user".into(), "hi".into()),
            ("assistant".into(), "Hello there, my friend".into()),
            ("user".into(), "and again".into()),
        ]
    );
    stack.stop().await;
});

on_every_backend!(
    outlives_its_client_and_a_second_client_watches,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        stack.fake.push_reply(slow(40, Duration::from_millis(40)));

        let mut stream = alice.send(session.id, "tell me a long story").await;
        let answer_id = read_deltas(&mut stream, 2).await;
        // A second tab re-attaches…
        let watcher = alice
            .messages()
            .watch_generation(alice.req(pb::WatchGenerationRequest { message_id: answer_id }))
            .await
            .unwrap()
            .into_inner();
        // …and the first one goes away.
        drop(stream);

        // The answer is stored while it grows (batched), before it completes.
        let partial = wait::eventually("content persisted while streaming", Duration::from_secs(4), || async {
            let message = alice.message(answer_id).await;
            (message.status == pb::MessageStatus::Streaming as i32 && !message.content.is_empty())
                .then_some(message.content)
        })
        .await;
        assert!(words(40).starts_with(&partial));

        let watched = collect(watcher, |r: pb::WatchGenerationResponse| r.event).await;
        assert_eq!(kinds(&watched)[0], "assistant_started");
        assert_eq!(text_of(&watched), words(40));
        let Some(Event::Completed(done)) = watched.last() else {
            panic!("{watched:?}")
        };
        assert_eq!(done.status, pb::MessageStatus::Complete as i32);

        let stored = alice.wait_finished(answer_id).await;
        assert_eq!(stored.status, pb::MessageStatus::Complete as i32);
        assert_eq!(stored.content, words(40));
        assert_eq!(stack.fake.disconnects(), 0, "the provider stream was never cut");

        // Watching a finished answer gives its final state.
        let after = watch(&alice, answer_id).await;
        assert_eq!(kinds(&after), ["completed"]);
        // Only assistant messages have generations.
        let question_id = alice.list_messages(session.id).await[0].id;
        assert_invalid(
            alice
                .messages()
                .watch_generation(alice.req(pb::WatchGenerationRequest {
                    message_id: question_id,
                }))
                .await,
            "message_id",
        );
        stack.stop().await;
    }
);

on_every_backend!(stop_keeps_the_partial_answer, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let (alice, session) = alice_chatting(&stack, titled()).await;
    stack.fake.push_reply(slow(100, Duration::from_millis(30)));

    let mut stream = alice.send(session.id, "go on forever").await;
    let answer_id = read_deltas(&mut stream, 3).await;
    // Neither edited nor deleted while it streams.
    assert_code(
        alice
            .messages()
            .update_message(alice.req(pb::UpdateMessageRequest {
                id: answer_id,
                content: "x".into(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert_code(
        alice
            .messages()
            .delete_message(alice.req(pb::DeleteMessageRequest { id: answer_id }))
            .await,
        Code::FailedPrecondition,
    );
    let stopped = stop(&alice, answer_id).await;
    assert_eq!(stopped.status, pb::MessageStatus::Stopped as i32);
    assert!(!stopped.content.is_empty());
    assert!(stopped.content.len() < words(100).len());
    assert!(words(100).starts_with(&stopped.content));

    // The sender's stream ends with the STOPPED message holding everything it streamed.
    let mut rest = Vec::new();
    while let Some(event) = next_event(&mut stream).await {
        rest.push(event);
    }
    let Some(Event::Completed(last)) = rest.last() else {
        panic!("{rest:?}")
    };
    assert_eq!(last.status, pb::MessageStatus::Stopped as i32);
    assert_eq!(last.content, stopped.content);
    assert_eq!(alice.message(answer_id).await, stopped);
    assert_eq!(*last, stopped);
    assert!(
        stack.fake.wait_for_disconnect(Duration::from_secs(5)).await,
        "the provider call was cancelled"
    );

    // Stopping again changes nothing; the session is free for the next message.
    let again = stop(&alice, answer_id).await;
    assert_eq!(again, stopped);
    let events = collect_send(alice.send(session.id, "short one please").await).await;
    assert!(kinds(&events).contains(&"completed"));
    // The stopped answer is part of the next context: the user saw it.
    let last_request = stack.fake.chat_requests().pop().unwrap();
    assert!(role_and_content(&last_request.body).contains(&("assistant".into(), stopped.content.clone())));
    stack.stop().await;
});

on_every_backend!(provider_failures_are_stored_and_reported, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let (alice, session) = alice_chatting(&stack, titled()).await;
    let cases = [
        (
            Reply::status(401, "Incorrect API key provided"),
            Code::FailedPrecondition,
            "PROVIDER_AUTH_FAILED",
            0,
        ),
        (
            Reply::rate_limited(Duration::from_secs(30)),
            Code::ResourceExhausted,
            "PROVIDER_RATE_LIMITED",
            0,
        ),
        (
            Reply::status(500, "The server had an error"),
            Code::Unavailable,
            "PROVIDER_UNREACHABLE",
            0,
        ),
        (
            Reply::text(words(10)).cut_after(3),
            Code::Unavailable,
            "PROVIDER_UNREACHABLE",
            3,
        ),
    ];
    for (reply, code, reason, streamed_chunks) in cases {
        stack.fake.push_reply(reply);
        let events = collect_send(alice.send(session.id, "question").await).await;
        let kinds = common::kinds(&events);
        assert_eq!(&kinds[..2], ["user_message", "assistant_started"]);
        let Some(Event::Error(error)) = events.last() else {
            panic!("{kinds:?}")
        };
        assert_eq!(error.code, code as i32, "{error:?}");
        // The reason the UI words in the user's language.
        assert_eq!(error.reason, reason, "{error:?}");
        assert!(!error.message.is_empty());
        let stored = alice.message(started_id(&events)).await;
        assert_eq!(stored.status, pb::MessageStatus::Failed as i32);
        assert_eq!(stored.error, error.message);
        // Nothing the model produced is lost.
        assert_eq!(stored.content, text_of(&events));
        if streamed_chunks > 0 {
            assert!(words(10).starts_with(&stored.content) && !stored.content.is_empty());
        }
        // The question is stored too.
        assert_eq!(alice.message(stored.id - 1).await.content, "question");
        let watched = watch(&alice, stored.id).await;
        // A reloaded page gets the text the failed answer kept, then its error.
        let Some(Event::Error(e)) = watched.last() else {
            panic!("{watched:?}")
        };
        assert_eq!(e.code, code as i32);
        assert_eq!(e.reason, reason);
        assert_eq!(text_of(&watched), stored.content);
        if streamed_chunks > 0 {
            assert_eq!(common::kinds(&watched), ["delta", "error"]);
        } else {
            assert_eq!(common::kinds(&watched), ["error"]);
        }
        // The stored message carries the status code and the reason too.
        assert_eq!(stored.error_code, code as i32);
        assert_eq!(stored.error_reason, reason);
    }
    // Failed answers are not shown to the model again.
    let events = collect_send(alice.send(session.id, "last").await).await;
    assert!(kinds(&events).contains(&"completed"));
    let last_request = stack.fake.chat_requests().pop().unwrap();
    let roles: Vec<String> = role_and_content(&last_request.body)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert!(roles.iter().all(|r| r == "user"), "{roles:?}");
    stack.stop().await;
});

on_every_backend!(one_generation_per_session, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let (alice, session) = alice_chatting(&stack, titled()).await;
    let other = alice.create_session(titled()).await;
    stack.fake.push_reply(slow(30, Duration::from_millis(30)));

    let mut stream = alice.send(session.id, "first").await;
    let answer_id = read_deltas(&mut stream, 1).await;
    let refused = alice
        .messages()
        .send_message(alice.req(pb::SendMessageRequest {
            session_id: session.id,
            content: "second".into(),
            api_config_id: None,
            version_of_id: None,
        }))
        .await;
    assert_code(refused, Code::FailedPrecondition);
    assert_code(
        alice
            .messages()
            .regenerate_message(alice.req(pb::RegenerateMessageRequest {
                message_id: answer_id,
                api_config_id: None,
            }))
            .await,
        Code::FailedPrecondition,
    );
    // The refused message was not stored; other sessions are not blocked.
    assert_eq!(alice.list_messages(session.id).await.len(), 2);
    let events = collect_send(alice.send(other.id, "meanwhile").await).await;
    assert!(kinds(&events).contains(&"completed"));

    let rest = collect_send(stream).await;
    assert!(matches!(rest.last(), Some(Event::Completed(_))));
    let events = collect_send(alice.send(session.id, "second").await).await;
    assert!(kinds(&events).contains(&"completed"));
    assert_eq!(alice.list_messages(session.id).await.len(), 4);
    stack.stop().await;
});

on_every_backend!(
    regenerating_an_earlier_answer_adds_a_version_and_shows_it,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        stack.fake.push_reply(Reply::text("the first answer"));
        let events = collect_send(alice.send(session.id, "question").await).await;
        let old_id = started_id(&events);
        stack.fake.push_reply(Reply::text("the latest answer"));
        let events = collect_send(alice.send(session.id, "latest question").await).await;
        assert_eq!(text_of(&events), "the latest answer");

        stack.fake.push_reply(slow(20, Duration::from_millis(30)));
        let mut stream = regenerate(&alice, old_id).await;
        let Some(Event::AssistantStarted(new)) = stream
            .message()
            .await
            .unwrap()
            .and_then(|r| r.event)
            .and_then(|e| e.event)
        else {
            panic!("no assistant_started");
        };
        // While it runs, the old answer is still there.
        assert_eq!(alice.message(old_id).await.content, "the first answer");
        let events = collect(stream, |r: pb::RegenerateMessageResponse| r.event).await;
        let Some(Event::Completed(done)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(done.id, new.id);
        assert_eq!(done.content, words(20));
        // As stored, at the old answer's place (its created_at).
        assert_eq!(alice.message(done.id).await, *done);

        // A version beside the old one, which stays with the branch that followed it; the new
        // one is shown, on a branch of its own.
        assert_eq!(alice.message(old_id).await.content, "the first answer");
        let listed = alice.list_messages(session.id).await;
        let contents: Vec<&str> = listed.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(contents, ["question", words(20).as_str()]);
        assert_eq!(listed[1].sibling_ids, [old_id, done.id]);
        // The model was asked the same question with the history before it only.
        let request = stack.fake.chat_requests().pop().unwrap();
        assert_eq!(role_and_content(&request.body), [("user".into(), "question".into())]);
        // (Naming the question instead answers it again: a_question_whose_answer_was_deleted….)
        stack.stop().await;
    }
);

on_every_backend!(context_fits_the_budget, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| config.generation.context_budget_tokens = 120).await;
    let alice = stack.user("alice").await;
    stack.fake_config(&alice, "fake").await;
    let session = alice
        .create_session(pb::CreateSessionRequest {
            title: Some("t".into()),
            system_prompt: Some("Answer in one word.".into()),
            ..Default::default()
        })
        .await;
    // Each question ~30 estimated tokens, each answer a few.
    for i in 0..5 {
        stack.fake.push_reply(Reply::text(format!("ok{i}")));
        let question = format!("question {i} {}", "x".repeat(100));
        collect_send(alice.send(session.id, &question).await).await;
    }
    let sent = role_and_content(&stack.fake.chat_requests().pop().unwrap().body);
    assert_eq!(sent[0], ("system".into(), "Answer in one word.".into()));
    assert_eq!(sent.last().unwrap().1, format!("question 4 {}", "x".repeat(100)));
    assert!(sent.len() < 1 + 9, "older messages were dropped: {sent:?}");
    assert!(sent.len() >= 3, "recent history was kept: {sent:?}");
    // The kept history is the most recent, in order.
    assert_eq!(sent[sent.len() - 2], ("assistant".into(), "ok3".into()));

    // The newest question is sent even when it alone is over the budget.
    let huge = "y".repeat(4_000);
    collect_send(alice.send(session.id, &huge).await).await;
    let sent = role_and_content(&stack.fake.chat_requests().pop().unwrap().body);
    assert_eq!(
        sent,
        [("system".into(), "Answer in one word.".into()), ("user".into(), huge)]
    );
    stack.stop().await;
});

on_every_backend!(
    shutdown_stops_generations_and_keeps_their_text,
    |db_url: String| async move {
        let mut stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        stack.fake.push_reply(slow(200, Duration::from_millis(30)));
        let mut stream = alice.send(session.id, "a very long answer please").await;
        let answer_id = read_deltas(&mut stream, 3).await;

        stack.stop_chat().await.unwrap();
        // The stream ended with the STOPPED answer, and the row says so.
        let mut rest = Vec::new();
        while let Ok(Some(item)) = stream.message().await {
            if let Some(event) = item.event.and_then(|e| e.event) {
                rest.push(event);
            }
        }
        let Some(Event::Completed(last)) = rest.last() else {
            panic!("{rest:?}")
        };
        assert_eq!(last.status, pb::MessageStatus::Stopped as i32);
        let db = stack.database().await;
        let (status, content, error): (String, String, String) =
            sqlx::query_as("SELECT status, content, error FROM chat_messages WHERE id = $1")
                .bind(answer_id)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(status, "stopped");
        assert!(!content.is_empty() && words(200).starts_with(&content));
        assert_eq!(content, last.content);
        assert!(error.contains("shut down"), "{error}");
        stack.stop().await;
    }
);

on_every_backend!(
    answers_left_streaming_by_a_crash_fail_on_start,
    |db_url: String| async move {
        let mut stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        let events = collect_send(alice.send(session.id, "hello").await).await;
        let answer_id = started_id(&events);
        stack.stop_chat().await.unwrap();
        // What a process killed mid-answer leaves behind (a while ago: on PostgreSQL only
        // answers nobody touched for a while count as abandoned).
        let db = stack.database().await;
        sqlx::query(
            "UPDATE chat_messages SET status = 'streaming', content = 'half an ans', updated_at = 0 WHERE id = $1",
        )
        .bind(answer_id)
        .execute(&db)
        .await
        .unwrap();
        db.close().await;
        stack.restart_chat(stack.chat_config.clone()).await;
        let alice = User::new(
            tonic::transport::Channel::from_shared(format!("http://{}", stack.chat_address()))
                .unwrap()
                .connect()
                .await
                .unwrap(),
            alice.token.clone(),
        );
        let message = alice.message(answer_id).await;
        assert_eq!(message.status, pb::MessageStatus::Failed as i32);
        assert_eq!(message.content, "half an ans");
        assert!(message.error.contains("interrupted"), "{}", message.error);
        // The session is usable again.
        let events = collect_send(alice.send(session.id, "again").await).await;
        assert!(kinds(&events).contains(&"completed"));
        stack.stop().await;
    }
);

on_every_backend!(missing_configs_and_the_maximum_duration, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.generation.max_duration = Duration::from_millis(1500);
    })
    .await;
    let alice = stack.user("alice").await;
    let session = alice.create_session(titled()).await;
    // No config yet: refused, nothing stored.
    assert_code(
        alice
            .messages()
            .send_message(alice.req(pb::SendMessageRequest {
                session_id: session.id,
                content: "hi".into(),
                api_config_id: None,
                version_of_id: None,
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert!(alice.list_messages(session.id).await.is_empty());

    // An answer running past the maximum duration ends FAILED with what it had.
    stack.fake_config(&alice, "fake").await;
    stack.fake.push_reply(slow(200, Duration::from_millis(30)));
    let events = collect_send(alice.send(session.id, "take your time").await).await;
    let Some(Event::Error(error)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(error.code, Code::DeadlineExceeded as i32);
    let stored = alice.message(started_id(&events)).await;
    assert_eq!(stored.status, pb::MessageStatus::Failed as i32);
    assert!(!stored.content.is_empty());
    assert_eq!(stored.content, text_of(&events));
    assert!(stored.content.len() < words(200).len());
    stack.stop().await;
});

// A model that talks far past the limit: the answer ends at --max-answer-bytes as at the
// model's own length limit, is stored, and says why; the model call is ended.
on_every_backend!(answers_end_at_the_maximum_size, |db_url: String| async move {
    const LIMIT: usize = 4096;
    let stack = Stack::start_with(&db_url, |config| {
        config.generation.max_answer_bytes = LIMIT;
        config.generation.persist_interval = Duration::from_millis(40);
    })
    .await;
    let (alice, session) = alice_chatting(&stack, titled()).await;
    // 300 KB of two-byte characters among one-byte ones, so a cut may fall inside one.
    let endless: String = (0..30_000).map(|i| format!("wörd{i:05} ")).collect();
    let reasoning = "Thinking it over. ".repeat(20);
    stack.fake.push_reply(
        Reply::text(endless.clone())
            .reasoning(reasoning.clone())
            .chunk_size(37)
            .chunk_delay(Duration::from_millis(1)),
    );
    let events = collect_send(alice.send(session.id, "talk forever").await).await;
    let Some(Event::Completed(done)) = events.last() else {
        panic!("{:?}", kinds(&events))
    };
    assert_eq!(done.status, pb::MessageStatus::Complete as i32);
    assert!(done.error.contains("maximum size of 4 KiB"), "{}", done.error);
    let stored = alice.message(done.id).await;
    assert_eq!(stored.status, pb::MessageStatus::Complete as i32);
    assert_eq!(
        (stored.content.as_str(), stored.error.as_str()),
        (done.content.as_str(), done.error.as_str())
    );
    let size = stored.content.len() + stored.reasoning.len();
    assert!(size <= LIMIT, "{size} bytes stored");
    assert!(size > LIMIT - 4, "cut well before the limit: {size} bytes");
    assert_eq!(stored.reasoning, reasoning);
    assert!(endless.starts_with(&stored.content));
    assert_eq!(stored.content, text_of(&events));
    // The session is free for the next question, and the model call was ended.
    wait::until("the provider's stream closed", Duration::from_secs(5), || async {
        stack.fake.open_streams() == 0
    })
    .await;
    let next = collect_send(alice.send(session.id, "short one").await).await;
    assert!(kinds(&next).contains(&"completed"), "{next:?}");
    stack.stop().await;
});

on_every_backend!(
    per_user_limit_and_deleting_a_busy_session,
    |db_url: String| async move {
        let stack = Stack::start_with(&db_url, |config| config.generation.max_per_user = 1).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        stack.fake.push_reply(slow(200, Duration::from_millis(30)));
        let mut stream = alice.send(session.id, "one more").await;
        read_deltas(&mut stream, 2).await;
        // One answer at a time for this user (the limit is configured to 1 here).
        let elsewhere = alice.create_session(titled()).await;
        let status = alice
            .messages()
            .send_message(alice.req(pb::SendMessageRequest {
                session_id: elsewhere.id,
                content: "in parallel".into(),
                api_config_id: None,
                version_of_id: None,
            }))
            .await
            .expect_err("over the per-user limit");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(parley_service_kit::grpc_status::retry_delay(&status).is_some());
        assert!(alice.list_messages(elsewhere.id).await.is_empty());
        // Another user is not limited by Alice's answers.
        let bob = stack.user("bob").await;
        stack.fake_config(&bob, "fake").await;
        let bobs = bob.create_session(titled()).await;
        let events = collect_send(bob.send(bobs.id, "hi").await).await;
        assert!(kinds(&events).contains(&"completed"));

        // Deleting a session mid-answer stops the answer and removes everything.
        alice
            .sessions()
            .delete_session(alice.req(pb::DeleteSessionRequest { id: session.id }))
            .await
            .unwrap();
        let rest = collect_send(stream).await;
        let Some(Event::Completed(last)) = rest.last() else {
            panic!("{rest:?}")
        };
        assert_eq!(last.status, pb::MessageStatus::Stopped as i32);
        let db = stack.database().await;
        let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_messages WHERE session_id = $1")
            .bind(session.id)
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(left, 0);
        // The limit counts running answers only.
        let events = collect_send(alice.send(elsewhere.id, "now").await).await;
        assert!(kinds(&events).contains(&"completed"));
        stack.stop().await;
    }
);

on_every_backend!(
    another_instances_live_answer_is_watched_until_abandoned,
    |db_url: String| async move {
        let mut stack = Stack::start_with(&db_url, |config| {
            config.generation.stale_after = Duration::from_millis(3000);
        })
        .await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        let events = collect_send(alice.send(session.id, "hello").await).await;
        let answer_id = started_id(&events);
        stack.stop_chat().await.unwrap();
        // An answer another instance is writing right now (it touched the row just now).
        let db = stack.database().await;
        let now = parley_service_kit::database::now_millis();
        sqlx::query("UPDATE chat_messages SET status = 'streaming', content = 'so far', updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(answer_id)
            .execute(&db)
            .await
            .unwrap();
        stack.restart_chat(stack.chat_config.clone()).await;
        let alice = User::new(
            tonic::transport::Channel::from_shared(format!("http://{}", stack.chat_address()))
                .unwrap()
                .connect()
                .await
                .unwrap(),
            alice.token.clone(),
        );
        let sqlite = db_url.starts_with("sqlite:");
        let message = alice.message(answer_id).await;
        if sqlite {
            // One instance per SQLite file: whatever streams at start was abandoned.
            assert_eq!(message.status, pb::MessageStatus::Failed as i32);
            stack.stop().await;
            return;
        }
        // PostgreSQL: left alone while it is fresh, followed through the database…
        assert_eq!(message.status, pb::MessageStatus::Streaming as i32);
        assert_code(
            alice
                .messages()
                .send_message(alice.req(pb::SendMessageRequest {
                    session_id: session.id,
                    content: "meanwhile".into(),
                    api_config_id: None,
                    version_of_id: None,
                }))
                .await,
            Code::FailedPrecondition,
        );
        let mut watcher = alice
            .messages()
            .watch_generation(alice.req(pb::WatchGenerationRequest { message_id: answer_id }))
            .await
            .unwrap()
            .into_inner();
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(watcher.message().await.unwrap().unwrap().event.unwrap().event.unwrap());
        }
        assert_eq!(kinds(&seen), ["assistant_started", "delta"]);
        sqlx::query("UPDATE chat_messages SET content = 'so far, and more', updated_at = $1 WHERE id = $2")
            .bind(parley_service_kit::database::now_millis())
            .bind(answer_id)
            .execute(&db)
            .await
            .unwrap();
        let rest = collect(watcher, |r: pb::WatchGenerationResponse| r.event).await;
        seen.extend(rest);
        // …and failed once its instance stops touching it.
        assert_eq!(text_of(&seen), "so far, and more");
        let Some(Event::Error(error)) = seen.last() else {
            panic!("{seen:?}")
        };
        assert!(error.message.contains("interrupted"), "{error:?}");
        let message = alice.message(answer_id).await;
        assert_eq!(message.status, pb::MessageStatus::Failed as i32);
        assert_eq!(message.content, "so far, and more");

        // An answer deleted while it is followed through the database ends the watch with
        // NOT_FOUND, not silently.
        sqlx::query("UPDATE chat_messages SET status = 'streaming', updated_at = $1 WHERE id = $2")
            .bind(parley_service_kit::database::now_millis())
            .bind(answer_id)
            .execute(&db)
            .await
            .unwrap();
        let mut watcher = alice
            .messages()
            .watch_generation(alice.req(pb::WatchGenerationRequest { message_id: answer_id }))
            .await
            .unwrap()
            .into_inner();
        let first = watcher.message().await.unwrap().unwrap().event.unwrap().event.unwrap();
        assert_eq!(kind(&first), "assistant_started");
        sqlx::query("DELETE FROM chat_messages WHERE id = $1")
            .bind(answer_id)
            .execute(&db)
            .await
            .unwrap();
        let rest = collect(watcher, |r: pb::WatchGenerationResponse| r.event).await;
        let Some(Event::Error(error)) = rest.last() else {
            panic!("{rest:?}")
        };
        assert_eq!(error.code, Code::NotFound as i32, "{error:?}");
        assert_eq!(error.message, "the answer was deleted");
        stack.stop().await;
    }
);

on_every_backend!(a_quiet_model_is_kept_alive_by_heartbeats, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.generation.stale_after = Duration::from_millis(1000);
        config.generation.heartbeat_interval = Duration::from_millis(200);
    })
    .await;
    let (alice, session) = alice_chatting(&stack, titled()).await;
    // Silent for longer than "stale": only the heartbeat shows the answer is alive.
    stack
        .fake
        .push_reply(Reply::text("finally").first_chunk_delay(Duration::from_millis(2500)));
    let mut stream = alice.send(session.id, "think hard").await;
    let mut answer_id = None;
    while answer_id.is_none() {
        if let Some(Event::AssistantStarted(m)) = next_event(&mut stream).await {
            answer_id = Some(m.id);
        }
    }
    let answer_id = answer_id.unwrap();
    // Before the model said a word, the question is stored and the answer row exists.
    let stored = alice.list_messages(session.id).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[0].content.as_str(), stored[0].status),
        ("think hard", pb::MessageStatus::Complete as i32)
    );
    assert_eq!(
        (stored[1].id, stored[1].status),
        (answer_id, pb::MessageStatus::Streaming as i32)
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        alice.message(answer_id).await.status,
        pb::MessageStatus::Streaming as i32,
        "the sweeper took a live answer for abandoned"
    );
    let rest = collect_send(stream).await;
    let Some(Event::Completed(done)) = rest.last() else {
        panic!("{rest:?}")
    };
    assert_eq!(done.content, "finally");
    assert_eq!(done.error, "");
    stack.stop().await;
});

on_every_backend!(shutdown_does_not_wait_for_a_title, |db_url: String| async move {
    // A long drain deadline: only the title could keep the shutdown waiting.
    let mut stack = Stack::start_with(&db_url, |config| config.drain_deadline = Duration::from_secs(60)).await;
    let alice = stack.user("alice").await;
    stack.fake_config(&alice, "fake").await;
    let session = alice.create_session(pb::CreateSessionRequest::default()).await;
    stack.fake.push_reply(Reply::text("the answer"));
    // The title request hangs.
    stack
        .fake
        .push_reply(Reply::text("Never Seen").headers_delay(Duration::from_secs(60)));
    let mut stream = alice.send(session.id, "hello").await;
    let mut events = Vec::new();
    while !matches!(events.last(), Some(Event::Completed(_))) {
        events.push(next_event(&mut stream).await.expect("stream ended before completed"));
    }
    // Wait until the title request is under way.
    wait::until("the title request under way", Duration::from_secs(2), || async {
        stack.fake.chat_requests().len() == 2
    })
    .await;
    // Not a speed check: a shutdown that waited for the title would wait out its 30 s limit.
    tokio::time::timeout(Duration::from_secs(20), stack.stop_chat())
        .await
        .expect("shutdown waited for the title")
        .unwrap();
    // The stream ended cleanly after the answer, without a title.
    let rest = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("the stream waited for the title");
    assert!(matches!(rest, Ok(None)), "{rest:?}");
    let db = stack.database().await;
    let (title,): (String,) = sqlx::query_as("SELECT title FROM chat_sessions WHERE id = $1")
        .bind(session.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(title, "");
    let (status,): (String,) = sqlx::query_as("SELECT status FROM chat_messages WHERE id = $1")
        .bind(started_id(&events))
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(status, "complete");
    stack.stop().await;
});

/// PostgreSQL only: a SQLite file is served by one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_postgres_watch_and_stop_each_others_answers() {
    let Some(database) = parley_testkit::test_database::TestDatabase::postgres().await else {
        return;
    };
    let db_url = database.url.clone();
    // Stops asked for through the database are read with the heartbeat while the model is
    // quiet: often here, so the quiet answer below is stopped before its first token.
    let mut stack = Stack::start_with(&db_url, |config| {
        config.generation.heartbeat_interval = Duration::from_millis(300);
    })
    .await;
    let (alice, session) = alice_chatting(&stack, titled()).await;
    let elsewhere = stack.second_instance(&alice).await;
    stack.fake.push_reply(slow(150, Duration::from_millis(30)));

    let mut stream = alice.send(session.id, "a long one").await;
    let answer_id = read_deltas(&mut stream, 3).await;
    // The other instance knows the session is busy…
    assert_code(
        elsewhere
            .messages()
            .send_message(elsewhere.req(pb::SendMessageRequest {
                session_id: session.id,
                content: "me too".into(),
                api_config_id: None,
                version_of_id: None,
            }))
            .await,
        Code::FailedPrecondition,
    );
    // …follows the answer through the database…
    let mut watcher = elsewhere
        .messages()
        .watch_generation(elsewhere.req(pb::WatchGenerationRequest { message_id: answer_id }))
        .await
        .unwrap()
        .into_inner();
    let first = watcher.message().await.unwrap().unwrap().event.unwrap().event.unwrap();
    assert_eq!(kind(&first), "assistant_started");
    // …and stops it.
    let stopped = elsewhere
        .messages()
        .stop_generation(elsewhere.req(pb::StopGenerationRequest { message_id: answer_id }))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(stopped.status, pb::MessageStatus::Stopped as i32);
    assert!(!stopped.content.is_empty() && words(150).starts_with(&stopped.content));
    assert!(stopped.content.len() < words(150).len());

    let rest = collect_send(stream).await;
    let Some(Event::Completed(last)) = rest.last() else {
        panic!("{rest:?}")
    };
    assert_eq!(last.status, pb::MessageStatus::Stopped as i32);
    assert_eq!(last.content, stopped.content);
    let watched = collect(watcher, |r: pb::WatchGenerationResponse| r.event).await;
    let Some(Event::Completed(seen)) = watched.last() else {
        panic!("{watched:?}")
    };
    assert_eq!(seen.status, pb::MessageStatus::Stopped as i32);
    assert_eq!(text_of(&watched), stopped.content);

    // A stop also reaches an answer whose model has not said anything yet.
    stack
        .fake
        .push_reply(Reply::text("too late").first_chunk_delay(Duration::from_secs(3)));
    let mut stream = alice.send(session.id, "think first").await;
    let Some(Event::UserMessage(_)) = next_event(&mut stream).await else {
        panic!()
    };
    let Some(Event::AssistantStarted(quiet)) = next_event(&mut stream).await else {
        panic!()
    };
    let stopped = elsewhere
        .messages()
        .stop_generation(elsewhere.req(pb::StopGenerationRequest { message_id: quiet.id }))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(stopped.status, pb::MessageStatus::Stopped as i32);
    assert_eq!(stopped.content, "", "stopped before the first token");
    stack.stop().await;
}

/// Reads events until the streamed text is `text`; answers the assistant message id.
async fn read_until_text(stream: &mut tonic::Streaming<pb::SendMessageResponse>, text: &str) -> i64 {
    let mut answer = None;
    let mut seen = String::new();
    while seen != text {
        match next_event(stream).await {
            Some(Event::AssistantStarted(m)) => answer = Some(m.id),
            Some(Event::Delta(d)) => seen.push_str(&d),
            Some(_) => {}
            None => panic!("the stream ended early with {seen:?}"),
        }
    }
    answer.expect("no assistant_started")
}

on_every_backend!(
    a_question_whose_answer_was_deleted_is_answered_again,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        stack.fake.push_reply(Reply::text("an answer the user deletes"));
        let events = collect_send(alice.send(session.id, "the question").await).await;
        let question_id = question_id(&events);
        alice
            .messages()
            .delete_message(alice.req(pb::DeleteMessageRequest {
                id: started_id(&events),
            }))
            .await
            .unwrap();

        stack.fake.push_reply(Reply::text("the new answer"));
        let events = collect(
            regenerate(&alice, question_id).await,
            |r: pb::RegenerateMessageResponse| r.event,
        )
        .await;
        let Some(Event::Completed(done)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(done.content, "the new answer");
        assert_eq!(done.reply_to_id, Some(question_id));
        let listed: Vec<(i64, String)> = alice
            .list_messages(session.id)
            .await
            .into_iter()
            .map(|m| (m.id, m.content))
            .collect();
        assert_eq!(
            listed,
            [
                (question_id, "the question".to_owned()),
                (done.id, "the new answer".to_owned())
            ]
        );
        // Answering it again replaces that answer: one answer per question.
        stack.fake.push_reply(Reply::text("a better answer"));
        collect(
            regenerate(&alice, question_id).await,
            |r: pb::RegenerateMessageResponse| r.event,
        )
        .await;
        let contents: Vec<String> = alice
            .list_messages(session.id)
            .await
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(contents, ["the question", "a better answer"]);
        stack.stop().await;
    }
);

async fn regenerate(user: &User, message_id: i64) -> tonic::Streaming<pb::RegenerateMessageResponse> {
    user.messages()
        .regenerate_message(user.req(pb::RegenerateMessageRequest {
            message_id,
            api_config_id: None,
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn stop(user: &User, message_id: i64) -> pb::Message {
    user.messages()
        .stop_generation(user.req(pb::StopGenerationRequest { message_id }))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap()
}

async fn watch(user: &User, message_id: i64) -> Vec<Event> {
    let stream = user
        .messages()
        .watch_generation(user.req(pb::WatchGenerationRequest { message_id }))
        .await
        .unwrap()
        .into_inner();
    collect(stream, |r: pb::WatchGenerationResponse| r.event).await
}

fn status_of(message: &pb::Message) -> pb::MessageStatus {
    pb::MessageStatus::try_from(message.status).unwrap()
}

on_every_backend!(
    every_regeneration_is_kept_as_a_version_and_the_shown_one_is_the_context,
    |db_url: String| async move {
        use pb::MessageStatus::{Complete, Failed, Stopped};
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        stack.fake.push_reply(Reply::text("the first answer"));
        let events = collect_send(alice.send(session.id, "question").await).await;
        let question_id = question_id(&events);
        let first = started_id(&events);
        assert_eq!(alice.message(first).await.reply_to_id, Some(question_id));

        // A regeneration the user stops is shown in the old answer's place; the old one stays
        // as its first version.
        stack.fake.push_reply(slow(100, Duration::from_millis(30)));
        let mut regenerating = regenerate(&alice, first).await;
        let second = match regenerating
            .message()
            .await
            .unwrap()
            .and_then(|r| r.event)
            .and_then(|e| e.event)
        {
            Some(Event::AssistantStarted(m)) => {
                assert_eq!(m.reply_to_id, Some(question_id));
                m.id
            }
            other => panic!("{other:?}"),
        };
        // Some text first, so the stopped answer is not empty.
        wait::until("some text of the answer stored", Duration::from_secs(10), || async {
            !alice.message(second).await.content.is_empty()
        })
        .await;
        let stopped = stop(&alice, second).await;
        assert_eq!(status_of(&stopped), Stopped);
        let listed = alice.list_messages(session.id).await;
        assert_eq!(
            listed.iter().map(|m| m.id).collect::<Vec<_>>(),
            [question_id, second],
            "the new version is shown"
        );
        assert_eq!(listed[1].sibling_ids, [first, second]);
        assert_eq!(alice.message(first).await.content, "the first answer");

        // A failed regeneration is a version too (same question, its status code stored),
        // never shown to the model; the user goes back to the stopped one and asks on.
        stack.fake.push_reply(Reply::status(500, "The server had an error"));
        let events = collect(regenerate(&alice, second).await, |r: pb::RegenerateMessageResponse| {
            r.event
        })
        .await;
        let third = started_id(&events);
        let failed = alice.message(third).await;
        assert_eq!(status_of(&failed), Failed);
        assert_eq!(failed.error_code, Code::Unavailable as i32);
        assert_eq!(failed.reply_to_id, Some(question_id));
        assert_eq!(alice.message(second).await, stopped);
        alice
            .messages()
            .switch_branch(alice.req(pb::SwitchBranchRequest {
                message_id: second,
                page_size: 0,
            }))
            .await
            .unwrap();

        stack.fake.push_reply(Reply::text("next answer"));
        collect_send(alice.send(session.id, "next question").await).await;
        let sent = role_and_content(&stack.fake.chat_requests().pop().unwrap().body);
        assert_eq!(
            sent,
            [
                ("user".into(), "question".into()),
                ("assistant".into(), stopped.content.clone()),
                ("user".into(), "next question".into()),
            ]
        );

        // Regenerating the failed attempt: a fourth version, shown alone on its branch (the
        // next question and its answer follow the second version, which stays).
        stack.fake.push_reply(Reply::text("the final answer"));
        let events = collect(regenerate(&alice, third).await, |r: pb::RegenerateMessageResponse| {
            r.event
        })
        .await;
        let Some(Event::Completed(done)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(status_of(done), Complete);
        let listed = alice.list_messages(session.id).await;
        let answers: Vec<(&str, Option<i64>)> = listed
            .iter()
            .filter(|m| m.role == pb::MessageRole::Assistant as i32)
            .map(|m| (m.content.as_str(), m.reply_to_id))
            .collect();
        assert_eq!(answers, [("the final answer", Some(question_id))]);
        assert_eq!(listed[1].sibling_ids, [first, second, third, done.id]);
        for kept in [first, second, third] {
            assert_eq!(alice.message(kept).await.reply_to_id, Some(question_id));
        }
        stack.stop().await;
    }
);

on_every_backend!(
    a_tab_attaching_while_the_title_is_made_gets_it,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = stack.user("alice").await;
        stack.fake_config(&alice, "fake").await;
        let session = alice.create_session(pb::CreateSessionRequest::default()).await;
        stack.fake.push_reply(Reply::text("An answer"));
        stack
            .fake
            .push_reply(Reply::text("Late Title").headers_delay(Duration::from_secs(3)));
        let mut stream = alice.send(session.id, "hello").await;
        let answer_id = read_until_text(&mut stream, "An answer").await;
        let Some(Event::Completed(_)) = next_event(&mut stream).await else {
            panic!("no completed")
        };
        wait::until("the title request under way", Duration::from_secs(2), || async {
            stack.fake.chat_requests().len() == 2
        })
        .await;
        // Asked for a title with room for a reasoning model to think first.
        let body = &stack.fake.chat_requests()[1].body;
        let max_tokens = body["max_tokens"].as_i64().or(body["max_completion_tokens"].as_i64());
        assert!(max_tokens.is_some_and(|n| n >= 256), "{body}");
        let second_tab = watch(&alice, answer_id).await;
        assert_eq!(
            kinds(&second_tab),
            ["assistant_started", "delta", "completed", "session_updated"]
        );
        let Some(Event::SessionUpdated(updated)) = second_tab.last() else {
            panic!()
        };
        assert_eq!(updated.title, "Late Title");
        assert_eq!(text_of(&second_tab), "An answer");
        drop(stream);

        // A model that gives no title (here: it only reasoned) names the chat by its question.
        let untitled = alice.create_session(pb::CreateSessionRequest::default()).await;
        stack.fake.push_reply(Reply::text("Lifetimes are scopes."));
        stack
            .fake
            .push_reply(Reply::text("<think>The user asks about lifetimes; a title could be"));
        let events = collect_send(alice.send(untitled.id, "How do lifetimes work in Rust?\nThanks").await).await;
        let Some(Event::SessionUpdated(updated)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(updated.title, "How do lifetimes work in Rust?");

        // A first answer that failed still names the chat by its question: no "New chat" is
        // left behind.
        let failed_first = alice.create_session(pb::CreateSessionRequest::default()).await;
        stack.fake.push_reply(Reply::status(401, "Incorrect API key provided"));
        let events = collect_send(alice.send(failed_first.id, "Why is the sky blue?").await).await;
        assert_eq!(
            &kinds(&events)[kinds(&events).len() - 2..],
            ["error", "session_updated"],
            "{events:?}"
        );
        let Some(Event::SessionUpdated(updated)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(updated.title, "Why is the sky blue?");
        stack.stop().await;
    }
);

on_every_backend!(nul_characters_are_refused_or_dropped, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let (alice, session) = alice_chatting(&stack, titled()).await;
    let db = stack.database().await;
    // PostgreSQL cannot store NUL: refused as bad input on every backend, nothing stored.
    assert_invalid(
        alice
            .messages()
            .send_message(alice.req(pb::SendMessageRequest {
                session_id: session.id,
                content: "hello\0world".into(),
                api_config_id: None,
                version_of_id: None,
            }))
            .await,
        "content",
    );
    assert_eq!(count_rows(&db, "chat_messages").await, 0);
    assert_invalid(
        alice
            .sessions()
            .create_session(alice.req(pb::CreateSessionRequest {
                title: Some("a\0b".into()),
                ..Default::default()
            }))
            .await,
        "title",
    );
    assert_invalid(
        alice
            .personas()
            .create_persona(alice.req(pb::CreatePersonaRequest {
                name: "p".into(),
                description: String::new(),
                system_prompt: "be\0nice".into(),
                ..Default::default()
            }))
            .await,
        "system_prompt",
    );
    // A model that sends NUL loses nothing else: the answer is stored without it.
    stack
        .fake
        .push_reply(Reply::text("nul\0 in the\0 answer").reasoning("and\0 here"));
    let events = collect_send(alice.send(session.id, "go").await).await;
    let Some(Event::Completed(done)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(done.content, "nul in the answer");
    assert_eq!(done.reasoning, "and here");
    let stored = alice.message(done.id).await;
    assert_eq!(status_of(&stored), pb::MessageStatus::Complete);
    assert_eq!(stored.content, "nul in the answer");
    assert_eq!(text_of(&events), "nul in the answer");
    stack.stop().await;
});

/// Makes the database refuse to store how an answer ended (its progress writes still pass).
async fn refuse_final_writes(db: &sqlx::AnyPool, sqlite: bool) {
    let statements: &[&str] = if sqlite {
        &[
            "CREATE TRIGGER refuse_final_writes BEFORE UPDATE OF status ON chat_messages \
           WHEN NEW.status <> 'streaming' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        ]
    } else {
        &[
            "CREATE FUNCTION refuse_final_writes() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse_final_writes BEFORE UPDATE ON chat_messages FOR EACH ROW \
             WHEN (NEW.status <> 'streaming') EXECUTE FUNCTION refuse_final_writes()",
        ]
    };
    for statement in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
            .execute(db)
            .await
            .unwrap();
    }
}

async fn allow_final_writes(db: &sqlx::AnyPool, sqlite: bool) {
    let statement = if sqlite {
        "DROP TRIGGER refuse_final_writes"
    } else {
        "DROP TRIGGER refuse_final_writes ON chat_messages"
    };
    sqlx::raw_sql(statement).execute(db).await.unwrap();
}

on_every_backend!(
    a_final_write_the_database_refuses_is_retried_until_stored,
    |db_url: String| async move {
        let sqlite = db_url.starts_with("sqlite:");
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        let db = stack.database().await;
        refuse_final_writes(&db, sqlite).await;
        stack.fake.push_reply(Reply::text("kept through the outage"));
        let mut stream = alice.send(session.id, "q").await;
        let answer_id = read_until_text(&mut stream, "kept through the outage").await;
        // The model is done, the database refuses: no COMPLETED that is not stored (before,
        // three retries over about a second, then COMPLETED built from memory).
        let early = tokio::time::timeout(Duration::from_secs(3), stream.message()).await;
        assert!(early.is_err(), "an end arrived while nothing was stored: {early:?}");
        assert_eq!(status_of(&alice.message(answer_id).await), pb::MessageStatus::Streaming);
        // The session stays busy until the answer is stored.
        assert_code(
            alice
                .messages()
                .send_message(alice.req(pb::SendMessageRequest {
                    session_id: session.id,
                    content: "next".into(),
                    api_config_id: None,
                    version_of_id: None,
                }))
                .await,
            Code::FailedPrecondition,
        );
        allow_final_writes(&db, sqlite).await;
        let rest = collect_send(stream).await;
        let Some(Event::Completed(done)) = rest.last() else {
            panic!("{rest:?}")
        };
        assert_eq!(status_of(done), pb::MessageStatus::Complete);
        let stored = alice.message(answer_id).await;
        assert_eq!(status_of(&stored), pb::MessageStatus::Complete);
        assert_eq!(stored.content, "kept through the outage");
        assert_eq!(*done, stored);
        stack.stop().await;
    }
);

on_every_backend!(
    an_answer_that_cannot_be_stored_ends_with_an_error,
    |db_url: String| async move {
        let sqlite = db_url.starts_with("sqlite:");
        // Retrying the final write stops after the maximum duration.
        let stack = Stack::start_with(&db_url, |config| {
            config.generation.max_duration = Duration::from_secs(2);
        })
        .await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        let db = stack.database().await;
        refuse_final_writes(&db, sqlite).await;
        stack.fake.push_reply(Reply::text("never stored"));
        let events = collect_send(alice.send(session.id, "q").await).await;
        assert!(!kinds(&events).contains(&"completed"), "{events:?}");
        let Some(Event::Error(error)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(error.code, Code::Unavailable as i32, "{error:?}");
        assert!(error.message.contains("could not be stored"), "{error:?}");
        allow_final_writes(&db, sqlite).await;
        stack.stop().await;
    }
);

on_every_backend!(
    a_stop_reaches_an_answer_that_is_still_starting,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack, titled()).await;
        // A long history: reading it is what a generation does after its row is stored and
        // before it is registered, so a stop has time to arrive in between.
        let db = stack.database().await;
        let big = "history ".repeat(12_000);
        for i in 0..200i64 {
            sqlx::query(
                "INSERT INTO chat_messages (session_id, role, content, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'complete', $4, $4)",
            )
            .bind(session.id)
            .bind(if i % 2 == 0 { "user" } else { "assistant" })
            .bind(&big)
            .bind(i + 1)
            .execute(&db)
            .await
            .unwrap();
        }
        // The model would answer only after a while.
        stack
            .fake
            .push_reply(Reply::text("too late").first_chunk_delay(Duration::from_secs(3)));
        let sender = {
            let alice = alice.clone();
            let session_id = session.id;
            tokio::spawn(async move { collect_send(alice.send(session_id, "think first").await).await })
        };
        // Stop the answer the moment its row exists.
        let answer_id = wait::eventually("the answer's row", Duration::from_secs(10), || async {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT id FROM chat_messages WHERE session_id = $1 AND status = 'streaming'")
                    .bind(session.id)
                    .fetch_optional(&db)
                    .await
                    .unwrap();
            row.map(|(id,)| id)
        })
        .await;
        let stopped = stop(&alice, answer_id).await;
        assert_eq!(status_of(&stopped), pb::MessageStatus::Stopped, "{stopped:?}");
        assert_eq!(stopped.content, "", "stopped before the first token");
        let events = sender.await.unwrap();
        let Some(Event::Completed(last)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(status_of(last), pb::MessageStatus::Stopped);
        stack.stop().await;
    }
);

/// PostgreSQL only: two instances on one database, each with its own registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_postgres_start_one_answer_per_session_and_share_the_user_limit() {
    let Some(database) = parley_testkit::test_database::TestDatabase::postgres().await else {
        return;
    };
    let mut stack = Stack::start_with(&database.url, |config| config.generation.max_per_user = 1).await;
    let alice = stack.user("alice").await;
    stack.fake_config(&alice, "fake").await;
    let elsewhere = stack.second_instance(&alice).await;
    let send = |user: &User, session_id: i64| {
        let mut client = user.messages();
        let request = user.req(pb::SendMessageRequest {
            session_id,
            content: "at the same moment".into(),
            api_config_id: None,
            version_of_id: None,
        });
        async move { client.send_message(request).await }
    };
    for round in 0..5 {
        let session = alice.create_session(titled()).await;
        // Long enough that the first answer still streams when the second request arrives.
        stack.fake.push_reply(slow(10, Duration::from_millis(50)));
        let (here, there) = tokio::join!(send(&alice, session.id), send(&elsewhere, session.id));
        let (winner, loser) = match (here, there) {
            (Ok(stream), Err(status)) | (Err(status), Ok(stream)) => (stream, status),
            (Ok(_), Ok(_)) => panic!("round {round}: both instances started an answer in one session"),
            (Err(a), Err(b)) => panic!("round {round}: neither started: {a:?} {b:?}"),
        };
        assert_eq!(loser.code(), Code::FailedPrecondition, "round {round}: {loser:?}");
        let events = collect_send(winner.into_inner()).await;
        assert!(kinds(&events).contains(&"completed"), "{events:?}");
        assert_eq!(alice.list_messages(session.id).await.len(), 2, "round {round}");
    }

    // The per-user limit counts the answers of every instance.
    let busy = alice.create_session(titled()).await;
    stack.fake.push_reply(slow(100, Duration::from_millis(30)));
    let mut stream = alice.send(busy.id, "a long one").await;
    let answer_id = read_deltas(&mut stream, 1).await;
    let other = alice.create_session(titled()).await;
    let refused = send(&elsewhere, other.id)
        .await
        .expect_err("over the limit on another instance");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(alice.list_messages(other.id).await.is_empty());
    stop(&alice, answer_id).await;
    stack.stop().await;
}
