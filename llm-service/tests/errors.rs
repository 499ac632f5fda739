//! Every provider failure maps to a status a caller can act on, with the provider's message,
//! unless the provider is on a private address and the server is not told to pass that on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use llm_service::Config;
use parley_service_kit::grpc_status::{self, Reason};
use tonic::Code;

#[tokio::test]
async fn a_rejected_key_is_failed_precondition_never_unauthenticated() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut wrong_key = provider(&fake);
    wrong_key.api_key = "sk-wrong-key-1234".to_string();
    let status = stream_error(&mut client, chat_request(wrong_key, "q")).await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(grpc_status::reason(&status), Some(Reason::ProviderAuthFailed));
    assert!(
        status.message().contains("Incorrect API key provided"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains("sk-wrong-key-1234"));

    fake.push_reply(Reply::status(403, "Project does not have access"));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("Project does not have access"));
    // Not retried.
    assert_eq!(fake.chat_requests().len(), 2);
}

#[tokio::test]
async fn rate_limits_are_resource_exhausted_with_the_retry_delay() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start_with(no_retries()).await;
    let mut client = server.client().await;
    fake.push_reply(Reply::rate_limited(Duration::from_secs(7)));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(grpc_status::retry_delay(&status), Some(Duration::from_secs(7)));
    assert_eq!(grpc_status::reason(&status), Some(Reason::ProviderRateLimited));
    assert!(status.message().contains("Rate limit reached"), "{}", status.message());

    // Without Retry-After the caller still gets a delay to wait.
    fake.push_reply(Reply::status(429, "slow down"));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(grpc_status::retry_delay(&status).is_some());
}

#[tokio::test]
async fn bad_requests_are_invalid_argument_and_unknown_models_not_found() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    fake.push_reply(Reply::status(400, "max_tokens is too large for this model"));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(grpc_status::reason(&status), Some(Reason::ProviderRefusedRequest));
    assert!(
        status.message().contains("max_tokens is too large"),
        "{}",
        status.message()
    );

    fake.push_reply(Reply::status(
        400,
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
    ));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(grpc_status::reason(&status), Some(Reason::ContextTooLong));
    assert!(
        status.message().contains("maximum context length"),
        "{}",
        status.message()
    );

    let mut unknown = provider(&fake);
    unknown.model = "gpt-imaginary".to_string();
    let status = stream_error(&mut client, chat_request(unknown, "q")).await;
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(grpc_status::reason(&status), Some(Reason::ModelNotFound));
    assert!(status.message().contains("gpt-imaginary"), "{}", status.message());

    // A base URL without /v1 reaches no endpoint at all.
    let mut wrong_path = provider(&fake);
    wrong_path.base_url = format!("http://{}", fake.address());
    let status = stream_error(&mut client, chat_request(wrong_path, "q")).await;
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(grpc_status::reason(&status), Some(Reason::ProviderEndpointNotFound));
    assert!(status.message().contains("/v1"), "{}", status.message());
}

