//! Room fan-out: the time from a post to its arrival on every member's WatchRoomEvents stream,
//! for one room of 200 members and for 1,000 rooms of 5 members, on chat-service as the
//! all-in-one runs it (a SQLite file, the in-process event bus), with user-service in this
//! process for the token keys, all over real gRPC on 127.0.0.1. Prints figures, asserts
//! nothing. `cargo bench --bench room_fanout` (`POSTS=…` posts to the big room, 50 by default).
//!
//! Members' tokens are signed here with user-service's own key (registering 5,200 accounts
//! would time argon2, not rooms); chat-service checks them as any other. A post's time runs
//! from just before PostRoomMessage is sent to the moment a member's stream hands the event
//! to the client; "all members" is the slowest member of each post.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_proto::chat::v1::room_service_client::RoomServiceClient;
use tokio::sync::mpsc;
use tonic::transport::Channel;
use user_service::store::Role;
use user_service::token_signer::{self, TokenSigner, TokenSubject};

/// Streams per HTTP/2 connection (servers cap concurrent streams per connection).
const STREAMS_PER_CONNECTION: usize = 100;

struct Member {
    token: String,
    client: RoomServiceClient<Channel>,
}

fn request<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A random account id (a version-4 UUID's shape).
fn account_id() -> String {
    let (a, b, c, d, e): (u32, u16, u16, u16, u64) = rand::random();
    format!(
        "{a:08x}-{b:04x}-4{:03x}-8{:03x}-{:012x}",
        c & 0xfff,
        d & 0xfff,
        e & 0xffff_ffff_ffff
    )
}

/// What arrived: (the post's text, when).
type Arrivals = mpsc::UnboundedSender<(String, Instant)>;

/// Opens the member's stream and reports every posted message's arrival.
async fn follow(member: &Member, arrivals: Arrivals) {
    let mut stream = member
        .client
        .clone()
        .watch_room_events(request(&member.token, pb::WatchRoomEventsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    tokio::spawn(async move {
        while let Ok(Some(response)) = stream.message().await {
            let at = Instant::now();
            if let Some(pb::RoomEvent {
                event: Some(Event::MessagePosted(message)),
                ..
            }) = response.event
                && arrivals.send((message.content, at)).is_err()
            {
                return;
            }
        }
    });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<44} n {:>6}  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap())
    );
}

struct Bench {
    signer: TokenSigner,
    channels: Vec<Channel>,
    address: String,
    next_user: i64,
}

impl Bench {
    /// A new account's token and client (on a connection shared with up to 99 others).
    async fn member(&mut self) -> Member {
        self.next_user += 1;
        if self.next_user as usize % STREAMS_PER_CONNECTION == 1 || self.channels.is_empty() {
            self.channels.push(
                Channel::from_shared(self.address.clone())
                    .unwrap()
                    .connect()
                    .await
                    .unwrap(),
            );
        }
        let account = account_id();
        let token = self
            .signer
            .sign(
                &TokenSubject {
                    user_id: self.next_user,
                    account_id: &account,
                    session_id: &account_id(),
                    role: Role::User,
                },
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
            )
            .unwrap()
            .token;
        Member {
            token,
            client: RoomServiceClient::new(self.channels.last().unwrap().clone()),
        }
    }
}

