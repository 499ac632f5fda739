//! A real llm-service on 127.0.0.1:0 and the fake provider, talking real gRPC and real HTTP.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llm_service::{Config, RetrySettings};
use parley_proto::llm::v1 as pb;
use parley_proto::llm::v1::llm_service_client::LlmServiceClient;
pub use parley_testkit::fake_openai::{FakeOpenAi, Reply, default_reply_text};
use tonic::transport::Channel;

pub type Client = LlmServiceClient<Channel>;

pub struct TestServer {
    pub address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), llm_service::Error>>>,
}

/// Test defaults: private networks allowed (the fake is on 127.0.0.1) and its error text
/// passed on as a public provider's is (`errors.rs` tests the default, withholding it), quick
/// retries.
pub fn test_config() -> Config {
    Config {
        allow_private_networks: true,
        echo_private_provider_errors: true,
        retry: RetrySettings {
            max_retries: 2,
            initial_backoff: Duration::from_millis(20),
            max_delay: Duration::from_secs(3),
        },
        ..Config::default()
    }
}

/// [`test_config`] without retries, for tests that count the provider's requests.
pub fn no_retries() -> Config {
    Config {
        retry: RetrySettings {
            max_retries: 0,
            ..test_config().retry
        },
        ..test_config()
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    pub async fn start_with(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(llm_service::serve(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn client(&self) -> Client {
        LlmServiceClient::new(parley_testkit::wait::channel(self.address).await)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn provider(fake: &FakeOpenAi) -> pb::Provider {
    pb::Provider {
        base_url: fake.base_url(),
        api_key: fake.api_key(),
        model: "fake-model".to_string(),
    }
}

pub fn user(text: &str) -> pb::ChatMessage {
    pb::ChatMessage {
        role: pb::ChatRole::User as i32,
        content: text.to_string(),
    }
}

pub fn chat_request(provider: pb::Provider, text: &str) -> pb::StreamChatRequest {
    pb::StreamChatRequest {
        provider: Some(provider),
        messages: vec![
            pb::ChatMessage {
                role: pb::ChatRole::System as i32,
                content: "You are terse.".to_string(),
            },
            user(text),
        ],
        params: None,
    }
}

/// Everything a StreamChat call delivered.
#[derive(Debug, Default)]
pub struct Streamed {
    pub content: String,
    pub reasoning: String,
    pub content_chunks: usize,
    pub finish: Option<pb::Finish>,
    /// Messages after the finish (there must be none).
    pub after_finish: usize,
    pub error: Option<tonic::Status>,
}

pub async fn stream(client: &mut Client, request: pb::StreamChatRequest) -> Streamed {
    let mut streamed = Streamed::default();
    let mut stream = match client.stream_chat(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            streamed.error = Some(status);
            return streamed;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(message)) => {
                if streamed.finish.is_some() {
                    streamed.after_finish += 1;
                }
                match message.chunk.unwrap() {
                    pb::stream_chat_response::Chunk::ContentDelta(text) => {
                        streamed.content.push_str(&text);
                        streamed.content_chunks += 1;
                    }
                    pb::stream_chat_response::Chunk::ReasoningDelta(text) => streamed.reasoning.push_str(&text),
                    pb::stream_chat_response::Chunk::Finish(finish) => streamed.finish = Some(finish),
                }
            }
            Ok(None) => return streamed,
            Err(status) => {
                streamed.error = Some(status);
                return streamed;
            }
        }
    }
}

/// The status a call that must fail ended with.
pub async fn stream_error(client: &mut Client, request: pb::StreamChatRequest) -> tonic::Status {
    let streamed = stream(client, request).await;
    assert!(streamed.finish.is_none(), "the stream finished cleanly: {streamed:?}");
    streamed.error.expect("the stream ended without an error")
}
