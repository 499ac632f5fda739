//! The real thing for each test: user-service (for tokens), llm-service (private networks
//! allowed, so it reaches the fake on loopback), chat-service on the database under test, and
//! the fake OpenAI-compatible provider, all on 127.0.0.1:0.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::api_config_service_client::ApiConfigServiceClient;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::chat::v1::folder_service_client::FolderServiceClient;
use parley_proto::chat::v1::message_service_client::MessageServiceClient;
use parley_proto::chat::v1::notification_service_client::NotificationServiceClient;
use parley_proto::chat::v1::persona_service_client::PersonaServiceClient;
use parley_proto::chat::v1::prompt_service_client::PromptServiceClient;
use parley_proto::chat::v1::room_service_client::RoomServiceClient;
use parley_proto::chat::v1::session_service_client::SessionServiceClient;
use parley_proto::user::v1 as user_pb;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use parley_testkit::fake_openai::FakeOpenAi;
use parley_testkit::wait;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub use parley_testkit::fake_openai::Reply;

pub mod rooms;

/// A service running in this process until stopped (or dropped).
struct Running<E> {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), E>>>,
}

impl<E> Running<E> {
    async fn stop(&mut self) -> Option<Result<(), E>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => Some(task.await.unwrap()),
            None => None,
        }
    }
}

impl<E> Drop for Running<E> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (listener, address)
}

fn spawn<E, F>(listener: TcpListener, serve: impl FnOnce(TcpListener, oneshot::Receiver<()>) -> F) -> Running<E>
where
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve(listener, stopped));
    Running {
        address,
        stop: Some(stop),
        task: Some(task),
    }
}

pub struct Stack {
    pub fake: FakeOpenAi,
    pub db_url: String,
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
    user: Running<user_service::Error>,
    llm: Running<llm_service::Error>,
    chat: Running<chat_service::Error>,
    second_chat: Option<Running<chat_service::Error>>,
    pub chat_config: chat_service::Config,
}

pub fn llm_config() -> llm_service::Config {
    let mut config = llm_service::Config {
        allow_private_networks: true,
        ..llm_service::Config::default()
    };
    // Provider errors should reach the test at once, not after backoff.
    config.retry.max_retries = 0;
    config
}

impl Stack {
    pub async fn start(db_url: &str) -> Self {
        Self::start_with(db_url, |_| {}).await
    }

    /// Starts everything, letting the test adjust chat-service's config first.
    pub async fn start_with(db_url: &str, adjust: impl FnOnce(&mut chat_service::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        let fake = FakeOpenAi::start().await;

        // Bound first, so user-service knows where to erase deleted accounts' chats.
        let (chat_listener, chat_address) = listener().await;
        let (user_listener, user_address) = listener().await;
        let user = start_user(user_listener, &data_dir, "user-service.db", chat_address);

        let (llm_listener, llm_address) = listener().await;
        let llm = spawn(llm_listener, |l, stopped| {
            llm_service::serve(l, llm_config(), async move {
                let _ = stopped.await;
            })
        });

        let mut chat_config = chat_service::Config::new(
            db_url.to_owned(),
            &data_dir,
            format!("http://{user_address}"),
            format!("http://{llm_address}"),
        );
        chat_config.drain_deadline = Duration::from_secs(5);
        adjust(&mut chat_config);
        let chat = start_chat_on(chat_listener, chat_config.clone());
        Self {
            fake,
            db_url: db_url.to_owned(),
            data_dir,
            _dir: dir,
            user,
            llm,
            chat,
            second_chat: None,
            chat_config,
        }
    }

    /// Replaces user-service by one on a new, empty database (same address, same signing
    /// key), as when an operator starts the user database over: user ids are handed out
    /// again from 1, account ids are new.
    pub async fn reset_user_service(&mut self) {
        let address = self.user.address;
        let _ = self.user.stop().await;
        let listener = wait::eventually("the user-service port to be free", Duration::from_secs(10), || async {
            TcpListener::bind(address).await.ok()
        })
        .await;
        self.user = start_user(
            listener,
            &self.data_dir,
            "user-service-after-reset.db",
            self.chat.address,
        );
    }

    /// A client of user-service.
    pub async fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(Self::channel(self.user.address).await)
    }

    pub fn chat_address(&self) -> SocketAddr {
        self.chat.address
    }

    /// Stops chat-service (gracefully) and answers how its `serve` ended.
    pub async fn stop_chat(&mut self) -> Result<(), chat_service::Error> {
        self.chat.stop().await.unwrap_or(Ok(()))
    }

