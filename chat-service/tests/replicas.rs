//! chat-service as a Deployment of two replicas: two `chat-service` processes on one
//! PostgreSQL database with NATS, user-service, llm-service and the fake provider, and the
//! gateway balancing over both replicas "behind one name" (127.0.0.2 and 127.0.0.3 on one
//! port; the gateway resolves the name from a list, as a test cannot make the system's
//! resolver answer one name with two loopback addresses).
//!
//! - An answer started on one replica is followed (live, through NATS) and stopped through
//!   the other.
//! - A replica killed mid-answer (SIGKILL) leaves its answer FAILED with the text it had
//!   saved, no row STREAMING, and chatting goes on through the gateway on the survivor.
//! - A replica stopped for a rollout (SIGTERM) lets its running answer finish: followers
//!   through the gateway, on either replica, see it complete, and new chats go to the other.
//!
//! Needs PARLEY_TEST_POSTGRES_URL and PARLEY_TEST_NATS_URL; skipped, saying so, without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::user::v1 as user_pb;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use parley_service_kit::balanced_channel::{ListResolver, Resolver};
use parley_testkit::fake_openai::FakeOpenAi;
use parley_testkit::test_database::TestDatabase;
use parley_testkit::wait;
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const BINARY: &str = env!("CARGO_BIN_EXE_chat-service");
const CHAT_NAME: &str = "chat-service.test";
/// Answers that stop being written are taken for abandoned after this long (2 s, not 30).
const ABANDONED_AFTER_SECS: &str = "2";

/// One `chat-service` process.
struct Replica {
    address: SocketAddr,
    child: tokio::process::Child,
}

impl Replica {
    async fn start(address: SocketAddr, env: &[(&str, String)], log: std::path::PathBuf) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let child = tokio::process::Command::new(BINARY)
            .env_clear()
            .env("PARLEY_CHAT_LISTEN", address.to_string())
            .env("PARLEY_CHAT_ABANDONED_AFTER_SECS", ABANDONED_AFTER_SECS)
            .env("PARLEY_CHAT_GENERATION_GRACE_SECS", "20")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let replica = Self { address, child };
        let channel = wait::channel(address).await;
        wait::until("the replica serving", Duration::from_secs(20), || {
            let mut health = HealthClient::new(channel.clone());
            async move {
                health
                    .check(HealthCheckRequest { service: String::new() })
                    .await
                    .is_ok_and(|r| r.get_ref().status == 1)
            }
        })
        .await;
        replica
    }

    /// What a rollout does: SIGTERM, then the process ends on its own.
    fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .expect("the replica did not exit")
            .unwrap()
    }
}

struct Cluster {
    replicas: Vec<Replica>,
    gateway: SocketAddr,
    fake: FakeOpenAi,
    db_url: String,
    dir: tempfile::TempDir,
    _db: TestDatabase,
    _services: Vec<tokio::task::JoinHandle<()>>,
}

/// A free port on both 127.0.0.2 and 127.0.0.3 (the two replicas share it, as pods do).
async fn shared_port() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.3", port)).await.is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

impl Cluster {
    async fn start() -> Option<Self> {
        let Ok(nats_url) = std::env::var("PARLEY_TEST_NATS_URL") else {
            eprintln!("skipped: PARLEY_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)");
            return None;
        };
        let db = TestDatabase::postgres().await?;
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeOpenAi::start().await;
        let mut services = Vec::new();

        let user_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let user_address = user_listener.local_addr().unwrap();
        let user_config = user_service::Config::new(
            parley_service_kit::database::sqlite_url(&dir.path().join("users.db")),
            dir.path().to_path_buf(),
        );
        services.push(tokio::spawn(async move {
            user_service::serve(user_listener, user_config, std::future::pending())
                .await
                .unwrap();
        }));
        let llm_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let llm_address = llm_listener.local_addr().unwrap();
        services.push(tokio::spawn(async move {
            llm_service::serve(llm_listener, llm_config(), std::future::pending())
                .await
                .unwrap();
        }));

        let port = shared_port().await;
        let env = [
            ("PARLEY_CHAT_DATABASE_URL", db.url.clone()),
            ("PARLEY_DATA_DIR", dir.path().display().to_string()),
            ("PARLEY_USER_SERVICE_URL", format!("http://{user_address}")),
            ("PARLEY_LLM_SERVICE_URL", format!("http://{llm_address}")),
            ("PARLEY_NATS_URL", nats_url),
            // Tests run at once on one NATS server, each with its own message ids.
            (
                "PARLEY_NATS_SUBJECT_PREFIX",
                db.url.rsplit('/').next().unwrap().to_owned(),
            ),
        ];
        let mut replicas = Vec::new();
        // One after the other: the first writes the master key both read.
        for (n, ip) in [[127, 0, 0, 2], [127, 0, 0, 3]].into_iter().enumerate() {
            let address = SocketAddr::new(IpAddr::from(ip), port);
            replicas.push(Replica::start(address, &env, dir.path().join(format!("chat-{n}.log"))).await);
        }

        let resolver = ListResolver::default();
        resolver.set(CHAT_NAME, replicas.iter().map(|r| r.address.ip()).collect());
        let mut gateway_config =
            gateway::Config::new(format!("http://{user_address}"), format!("http://{CHAT_NAME}:{port}"));
        gateway_config.upstream_resolver = Resolver(Arc::new(resolver));
        gateway_config.generation_rate_limit = None;
        let gateway_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = gateway_listener.local_addr().unwrap();
        services.push(tokio::spawn(async move {
            gateway::serve(gateway_listener, gateway_config, std::future::pending())
                .await
                .unwrap();
        }));
        Some(Self {
            replicas,
            gateway,
            fake,
            db_url: db.url.clone(),
            dir,
            _db: db,
            _services: services,
        })
    }

