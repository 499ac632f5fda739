//! The whole stack through the gateway, as the browser and grpcurl use it: sign up, add a
//! config for the fake OpenAI-compatible provider, open a chat, send a message and read the
//! streamed answer in order; over gRPC-web (binary and text, HTTP/1.1 and HTTP/2) and native
//! gRPC.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;

use parley_proto::chat::v1 as chat;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::user::v1 as user;
use parley_testkit::fake_openai::FakeOpenAi;
use parley_testkit::grpc_web::{HttpVersion, WebFrame, WebMode, grpc_web_call, grpc_web_call_over};
use prost::Message;
use support::Stack;
use tonic::Code;
use tonic::metadata::MetadataValue;

/// One way of calling the gateway, so the same chat runs over each.
#[derive(Debug, Clone, Copy)]
enum Transport {
    GrpcWeb(WebMode, HttpVersion),
    Native,
}

struct Client {
    transport: Transport,
    addr: SocketAddr,
    token: Option<String>,
}

impl Client {
    async fn unary<Req: Message + Default + 'static, Res: Message + Default + 'static>(
        &self,
        path: &str,
        request: Req,
    ) -> Res {
        let mut replies = self.call::<Req, Res>(path, request).await;
        assert_eq!(replies.len(), 1, "{path}");
        replies.remove(0)
    }

    /// Every message of a call, in order; panics on a non-OK status.
    async fn call<Req: Message + Default + 'static, Res: Message + Default + 'static>(
        &self,
        path: &str,
        request: Req,
    ) -> Vec<Res> {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        match self.transport {
            Transport::GrpcWeb(mode, version) => {
                let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
                let response = grpc_web_call_over(version, self.addr, path, &request, mode, &headers).await;
                let (replies, code, message) = response.collect::<Res>().await;
                assert_eq!(code, Code::Ok, "{path} over {mode:?} {version:?}: {message}");
                replies
            }
            Transport::Native => {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
                    .unwrap()
                    .connect()
                    .await
                    .unwrap();
                let mut grpc = tonic::client::Grpc::new(channel);
                grpc.ready().await.unwrap();
                let mut request = tonic::Request::new(request);
                if let Some(auth) = &auth {
                    request
                        .metadata_mut()
                        .insert("authorization", MetadataValue::try_from(auth.as_str()).unwrap());
                }
                let codec = tonic_prost::ProstCodec::<Req, Res>::default();
                let path = http::uri::PathAndQuery::try_from(path).unwrap();
                let mut stream = grpc
                    .server_streaming(request, path.clone(), codec)
                    .await
                    .unwrap_or_else(|s| panic!("{path} over native gRPC: {s:?}"))
                    .into_inner();
                let mut replies = Vec::new();
                while let Some(reply) = stream
                    .message()
                    .await
                    .unwrap_or_else(|s| panic!("{path} over native gRPC: {s:?}"))
                {
                    replies.push(reply);
                }
                replies
            }
        }
    }
}

fn describe(events: &[chat::SendMessageResponse]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e.event.as_ref().and_then(|e| e.event.as_ref()) {
            Some(Event::UserMessage(_)) => "user_message",
            Some(Event::AssistantStarted(_)) => "assistant_started",
            Some(Event::Delta(_)) => "delta",
            Some(Event::ReasoningDelta(_)) => "reasoning_delta",
            Some(Event::SessionUpdated(_)) => "session_updated",
            Some(Event::Completed(_)) => "completed",
            Some(Event::Error(_)) => "error",
            None => "empty",
        })
        .collect()
}

