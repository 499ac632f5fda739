//! In-test upstreams behind a real gateway.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(unused_imports)]
pub use parley_testkit::grpc_web::*;
#[allow(unused_imports)]
pub use parley_testkit::wait::{channel_to, until};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parley_proto::chat::v1 as chat;
use parley_proto::user::v1 as user;
use parley_service_kit::access_token::{AUDIENCE, AccessClaims, ISSUER, TOKEN_TYPE};
use parley_service_kit::auth_layer::AuthLayer;
use parley_service_kit::grpc_server::GrpcServer;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// How long a test waits for something the gateway should do at once (a slot coming back,
/// health catching up): long enough for a loaded machine, short enough to fail clearly.
pub const WAIT: Duration = Duration::from_secs(10);

pub const USER_ID: i64 = 7;
pub const PASSWORD: &str = "correct horse";
/// Metadata that makes the fake GetMe take 30 s (a slow unary call that needs an account).
pub const SLOW: &str = "x-test-slow";
const KEY_ID: &str = "test-key";
const SEED: [u8; 32] = [9; 32];

/// What the upstreams saw.
#[derive(Default)]
pub struct Observed {
    /// (path, metadata) of every call an upstream received.
    pub calls: Mutex<Vec<(String, http::HeaderMap)>>,
    /// Signalled when a slow SendMessage stream noticed its client went away.
    pub stream_closed: Notify,
}

impl Observed {
    fn record<T>(&self, path: &str, request: &Request<T>) {
        self.calls
            .lock()
            .unwrap()
            .push((path.to_string(), request.metadata().clone().into_headers()));
    }

    pub fn paths(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|(p, _)| p.clone()).collect()
    }

    /// How many calls of `path` the upstreams received.
    pub fn count(&self, path: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|(p, _)| p == path).count()
    }

    pub fn last_headers(&self, path: &str) -> http::HeaderMap {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| panic!("{path} never reached the upstream"))
    }
}

fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend_from_slice(seed);
    der
}

/// An access token for `user_id` that the gateway accepts (signed with the key the fake
/// user-service publishes).
pub fn access_token(user_id: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = AccessClaims {
        sub: user_id.to_string(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        exp: now + 600,
        iat: now,
        jti: format!("jti-{now}-{user_id}"),
        role: "user".into(),
        sid: format!("session-{user_id}"),
        aid: format!("account-{user_id}"),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(KEY_ID.into());
    header.typ = Some(TOKEN_TYPE.into());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&pkcs8(&SEED))).unwrap()
}

pub struct FakeUserService {
    observed: Arc<Observed>,
}

fn scripted(method: &str) -> Status {
    Status::failed_precondition(format!("{method} is not scripted in the fake user-service"))
}

