//! A room across two chat-service processes: the `chat-service` binary started twice, on one
//! PostgreSQL database, their room events carried by NATS, as the split deployment runs it.
//! Alice talks to the first process only, Bob to the second: Bob sees Alice's message and the
//! AI member's answer, written by the first process, stream in live; an answer written by the
//! first is stopped through the second. user-service, llm-service and the fake provider run
//! in this process (the `Stack`, whose own chat-service is on a SQLite file and unused here).
//! Needs PARLEY_TEST_POSTGRES_URL and PARLEY_TEST_NATS_URL; skipped, saying so, without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::rooms::*;
use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_testkit::test_database::TestDatabase;
use parley_testkit::wait;

const BINARY: &str = env!("CARGO_BIN_EXE_chat-service");
/// Both processes seal and open API keys with it (version 1, 32 bytes).
const MASTER_KEYS: &str = "1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A chat-service process, killed when the test ends however it ends.
struct Process {
    child: tokio::process::Child,
    url: String,
}

impl Process {
    /// Starts the binary on a free port; its log goes to `log` (read when the test fails).
    fn start(stack: &Stack, database_url: &str, nats_url: &str, log: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = tempfile::tempdir().unwrap().keep();
        let child = tokio::process::Command::new(BINARY)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", &data_dir.display().to_string()])
            .args(["--database-url", database_url])
            .args(["--user-service-url", &stack.chat_config.user_service_url])
            .args(["--llm-service-url", &stack.chat_config.llm_service_url])
            .args(["--nats-url", nats_url])
            .env("PARLEY_CHAT_MASTER_KEYS", MASTER_KEYS)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// A client of the chat-service at `url` for `user`, once it answers.
async fn client_at(url: &str, user: &User) -> User {
    let client = User::new(wait::channel_to(url).await, user.token.clone());
    let probe = client.clone();
    wait::eventually(&format!("chat-service at {url} to serve"), EVENT_WITHIN, || {
        let probe = probe.clone();
        async move {
            probe
                .rooms()
                .list_my_rooms(probe.req(pb::ListMyRoomsRequest {}))
                .await
                .ok()
        }
    })
    .await;
    client
}

async fn next_on(stream: &mut tonic::Streaming<pb::WatchRoomEventsResponse>) -> Event {
    loop {
        if let Some(event) = next_message_event(stream).await.event {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_two_chat_service_processes() {
    let Ok(nats_url) = std::env::var("PARLEY_TEST_NATS_URL") else {
        eprintln!("skipped: PARLEY_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)");
        return;
    };
    let Some(db) = TestDatabase::postgres().await else {
        eprintln!("skipped: PARLEY_TEST_POSTGRES_URL is not set; instances share only a PostgreSQL database");
        return;
    };
    let sqlite = TestDatabase::sqlite();
    let stack = Stack::start(&sqlite.url).await;
    let logs = tempfile::tempdir().unwrap();
    let (first_log, second_log) = (logs.path().join("first.log"), logs.path().join("second.log"));
    let mut first = Process::start(&stack, &db.url, &nats_url, &first_log);
    let mut second = Process::start(&stack, &db.url, &nats_url, &second_log);
    let result = tokio::spawn(run(stack, first.url.clone(), second.url.clone())).await;
    let _ = first.child.kill().await;
    let _ = second.child.kill().await;
    if let Err(panic) = result {
        for log in [&first_log, &second_log] {
            eprintln!(
                "--- {}:\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::panic::resume_unwind(panic.into_panic());
    }
}

async fn run(stack: Stack, first: String, second: String) {
    let alice_anywhere = person(&stack, "alice").await;
    let bob_anywhere = person(&stack, "bob").await;
    let alice = Person {
        user: client_at(&first, &alice_anywhere.user).await,
        account: alice_anywhere.account.clone(),
    };
    let alice_on_second = client_at(&second, &alice_anywhere.user).await;
    let bob = Person {
        user: client_at(&second, &bob_anywhere.user).await,
        account: bob_anywhere.account.clone(),
    };

    let room = create_room(&alice, "across processes", pb::RoomVisibility::Private).await;
    let config = alice
        .user
        .configs()
        .create_api_config(alice.user.req(pb::CreateApiConfigRequest {
            name: "fake".into(),
            base_url: stack.fake.base_url(),
            api_key: stack.fake.api_key(),
            model: "fake-model".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    alice
        .user
        .rooms()
        .set_room_ai(alice.user.req(pb::SetRoomAiRequest {
            room_id: room.id,
            api_config_id: Some(config.id),
            persona_id: None,
        }))
        .await
        .unwrap();
    let mut bobs = watch(&bob, 0).await;
    invite_and_accept(&alice, room.id, &bob).await;

    // Alice's message, posted on the first process, reaches Bob on the second live.
    post(&alice, room.id, "hello from the first process").await.unwrap();
    loop {
        if let Event::MessagePosted(m) = next_on(&mut bobs).await
            && m.content == "hello from the first process"
        {
            break;
        }
    }

    // The AI's answer is written by the first process (where Alice asked); Bob sees it stream.
    stack.fake.push_reply(
        Reply::text("One, two, three, four.")
            .chunk_size(4)
            .chunk_delay(Duration::from_millis(20)),
    );
    post(&alice, room.id, "@ai count to four").await.unwrap();
    let answer = loop {
        if let Event::MessagePosted(m) = next_on(&mut bobs).await
            && m.author_kind == pb::AuthorKind::Ai as i32
        {
            break m;
        }
    };
    let mut deltas = 0;
    let mut streamed = String::new();
    let completed = loop {
        match next_on(&mut bobs).await {
            Event::AiAnswerDelta(delta) => {
                assert_eq!(delta.message_id, answer.id);
                deltas += 1;
                streamed.push_str(&delta.text);
            }
            Event::MessageCompleted(m) => break m,
            _ => {}
        }
    };
    assert!(deltas > 1, "streamed in pieces, not at the end: {deltas}");
    assert_eq!(streamed, "One, two, three, four.");
    assert_eq!(completed.content, "One, two, three, four.");
    assert_eq!(completed.status, pb::MessageStatus::Complete as i32);

    // An answer the first process writes is stopped through the second (through its row).
    stack.fake.push_reply(
        Reply::text("word ".repeat(400))
            .chunk_size(5)
            .chunk_delay(Duration::from_millis(30)),
    );
    post(&alice, room.id, "@ai talk for a while").await.unwrap();
    let long = loop {
        if let Event::AiAnswerDelta(delta) = next_on(&mut bobs).await {
            break delta.message_id;
        }
    };
    let stopped = alice_on_second
        .rooms()
        .stop_room_answer(alice_on_second.req(pb::StopRoomAnswerRequest {
            room_id: room.id,
            message_id: long,
        }))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(stopped.status, pb::MessageStatus::Stopped as i32);
    assert!(stopped.content.starts_with("word "), "{stopped:?}");
    loop {
        if let Event::MessageCompleted(m) = next_on(&mut bobs).await {
            assert_eq!(m.id, long);
            assert_eq!(m.status, pb::MessageStatus::Stopped as i32);
            break;
        }
    }
    stack.stop().await;
}