    /// Signs `name` up through the gateway: a client through the gateway, and one straight to
    /// each replica, with the same token.
    async fn user(&self, name: &str) -> (User, Vec<User>) {
        let gateway = wait::channel(self.gateway).await;
        let registered = wait::eventually("sign-up through the gateway", Duration::from_secs(20), || {
            let mut users = UserServiceClient::new(gateway.clone());
            async move {
                users
                    .register(user_pb::RegisterRequest {
                        username: name.into(),
                        password: format!("password of {name}"),
                        ..Default::default()
                    })
                    .await
                    .ok()
            }
        })
        .await
        .into_inner();
        let token = registered.access_token;
        let mut direct = Vec::new();
        for replica in &self.replicas {
            direct.push(User::new(wait::channel(replica.address).await, token.clone()));
        }
        (User::new(gateway, token), direct)
    }

    /// A config on the fake provider and a session with it: (session, config).
    async fn chat(&self, user: &User) -> (i64, i64) {
        let config = user
            .configs()
            .create_api_config(user.req(pb::CreateApiConfigRequest {
                name: "fake".into(),
                base_url: self.fake.base_url(),
                api_key: self.fake.api_key(),
                model: "fake-model".into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .api_config
            .unwrap();
        (self.session(user, config.id).await, config.id)
    }

    async fn session(&self, user: &User, config_id: i64) -> i64 {
        user.create_session(pb::CreateSessionRequest {
            api_config_id: Some(config_id),
            title: Some("replicas".into()),
            ..Default::default()
        })
        .await
        .id
    }

    async fn streaming_rows(&self) -> i64 {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.db_url).await.unwrap();
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_messages WHERE status = 'streaming'")
            .fetch_one(&pool)
            .await
            .unwrap();
        count
    }

    fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("chat-{n}.log"))).unwrap_or_default()
    }
}

/// A slow answer: `chunks` pieces of 4 characters, `delay` apart.
fn slow_answer(chunks: usize, delay: Duration) -> (Reply, String) {
    let text: String = (0..chunks).map(|n| format!("w{:02} ", n % 100)).collect();
    (Reply::text(text.clone()).chunk_size(4).chunk_delay(delay), text)
}

async fn watch(user: &User, id: i64) -> tonic::Streaming<pb::WatchGenerationResponse> {
    user.messages()
        .watch_generation(user.req(pb::WatchGenerationRequest { message_id: id }))
        .await
        .unwrap()
        .into_inner()
}

async fn next_watched(stream: &mut tonic::Streaming<pb::WatchGenerationResponse>) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("no event in time")
        .unwrap_or_else(|s| panic!("the follower saw an error: {s:?}"))
        .and_then(|r| r.event)
        .and_then(|e| e.event)
}

/// Events of a watch until it ends (an error fails the test).
async fn rest_of_watch(mut stream: tonic::Streaming<pb::WatchGenerationResponse>) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = next_watched(&mut stream).await {
        events.push(event);
    }
    events
}