    /// Starts chat-service again (after `stop_chat`) with `config`.
    pub async fn restart_chat(&mut self, config: chat_service::Config) {
        self.chat = start_chat(config).await;
    }

    /// Starts another chat-service instance on the same database (and master key) and
    /// answers a client of it for `user`.
    pub async fn second_instance(&mut self, user: &User) -> User {
        let running = start_chat(self.chat_config.clone()).await;
        let channel = Self::channel(running.address).await;
        self.second_chat = Some(running);
        User::new(channel, user.token.clone())
    }

    pub async fn stop(mut self) {
        if let Some(mut second) = self.second_chat.take() {
            let _ = second.stop().await;
        }
        let _ = self.chat.stop().await;
        let _ = self.llm.stop().await;
        let _ = self.user.stop().await;
    }

    async fn channel(address: SocketAddr) -> Channel {
        wait::channel(address).await
    }

    /// Registers `username` and answers clients carrying their access token.
    pub async fn user(&self, username: &str) -> User {
        let mut users = UserServiceClient::new(Self::channel(self.user.address).await);
        let registered = users
            .register(user_pb::RegisterRequest {
                username: username.into(),
                password: format!("password of {username}"),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("register {username}: {s:?}"))
            .into_inner();
        User::new(Self::channel(self.chat.address).await, registered.access_token)
    }

    /// The account id (User.account_id) of `user`, as user-service tells it.
    pub async fn account_id(&self, user: &User) -> String {
        self.users()
            .await
            .get_me(user.req(user_pb::GetMeRequest {}))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap()
            .account_id
    }

    /// A direct connection to chat-service's database.
    pub async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.db_url).await.unwrap()
    }

    /// Creates a config pointing at the fake provider.
    pub async fn fake_config(&self, user: &User, name: &str) -> pb::ApiConfig {
        user.configs()
            .create_api_config(user.req(pb::CreateApiConfigRequest {
                name: name.into(),
                base_url: self.fake.base_url(),
                api_key: self.fake.api_key(),
                model: "fake-model".into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .api_config
            .unwrap()
    }
}

/// user-service on the SQLite file `database` in `data_dir`, erasing deleted accounts'
/// chats at `chat_address` (checking its outbox every 50 ms).
fn start_user(
    listener: TcpListener,
    data_dir: &std::path::Path,
    database: &str,
    chat_address: SocketAddr,
) -> Running<user_service::Error> {
    let mut config = user_service::Config::new(
        parley_service_kit::database::sqlite_url(&data_dir.join(database)),
        data_dir.to_path_buf(),
    );
    config.chat_service_url = Some(format!("http://{chat_address}"));
    config.account_deletion_interval = Duration::from_millis(50);
    spawn(listener, |l, stopped| {
        user_service::serve(l, config, async move {
            let _ = stopped.await;
        })
    })
}

async fn start_chat(config: chat_service::Config) -> Running<chat_service::Error> {
    let (chat_listener, _) = listener().await;
    start_chat_on(chat_listener, config)
}

fn start_chat_on(chat_listener: TcpListener, config: chat_service::Config) -> Running<chat_service::Error> {
    spawn(chat_listener, |l, stopped| {
        chat_service::serve(l, config, async move {
            let _ = stopped.await;
        })
    })
}

/// One signed-in user's clients.
#[derive(Clone)]
pub struct User {
    channel: Channel,
    pub token: String,
}

impl User {
    pub fn new(channel: Channel, token: String) -> Self {
        Self { channel, token }
    }

    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.token)
    }

    pub fn configs(&self) -> ApiConfigServiceClient<Channel> {
        ApiConfigServiceClient::new(self.channel.clone())
    }

    pub fn rooms(&self) -> RoomServiceClient<Channel> {
        RoomServiceClient::new(self.channel.clone())
    }

    pub fn notifications(&self) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(self.channel.clone())
    }

    pub fn personas(&self) -> PersonaServiceClient<Channel> {
        PersonaServiceClient::new(self.channel.clone())
    }

    pub fn prompts(&self) -> PromptServiceClient<Channel> {
        PromptServiceClient::new(self.channel.clone())
    }

    pub fn folders(&self) -> FolderServiceClient<Channel> {
        FolderServiceClient::new(self.channel.clone())
    }

    pub fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel.clone())
    }

    pub fn messages(&self) -> MessageServiceClient<Channel> {
        MessageServiceClient::new(self.channel.clone())
    }

    pub async fn create_session(&self, request: pb::CreateSessionRequest) -> pb::Session {
        self.sessions()
            .create_session(self.req(request))
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap()
    }

    pub async fn send(&self, session_id: i64, content: &str) -> tonic::Streaming<pb::SendMessageResponse> {
        self.messages()
            .send_message(self.req(pb::SendMessageRequest {
                session_id,
                content: content.into(),
                api_config_id: None,
                version_of_id: None,
            }))
            .await
            .unwrap_or_else(|s| panic!("send {content:?}: {s:?}"))
            .into_inner()
    }

    pub async fn message(&self, id: i64) -> pb::Message {
        self.messages()
            .get_message(self.req(pb::GetMessageRequest { id }))
            .await
            .unwrap()
            .into_inner()
            .message
            .unwrap()
    }

    pub async fn list_messages(&self, session_id: i64) -> Vec<pb::Message> {
        self.messages()
            .list_messages(self.req(pb::ListMessagesRequest {
                session_id,
                page_size: 100,
                page_token: String::new(),
                all_branches: false,
            }))
            .await
            .unwrap()
            .into_inner()
            .messages
    }

    pub async fn session(&self, id: i64) -> pb::Session {
        self.sessions()
            .get_session(self.req(pb::GetSessionRequest { id }))
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap()
    }

    /// Waits until the message is no longer STREAMING.
    pub async fn wait_finished(&self, id: i64) -> pb::Message {
        wait::eventually(
            &format!("message {id} finishing"),
            Duration::from_secs(10),
            || async move {
                let message = self.message(id).await;
                (message.status != pb::MessageStatus::Streaming as i32).then_some(message)
            },
        )
        .await
    }
}