/// A public room of `owner` with `others` joined; answers its id.
async fn room_with(owner: &Member, others: &[Member], name: &str) -> i64 {
    let room = owner
        .client
        .clone()
        .create_room(request(
            &owner.token,
            pb::CreateRoomRequest {
                name: name.into(),
                topic: String::new(),
                visibility: pb::RoomVisibility::Public as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap();
    for member in others {
        member
            .client
            .clone()
            .join_room(request(&member.token, pb::JoinRoomRequest { room_id: room.id }))
            .await
            .unwrap();
    }
    room.id
}

async fn post(owner: &Member, room: i64, content: &str) {
    owner
        .client
        .clone()
        .post_room_message(request(
            &owner.token,
            pb::PostRoomMessageRequest {
                room_id: room,
                content: content.into(),
                reply_to_id: None,
            },
        ))
        .await
        .unwrap();
}

/// Collects `expected` arrivals (or what came within a minute), by post text.
async fn collect(
    arrivals: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    expected: usize,
) -> HashMap<String, Vec<Instant>> {
    let mut by_post: HashMap<String, Vec<Instant>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..expected {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some((content, at))) => by_post.entry(content).or_default().push(at),
            _ => {
                println!("  (stopped waiting: some arrivals missing)");
                break;
            }
        }
    }
    by_post
}

/// Per delivery and per post (its slowest member), from each post's start.
fn figures(name: &str, started: &HashMap<String, Instant>, arrived: &HashMap<String, Vec<Instant>>) {
    let mut deliveries = Vec::new();
    let mut all = Vec::new();
    for (post, start) in started {
        let times: Vec<Duration> = arrived
            .get(post)
            .map(|ats| ats.iter().map(|at| at.duration_since(*start)).collect())
            .unwrap_or_default();
        if let Some(slowest) = times.iter().max() {
            all.push(*slowest);
        }
        deliveries.extend(times);
    }
    report(&format!("{name}: one member"), deliveries);
    report(&format!("{name}: all members"), all);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let user_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let user_address = user_listener.local_addr().unwrap();
    let user_config = user_service::Config::new(
        parley_service_kit::database::sqlite_url(&data.join("user-service.db")),
        data.to_path_buf(),
    );
    tokio::spawn(user_service::serve(user_listener, user_config, std::future::pending()));
    let chat_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let chat_address = chat_listener.local_addr().unwrap();
    let mut chat_config = chat_service::Config::new(
        chat_service::Config::default_database_url(data),
        data,
        format!("http://{user_address}"),
        // No AI member here: nothing calls llm-service.
        "http://127.0.0.1:9".into(),
    );
    chat_config.room_limits.messages_per_minute = 1_000_000;
    tokio::spawn(chat_service::serve(chat_listener, chat_config, std::future::pending()));
    // user-service writes its signing key on start; chat-service fetches the public half.
    let key_path = token_signer::key_path(data);
    let signer = loop {
        // Only once user-service wrote it: loading creates a key where there is none.
        if key_path.exists()
            && let Ok(signer) = TokenSigner::load_or_create(&key_path)
        {
            break signer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut bench = Bench {
        signer,
        channels: Vec::new(),
        address: format!("http://{chat_address}"),
        next_user: 0,
    };
    // Until chat-service serves and knows the key.
    let probe = bench.member().await;
    let started = Instant::now();
    while probe
        .client
        .clone()
        .list_my_rooms(request(&probe.token, pb::ListMyRoomsRequest {}))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "chat-service did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let posts: usize = std::env::var("POSTS").ok().and_then(|n| n.parse().ok()).unwrap_or(50);
    println!("room fan-out (chat-service, SQLite, in-process bus; {posts} posts to the big room)");

    // One room of 200 members (the owner among them).
    let owner = bench.member().await;
    let mut others = Vec::new();
    for _ in 0..199 {
        others.push(bench.member().await);
    }
    let room = room_with(&owner, &others, "big room").await;
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    for member in std::iter::once(&owner).chain(&others) {
        follow(member, sender.clone()).await;
    }
    drop(sender);
    let mut started = HashMap::new();
    for n in 0..posts {
        let text = format!("big {n}");
        started.insert(text.clone(), Instant::now());
        post(&owner, room, &text).await;
    }
    let arrived = collect(&mut arrivals, posts * 200).await;
    figures("1 room x 200 members", &started, &arrived);
    drop(arrivals);

    // 1,000 rooms of 5 members, every member following; one post in each room.
    let mut rooms = Vec::new();
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    for r in 0..1_000 {
        let owner = bench.member().await;
        let mut others = Vec::new();
        for _ in 0..4 {
            others.push(bench.member().await);
        }
        let id = room_with(&owner, &others, &format!("small room {r}")).await;
        rooms.push((owner, others, id));
    }
    // Streams opened once the rooms are full, so setting up is not timed against 5,000 of them.
    for (owner, others, _) in &rooms {
        for member in std::iter::once(owner).chain(others) {
            follow(member, sender.clone()).await;
        }
    }
    let rooms: Vec<(Member, i64)> = rooms.into_iter().map(|(owner, _, id)| (owner, id)).collect();
    let started = Arc::new(tokio::sync::Mutex::new(HashMap::new()));
    // Eight posters at once, as members of different rooms would.
    let mut posters = tokio::task::JoinSet::new();
    let rooms = Arc::new(rooms);
    for worker in 0..8 {
        let rooms = Arc::clone(&rooms);
        let started = Arc::clone(&started);
        posters.spawn(async move {
            for (r, (owner, room)) in rooms.iter().enumerate().filter(|(r, _)| r % 8 == worker) {
                let text = format!("small {r}");
                started.lock().await.insert(text.clone(), Instant::now());
                post(owner, *room, &text).await;
            }
        });
    }
    while posters.join_next().await.is_some() {}
    let arrived = collect(&mut arrivals, 1_000 * 5).await;
    let started = started.lock().await.clone();
    figures("1,000 rooms x 5 members", &started, &arrived);
}