fn completed(events: &[Event]) -> &pb::Message {
    events
        .iter()
        .find_map(|e| match e {
            Event::Completed(m) => Some(m),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no completed event in {:?}", kinds(events)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_and_stopped_through_the_other_replica_and_a_killed_one_fails_its_answer() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let (through_gateway, direct) = cluster.user("alice").await;
    let (session, _) = cluster.chat(&through_gateway).await;

    // Started on the first replica, followed through the second.
    let (reply, full) = slow_answer(60, Duration::from_millis(40));
    cluster.fake.push_reply(reply);
    let mut sent = direct[0].send(session, "count slowly").await;
    let answer = loop {
        if let Some(Event::AssistantStarted(m)) = next_event(&mut sent).await {
            break m.id;
        }
    };
    let mut follower = watch(&direct[1], answer).await;
    let mut deltas = 0;
    let mut followed = String::new();
    while followed.len() < full.len() / 2 {
        match next_watched(&mut follower).await.expect("the follower ended early") {
            Event::Delta(text) => {
                deltas += 1;
                followed.push_str(&text);
            }
            Event::AssistantStarted(m) => assert_eq!(m.id, answer),
            other => panic!("unexpected {:?} while the answer streams", kind(&other)),
        }
    }
    // Live through NATS: a delta per piece or so, where reading the row (every 500 ms) would
    // have given a handful.
    assert!(deltas >= 10, "{deltas} deltas for {} bytes", followed.len());
    assert!(full.starts_with(&followed), "{followed:?}");

    // Stopped through the second replica: the first stops it at once.
    let stopped = direct[1]
        .messages()
        .stop_generation(direct[1].req(pb::StopGenerationRequest { message_id: answer }))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(stopped.status, pb::MessageStatus::Stopped as i32, "{stopped:?}");
    assert!(stopped.content.len() < full.len() && full.starts_with(&stopped.content));
    let sender_saw = collect_send(sent).await;
    assert_eq!(completed(&sender_saw).status, pb::MessageStatus::Stopped as i32);
    let rest = rest_of_watch(follower).await;
    assert_eq!(completed(&rest).content, stopped.content);
    followed.push_str(&text_of(&rest));
    assert_eq!(followed, stopped.content, "the follower saw exactly the stored text");

    // Killed mid-answer: the answer ends FAILED with what was saved; nothing stays STREAMING.
    let (reply, full) = slow_answer(200, Duration::from_millis(40));
    cluster.fake.push_reply(reply);
    let mut sent = direct[0].send(session, "count slowly again").await;
    let answer = loop {
        if let Some(Event::AssistantStarted(m)) = next_event(&mut sent).await {
            break m.id;
        }
    };
    let follower = watch(&direct[1], answer).await;
    wait::until("some of the answer saved", Duration::from_secs(10), || async {
        direct[1].message(answer).await.content.len() > 40
    })
    .await;
    cluster.replicas[0].child.kill().await.unwrap();
    let _ = cluster.replicas[0].child.wait().await;
    let rest = rest_of_watch(follower).await;
    let error = rest
        .iter()
        .find_map(|e| match e {
            Event::Error(error) => Some(error),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no error event in {:?}", kinds(&rest)));
    assert_eq!(error.code, tonic::Code::Aborted as i32, "{error:?}");
    let failed = direct[1].message(answer).await;
    assert_eq!(failed.status, pb::MessageStatus::Failed as i32, "{failed:?}");
    assert!(
        failed.content.len() > 40 && full.starts_with(&failed.content),
        "{failed:?}"
    );
    assert_eq!(cluster.streaming_rows().await, 0);
    // The killed replica's own stream ends in an error (after what it had delivered).
    loop {
        match sent.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a killed replica's stream ended cleanly"),
            Err(_) => break,
        }
    }

    // Chatting goes on through the gateway: the dead replica is left out, no call fails.
    for n in 0..4 {
        cluster.fake.push_reply(Reply::text(format!("answer {n}")));
        let events = collect_send(through_gateway.send(session, &format!("question {n}")).await).await;
        assert_eq!(completed(&events).content, format!("answer {n}"), "{}", cluster.log(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_lets_running_answers_finish_and_followers_see_no_error() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let (through_gateway, direct) = cluster.user("bob").await;
    let (session, config_id) = cluster.chat(&through_gateway).await;

    let (reply, full) = slow_answer(50, Duration::from_millis(40));
    cluster.fake.push_reply(reply);
    let mut sent = direct[0].send(session, "a long answer").await;
    let answer = loop {
        if let Some(Event::AssistantStarted(m)) = next_event(&mut sent).await {
            break m.id;
        }
    };
    // Two followers through the gateway: calls go to the replicas in turn, so one follows on
    // the replica running the answer and one on the other.
    let first = watch(&through_gateway, answer).await;
    let second = watch(&through_gateway, answer).await;

    cluster.replicas[0].terminate();
    // New chats go to the other replica meanwhile.
    let other_session = cluster.session(&through_gateway, config_id).await;
    cluster.fake.push_reply(Reply::text("from the survivor"));
    let events = collect_send(through_gateway.send(other_session, "while rolling").await).await;
    assert_eq!(completed(&events).content, "from the survivor");

    for follower in [first, second] {
        let events = rest_of_watch(follower).await;
        let message = completed(&events);
        assert_eq!(message.status, pb::MessageStatus::Complete as i32, "{message:?}");
        assert_eq!(message.content, full);
    }
    let sender_saw = collect_send(sent).await;
    assert_eq!(completed(&sender_saw).content, full);
    let exit = cluster.replicas[0].wait_exit().await;
    assert!(exit.success(), "{exit:?}: {}", cluster.log(0));
    let stored = direct[1].message(answer).await;
    assert_eq!(stored.status, pb::MessageStatus::Complete as i32);
    assert_eq!(stored.content, full);
    assert_eq!(cluster.streaming_rows().await, 0);
}