#[tonic::async_trait]
impl user::user_service_server::UserService for FakeUserService {
    async fn register(&self, r: Request<user::RegisterRequest>) -> Result<Response<user::RegisterResponse>, Status> {
        self.observed.record("Register", &r);
        Err(scripted("Register"))
    }
    async fn login(&self, r: Request<user::LoginRequest>) -> Result<Response<user::LoginResponse>, Status> {
        self.observed.record("Login", &r);
        let request = r.into_inner();
        if request.password == "slow" {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        if request.password != PASSWORD {
            return Err(Status::unauthenticated("wrong login or password"));
        }
        Ok(Response::new(user::LoginResponse {
            user: Some(user::User {
                id: USER_ID,
                username: request.login,
                ..Default::default()
            }),
            access_token: access_token(USER_ID),
            refresh_token: "refresh".into(),
            access_expires_in: 600,
        }))
    }
    async fn refresh_token(
        &self,
        r: Request<user::RefreshTokenRequest>,
    ) -> Result<Response<user::RefreshTokenResponse>, Status> {
        self.observed.record("RefreshToken", &r);
        Err(scripted("RefreshToken"))
    }
    async fn logout(&self, r: Request<user::LogoutRequest>) -> Result<Response<user::LogoutResponse>, Status> {
        self.observed.record("Logout", &r);
        Ok(Response::new(user::LogoutResponse {}))
    }
    async fn get_me(&self, r: Request<user::GetMeRequest>) -> Result<Response<user::GetMeResponse>, Status> {
        self.observed.record("GetMe", &r);
        if r.metadata().contains_key(SLOW) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Ok(Response::new(user::GetMeResponse {
            user: Some(user::User {
                id: USER_ID,
                username: "ada".into(),
                ..Default::default()
            }),
        }))
    }
    async fn update_profile(
        &self,
        r: Request<user::UpdateProfileRequest>,
    ) -> Result<Response<user::UpdateProfileResponse>, Status> {
        self.observed.record("UpdateProfile", &r);
        Err(scripted("UpdateProfile"))
    }
    async fn change_password(
        &self,
        r: Request<user::ChangePasswordRequest>,
    ) -> Result<Response<user::ChangePasswordResponse>, Status> {
        self.observed.record("ChangePassword", &r);
        Err(scripted("ChangePassword"))
    }
    async fn send_verification_code(
        &self,
        r: Request<user::SendVerificationCodeRequest>,
    ) -> Result<Response<user::SendVerificationCodeResponse>, Status> {
        self.observed.record("SendVerificationCode", &r);
        Err(scripted("SendVerificationCode"))
    }
    async fn verify_code(
        &self,
        r: Request<user::VerifyCodeRequest>,
    ) -> Result<Response<user::VerifyCodeResponse>, Status> {
        self.observed.record("VerifyCode", &r);
        Err(scripted("VerifyCode"))
    }
    async fn reset_password(
        &self,
        r: Request<user::ResetPasswordRequest>,
    ) -> Result<Response<user::ResetPasswordResponse>, Status> {
        self.observed.record("ResetPassword", &r);
        Err(scripted("ResetPassword"))
    }
    async fn delete_account(
        &self,
        r: Request<user::DeleteAccountRequest>,
    ) -> Result<Response<user::DeleteAccountResponse>, Status> {
        self.observed.record("DeleteAccount", &r);
        Err(scripted("DeleteAccount"))
    }
    async fn get_signup_info(
        &self,
        r: Request<user::GetSignupInfoRequest>,
    ) -> Result<Response<user::GetSignupInfoResponse>, Status> {
        self.observed.record("GetSignupInfo", &r);
        Err(scripted("GetSignupInfo"))
    }
    async fn lookup_users(
        &self,
        r: Request<user::LookupUsersRequest>,
    ) -> Result<Response<user::LookupUsersResponse>, Status> {
        self.observed.record("LookupUsers", &r);
        Err(scripted("LookupUsers"))
    }
    async fn get_public_keys(
        &self,
        _r: Request<user::GetPublicKeysRequest>,
    ) -> Result<Response<user::GetPublicKeysResponse>, Status> {
        let public = ed25519_dalek::SigningKey::from_bytes(&SEED).verifying_key();
        Ok(Response::new(user::GetPublicKeysResponse {
            keys: vec![user::PublicKey {
                key_id: KEY_ID.into(),
                algorithm: "EdDSA".into(),
                public_key: public.to_bytes().to_vec(),
            }],
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            revocations: Vec::new(),
        }))
    }
}

pub struct FakeMessageService {
    observed: Arc<Observed>,
}

fn event(event: chat::chat_event::Event) -> chat::SendMessageResponse {
    chat::SendMessageResponse {
        event: Some(chat::ChatEvent { event: Some(event) }),
    }
}

/// The events a scripted answer streams: "Hello" in two deltas.
pub fn scripted_answer(content: &str) -> Vec<chat::SendMessageResponse> {
    use chat::chat_event::Event;
    let message = |id, role: chat::MessageRole, content: &str| chat::Message {
        id,
        session_id: 1,
        role: role as i32,
        content: content.to_string(),
        ..Default::default()
    };
    vec![
        event(Event::UserMessage(message(1, chat::MessageRole::User, content))),
        event(Event::AssistantStarted(message(2, chat::MessageRole::Assistant, ""))),
        event(Event::Delta("Hel".into())),
        event(Event::Delta("lo".into())),
        event(Event::Completed(message(2, chat::MessageRole::Assistant, "Hello"))),
    ]
}

type EventStream = ReceiverStream<Result<chat::SendMessageResponse, Status>>;

#[tonic::async_trait]
impl chat::message_service_server::MessageService for FakeMessageService {
    type SendMessageStream = EventStream;
    type WatchGenerationStream = ReceiverStream<Result<chat::WatchGenerationResponse, Status>>;
    type RegenerateMessageStream = ReceiverStream<Result<chat::RegenerateMessageResponse, Status>>;