/// A signed-in user and their account id (rooms and notifications name people by it).
pub struct Person {
    pub user: User,
    pub account: String,
}

pub async fn person(stack: &Stack, name: &str) -> Person {
    let user = stack.user(name).await;
    let account = stack.account_id(&user).await;
    Person { user, account }
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The events of a stream until it ends (panics on a stream error).
pub async fn collect<S, T>(stream: S, event_of: fn(T) -> Option<pb::ChatEvent>) -> Vec<Event>
where
    S: futures::Stream<Item = Result<T, tonic::Status>>,
{
    let items: Vec<Result<T, tonic::Status>> = tokio::time::timeout(Duration::from_secs(20), stream.collect())
        .await
        .expect("the stream did not end");
    items
        .into_iter()
        .map(|item| item.unwrap_or_else(|s| panic!("stream error: {s:?}")))
        .filter_map(|item| event_of(item).and_then(|e| e.event))
        .collect()
}

pub async fn collect_send(stream: tonic::Streaming<pb::SendMessageResponse>) -> Vec<Event> {
    collect(stream, |r: pb::SendMessageResponse| r.event).await
}

/// The next event of a send stream.
pub async fn next_event(stream: &mut tonic::Streaming<pb::SendMessageResponse>) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("no event in time")
        .unwrap()
        .and_then(|r| r.event)
        .and_then(|e| e.event)
}

pub fn kind(event: &Event) -> &'static str {
    match event {
        Event::UserMessage(_) => "user_message",
        Event::AssistantStarted(_) => "assistant_started",
        Event::Delta(_) => "delta",
        Event::ReasoningDelta(_) => "reasoning_delta",
        Event::SessionUpdated(_) => "session_updated",
        Event::Completed(_) => "completed",
        Event::Error(_) => "error",
    }
}

pub fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(kind).collect()
}

pub fn text_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Delta(d) => Some(d.as_str()),
            _ => None,
        })
        .collect()
}

/// The id of the stored question (`user_message` event).
pub fn question_id(events: &[Event]) -> i64 {
    events
        .iter()
        .find_map(|e| match e {
            Event::UserMessage(m) => Some(m.id),
            _ => None,
        })
        .expect("no user_message")
}

pub fn started_id(events: &[Event]) -> i64 {
    events
        .iter()
        .find_map(|e| match e {
            Event::AssistantStarted(m) => Some(m.id),
            _ => None,
        })
        .expect("no assistant_started")
}

/// Asserts INVALID_ARGUMENT with a BadRequest violation for `field`.
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str) {
    let status = result.expect_err("expected INVALID_ARGUMENT");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = parley_service_kit::grpc_status::field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, vec![field.to_string()], "{status:?}");
}

pub fn assert_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: tonic::Code) {
    let status = result.expect_err("expected an error");
    assert_eq!(status.code(), code, "{status:?}");
}

/// Rows in a table (to check that bad input changed nothing).
pub async fn count_rows(pool: &sqlx::AnyPool, table: &str) -> i64 {
    let row: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap();
    row.0
}

/// The (role, content) pairs a chat completion request sent to the provider.
pub fn role_and_content(body: &serde_json::Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