#[tokio::test]
async fn server_errors_and_unreachable_providers_are_unavailable() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start_with(no_retries()).await;
    let mut client = server.client().await;
    fake.push_reply(Reply::status(503, "overloaded, try later"));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("overloaded, try later"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("503"));

    // Connection refused: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut refused = provider(&fake);
    refused.base_url = format!("http://127.0.0.1:{port}/v1");
    let status = stream_error(&mut client, chat_request(refused, "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("cannot connect"), "{}", status.message());

    // TLS to something that does not speak it (the fake speaks plain HTTP).
    let mut not_tls = provider(&fake);
    not_tls.base_url = format!("https://{}/v1", fake.address());
    let status = stream_error(&mut client, chat_request(not_tls, "q")).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(fake.chat_requests().len(), 1, "a request went through without TLS");

    // A name that does not resolve (.invalid never does).
    let mut unknown_host = provider(&fake);
    unknown_host.base_url = "http://parley-no-such-host.invalid/v1".to_string();
    let status = stream_error(&mut client, chat_request(unknown_host, "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("cannot resolve"), "{}", status.message());
}

#[tokio::test]
async fn an_error_event_mid_stream_is_an_error() {
    // A provider that fails after some tokens, the way OpenAI and vLLM report it in-band.
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            (
                [("content-type", "text/event-stream")],
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                 data: {\"error\":{\"message\":\"The server had an error while processing your request\"}}\n\n",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let streamed = stream(
        &mut client,
        chat_request(
            parley_proto::llm::v1::Provider {
                base_url: format!("http://{address}/v1"),
                api_key: String::new(),
                model: "m".to_string(),
            },
            "q",
        ),
    )
    .await;
    assert_eq!(streamed.content, "Hel");
    let status = streamed.error.unwrap();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("server had an error"), "{}", status.message());
}

#[tokio::test]
async fn the_text_of_a_provider_on_a_private_address_is_not_passed_on() {
    let fake = FakeOpenAi::start().await;
    // The default: private networks allowed, but what is found there is not read back.
    let server = TestServer::start_with(Config {
        echo_private_provider_errors: false,
        ..no_retries()
    })
    .await;
    let mut client = server.client().await;
    let secret = "internal admin panel: 3 users, db at 10.0.0.7";
    let cases = [
        (
            Reply::status(401, secret),
            Code::FailedPrecondition,
            "HTTP 401 Unauthorized",
        ),
        (
            Reply::status(400, secret),
            Code::InvalidArgument,
            "HTTP 400 Bad Request",
        ),
        (
            Reply::status(503, secret),
            Code::Unavailable,
            "HTTP 503 Service Unavailable",
        ),
        (Reply::status(418, secret), Code::FailedPrecondition, "HTTP 418"),
        (
            Reply::rate_limited(Duration::from_secs(2)),
            Code::ResourceExhausted,
            "HTTP 429 Too Many Requests",
        ),
    ];
    for (reply, code, names) in cases {
        fake.push_reply(reply);
        let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(names), "{}", status.message());
        assert!(status.message().contains("not passed on"), "{}", status.message());
        assert!(!status.message().contains("admin panel"), "{}", status.message());
        assert!(!status.message().contains("Rate limit reached"), "{}", status.message());
    }
    // The body still decides the status: an unknown model is NOT_FOUND, named by Parley.
    let mut unknown = provider(&fake);
    unknown.model = "gpt-imaginary".to_string();
    let status = stream_error(&mut client, chat_request(unknown.clone(), "q")).await;
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("gpt-imaginary"), "{}", status.message());
    assert!(!status.message().contains("does not exist"), "{}", status.message());
    // ListModels and CheckProvider say no more.
    let mut wrong_key = provider(&fake);
    wrong_key.api_key = "sk-wrong-key-1234".to_string();
    let status = client
        .list_models(parley_proto::llm::v1::ListModelsRequest {
            provider: Some(wrong_key.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(!status.message().contains("Incorrect API key"), "{}", status.message());
    let checked = client
        .check_provider(parley_proto::llm::v1::CheckProviderRequest {
            provider: Some(wrong_key),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!checked.ok);
    assert!(checked.message.contains("HTTP 401"), "{}", checked.message);
    assert!(!checked.message.contains("Incorrect API key"), "{}", checked.message);
}

#[tokio::test]
async fn the_text_of_a_private_error_event_or_redirect_is_not_passed_on() {
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            axum::routing::post(|| async {
                (
                    [("content-type", "text/event-stream")],
                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                     data: {\"error\":{\"message\":\"secret internal state\"}}\n\n",
                )
            }),
        )
        .route(
            "/moved/v1/chat/completions",
            axum::routing::post(|| async {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [("location", "http://internal-only.corp:9000/secret-path")],
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = TestServer::start_with(Config {
        echo_private_provider_errors: false,
        ..test_config()
    })
    .await;
    let mut client = server.client().await;
    let at = |path: &str| parley_proto::llm::v1::Provider {
        base_url: format!("http://{address}{path}"),
        api_key: String::new(),
        model: "m".to_string(),
    };
    let streamed = stream(&mut client, chat_request(at("/v1"), "q")).await;
    assert_eq!(streamed.content, "Hel");
    let status = streamed.error.unwrap();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("mid-stream"), "{}", status.message());
    assert!(!status.message().contains("secret"), "{}", status.message());

    let status = stream_error(&mut client, chat_request(at("/moved/v1"), "q")).await;
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("redirect"), "{}", status.message());
    assert!(!status.message().contains("internal-only"), "{}", status.message());
}