    async fn send_message(
        &self,
        r: Request<chat::SendMessageRequest>,
    ) -> Result<Response<Self::SendMessageStream>, Status> {
        self.observed.record("SendMessage", &r);
        let content = r.into_inner().content;
        let (tx, rx) = mpsc::channel(4);
        let observed = self.observed.clone();
        tokio::spawn(async move {
            for item in scripted_answer(&content) {
                if tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
            if content == "slow" {
                // Keeps streaming until the client (through the gateway) goes away.
                loop {
                    tokio::select! {
                        () = tx.closed() => {
                            observed.stream_closed.notify_one();
                            return;
                        }
                        () = tokio::time::sleep(Duration::from_millis(20)) => {
                            let _ = tx.send(Ok(event(chat::chat_event::Event::Delta(".".into())))).await;
                        }
                    }
                }
            }
            if content == "fail" {
                let _ = tx
                    .send(Err(Status::failed_precondition("provider refused the key")))
                    .await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
    async fn watch_generation(
        &self,
        _r: Request<chat::WatchGenerationRequest>,
    ) -> Result<Response<Self::WatchGenerationStream>, Status> {
        Err(Status::failed_precondition("not scripted"))
    }
    async fn stop_generation(
        &self,
        _r: Request<chat::StopGenerationRequest>,
    ) -> Result<Response<chat::StopGenerationResponse>, Status> {
        Err(Status::failed_precondition("not scripted"))
    }
    async fn regenerate_message(
        &self,
        _r: Request<chat::RegenerateMessageRequest>,
    ) -> Result<Response<Self::RegenerateMessageStream>, Status> {
        Err(Status::failed_precondition("not scripted"))
    }
    async fn list_messages(
        &self,
        _r: Request<chat::ListMessagesRequest>,
    ) -> Result<Response<chat::ListMessagesResponse>, Status> {
        Err(Status::failed_precondition("not scripted"))
    }
    async fn switch_branch(
        &self,
        _r: Request<chat::SwitchBranchRequest>,
    ) -> Result<Response<chat::SwitchBranchResponse>, Status> {
        Err(Status::failed_precondition("not scripted"))
    }
    async fn get_message(
        &self,
        _r: Request<chat::GetMessageRequest>,
    ) -> Result<Response<chat::GetMessageResponse>, Status> {
        Err(Status::failed_precondition("not scripted"))
    }
    async fn update_message(
        &self,
        _r: Request<chat::UpdateMessageRequest>,
    ) -> Result<Response<chat::UpdateMessageResponse>, Status> {
        Err(Status::failed_precondition("not scripted"))
    }
    async fn delete_message(
        &self,
        _r: Request<chat::DeleteMessageRequest>,
    ) -> Result<Response<chat::DeleteMessageResponse>, Status> {
        Err(Status::failed_precondition("not scripted"))
    }
}

/// A gateway in front of a fake user-service and a fake chat-service (MessageService only).
pub struct Stack {
    pub addr: SocketAddr,
    pub observed: Arc<Observed>,
    stop: Option<oneshot::Sender<()>>,
    gateway: Option<tokio::task::JoinHandle<Result<(), gateway::Error>>>,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut gateway::Config)) -> Self {
        let observed = Arc::new(Observed::default());
        let user_url = serve_upstream(fake_user_server(observed.clone())).await;
        let chat_url = serve_upstream(fake_chat_server(observed.clone())).await;
        let mut config = gateway::Config::new(user_url, chat_url);
        config.health_check_interval = Duration::from_millis(100);
        adjust(&mut config);
        Self::gateway(config, observed).await
    }

    pub async fn gateway(config: gateway::Config, observed: Arc<Observed>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let gateway = tokio::spawn(gateway::serve(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            observed,
            stop: Some(stop),
            gateway: Some(gateway),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.await.unwrap().unwrap();
        }
    }
}

/// The fake user-service, recording into `observed`.
pub fn fake_user_server(observed: Arc<Observed>) -> GrpcServer {
    GrpcServer::new(AuthLayer::disabled()).add_service(user::user_service_server::UserServiceServer::new(
        FakeUserService { observed },
    ))
}

/// The fake chat-service (MessageService only), recording into `observed`.
pub fn fake_chat_server(observed: Arc<Observed>) -> GrpcServer {
    GrpcServer::new(AuthLayer::disabled()).add_service(chat::message_service_server::MessageServiceServer::new(
        FakeMessageService { observed },
    ))
}

/// Serves a fake upstream on a random port, forever (the test process ends it).
pub async fn serve_upstream(server: GrpcServer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve(listener, std::future::pending()));
    url
}

/// A port nothing listens on.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