async fn chat_over(stack: &Stack, fake: &FakeOpenAi, transport: Transport, username: &str) {
    let mut client = Client {
        transport,
        addr: stack.addr,
        token: None,
    };
    let registered: user::RegisterResponse = client
        .unary(
            "/parley.user.v1.UserService/Register",
            user::RegisterRequest {
                username: username.into(),
                password: "a long enough password".into(),
                email: None,
                display_name: None,
                ..Default::default()
            },
        )
        .await;
    client.token = Some(registered.access_token);

    let created: chat::CreateApiConfigResponse = client
        .unary(
            "/parley.chat.v1.ApiConfigService/CreateApiConfig",
            chat::CreateApiConfigRequest {
                name: "fake".into(),
                base_url: fake.base_url(),
                api_key: fake.api_key(),
                model: "fake-model".into(),
            },
        )
        .await;
    let config = created.api_config.unwrap();
    assert!(!config.api_key_hint.is_empty());

    let session: chat::CreateSessionResponse = client
        .unary(
            "/parley.chat.v1.SessionService/CreateSession",
            chat::CreateSessionRequest {
                api_config_id: Some(config.id),
                ..Default::default()
            },
        )
        .await;
    let session = session.session.unwrap();

    let events: Vec<chat::SendMessageResponse> = client
        .call(
            "/parley.chat.v1.MessageService/SendMessage",
            chat::SendMessageRequest {
                session_id: session.id,
                content: "Say hello".into(),
                api_config_id: None,
                version_of_id: None,
            },
        )
        .await;
    let kinds = describe(&events);
    assert_eq!(kinds.first(), Some(&"user_message"), "{transport:?}: {kinds:?}");
    assert_eq!(kinds.get(1), Some(&"assistant_started"), "{transport:?}: {kinds:?}");
    let completed_at = kinds
        .iter()
        .position(|k| *k == "completed")
        .unwrap_or_else(|| panic!("{kinds:?}"));
    assert!(
        kinds[2..completed_at]
            .iter()
            .all(|k| matches!(*k, "delta" | "reasoning_delta" | "session_updated")),
        "{transport:?}: {kinds:?}"
    );
    assert!(kinds[2..completed_at].contains(&"delta"), "{kinds:?}");
    let streamed: String = events
        .iter()
        .filter_map(|e| match e.event.as_ref().and_then(|e| e.event.as_ref()) {
            Some(Event::Delta(d)) => Some(d.as_str()),
            _ => None,
        })
        .collect();
    let Some(Event::Completed(final_message)) = events[completed_at].event.as_ref().and_then(|e| e.event.clone())
    else {
        panic!("no completed message");
    };
    assert_eq!(final_message.content, streamed, "{transport:?}");
    assert!(!streamed.is_empty());
    assert_eq!(final_message.status, chat::MessageStatus::Complete as i32);

    // The conversation is stored: the user's message, then the answer.
    let listed: chat::ListMessagesResponse = client
        .unary(
            "/parley.chat.v1.MessageService/ListMessages",
            chat::ListMessagesRequest {
                session_id: session.id,
                ..Default::default()
            },
        )
        .await;
    let contents: Vec<&str> = listed.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["Say hello", streamed.as_str()], "{transport:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_chat_over_grpc_web_binary_text_and_native_grpc() {
    let fake = FakeOpenAi::start().await;
    let stack = Stack::start().await;
    let web = |mode, version| Transport::GrpcWeb(mode, version);
    chat_over(&stack, &fake, web(WebMode::Binary, HttpVersion::Http1), "web_binary").await;
    chat_over(&stack, &fake, web(WebMode::Text, HttpVersion::Http1), "web_text").await;
    // Browsers speak HTTP/2 to any server that offers it (behind TLS; h2c here).
    chat_over(&stack, &fake, web(WebMode::Binary, HttpVersion::Http2), "web_binary_h2").await;
    chat_over(&stack, &fake, web(WebMode::Text, HttpVersion::Http2), "web_text_h2").await;
    chat_over(&stack, &fake, Transport::Native, "native").await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_streams_before_it_is_complete() {
    let fake = FakeOpenAi::start().await;
    let stack = Stack::start().await;
    let mut client = Client {
        transport: Transport::GrpcWeb(WebMode::Binary, HttpVersion::Http1),
        addr: stack.addr,
        token: None,
    };
    let registered: user::RegisterResponse = client
        .unary(
            "/parley.user.v1.UserService/Register",
            user::RegisterRequest {
                username: "streamer".into(),
                password: "a long enough password".into(),
                email: None,
                display_name: None,
                ..Default::default()
            },
        )
        .await;
    client.token = Some(registered.access_token.clone());
    let config: chat::CreateApiConfigResponse = client
        .unary(
            "/parley.chat.v1.ApiConfigService/CreateApiConfig",
            chat::CreateApiConfigRequest {
                name: "fake".into(),
                base_url: fake.base_url(),
                api_key: fake.api_key(),
                model: "fake-model".into(),
            },
        )
        .await;
    let session: chat::CreateSessionResponse = client
        .unary(
            "/parley.chat.v1.SessionService/CreateSession",
            chat::CreateSessionRequest {
                api_config_id: Some(config.api_config.unwrap().id),
                ..Default::default()
            },
        )
        .await;
    let auth = format!("Bearer {}", registered.access_token);
    let mut stream = grpc_web_call(
        stack.addr,
        "/parley.chat.v1.MessageService/SendMessage",
        &chat::SendMessageRequest {
            session_id: session.session.unwrap().id,
            content: "hi".into(),
            api_config_id: None,
            version_of_id: None,
        },
        WebMode::Text,
        &[("authorization", &auth)],
    )
    .await;
    // The first event (the stored user message) is readable on its own.
    match stream.next_frame().await {
        Some(WebFrame::Message(bytes)) => {
            let first = chat::SendMessageResponse::decode(bytes).unwrap();
            assert!(matches!(
                first.event.and_then(|e| e.event),
                Some(Event::UserMessage(m)) if m.content == "hi"
            ));
        }
        other => panic!("expected the first event, got {other:?}"),
    }
    let (_, code, message) = stream.collect::<chat::SendMessageResponse>().await;
    assert_eq!(code, Code::Ok, "{message}");
    let _ = stack.url();
    stack.stop().await;
}

/// The all-in-one allows LLM calls to loopback (a local Ollama) unless the operator turns that
/// off; then the same fake provider on 127.0.0.1 is refused by the egress policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_networks_can_be_refused_in_the_all_in_one() {
    use parley_proto::chat::v1::api_config_service_client::ApiConfigServiceClient;
    use parley_proto::user::v1::user_service_client::UserServiceClient;

    let fake = FakeOpenAi::start().await;
    for allow in [true, false] {
        let stack = Stack::start_with(|config| parley::StackConfig {
            allow_private_networks: Some(allow),
            ..config
        })
        .await;
        let channel = tonic::transport::Endpoint::from_shared(stack.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let registered = UserServiceClient::new(channel.clone())
            .register(user::RegisterRequest {
                username: "operator".into(),
                password: "a long enough password".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut request = tonic::Request::new(chat::ListModelsRequest {
            target: Some(chat::list_models_request::Target::Settings(chat::ProviderSettings {
                base_url: fake.base_url(),
                api_key: fake.api_key(),
                model: "fake-model".into(),
            })),
        });
        let bearer = format!("Bearer {}", registered.access_token);
        request
            .metadata_mut()
            .insert("authorization", MetadataValue::try_from(bearer.as_str()).unwrap());
        let listed = ApiConfigServiceClient::new(channel).list_models(request).await;
        if allow {
            assert!(
                listed
                    .unwrap()
                    .into_inner()
                    .model_ids
                    .contains(&"fake-model".to_string())
            );
        } else {
            let status = listed.unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            assert!(status.message().contains("loopback"), "{status:?}");
        }
        stack.stop().await;
    }
}
