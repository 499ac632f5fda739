//! Retries only before the first token, bounded, honouring Retry-After up to a cap; the
//! connect, first-token and idle timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use llm_service::{Config, RetrySettings};
use parley_service_kit::grpc_status;
use parley_testkit::fake_openai::FakeOpenAiConfig;
use tonic::Code;

#[tokio::test]
async fn a_rate_limit_before_the_first_token_is_retried_after_retry_after() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    fake.push_reply(Reply::rate_limited(Duration::from_secs(1)));
    let started = Instant::now();
    let streamed = stream(&mut client, chat_request(provider(&fake), "again")).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    assert_eq!(streamed.content, default_reply_text("again"));
    assert_eq!(fake.chat_requests().len(), 2);
    // Behaviour, not speed: the second attempt waited for what the provider asked.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await; // max_retries: 2
    let mut client = server.client().await;
    fake.push_reply(Reply::status(500, "boom"));
    fake.push_reply(Reply::status(502, "bad gateway"));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert!(streamed.finish.is_some(), "{:?}", streamed.error);
    assert_eq!(fake.chat_requests().len(), 3);

    for _ in 0..3 {
        fake.push_reply(Reply::status(503, "still down"));
    }
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("still down"));
    assert_eq!(fake.chat_requests().len(), 6, "1 attempt + 2 retries");
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_handed_to_the_caller() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await; // max_delay: 3 s
    let mut client = server.client().await;
    fake.push_reply(Reply::rate_limited(Duration::from_secs(30)));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(grpc_status::retry_delay(&status), Some(Duration::from_secs(30)));
    assert_eq!(fake.chat_requests().len(), 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    fake.push_reply(Reply::status(400, "bad"));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fake.chat_requests().len(), 1);
}

#[tokio::test]
async fn connect_errors_are_retried() {
    // A provider that comes up a moment after the first attempt was refused.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = free.local_addr().unwrap();
    drop(free);
    let server = TestServer::start_with(Config {
        retry: RetrySettings {
            max_retries: 4,
            initial_backoff: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        },
        ..test_config()
    })
    .await;
    let mut client = server.client().await;
    let late_fake = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        FakeOpenAi::start_with(FakeOpenAiConfig {
            listen: address,
            api_key: Some("sk-late-key".to_string()),
            ..FakeOpenAiConfig::default()
        })
        .await
    });
    let provider = parley_proto::llm::v1::Provider {
        base_url: format!("http://{address}/v1"),
        api_key: "sk-late-key".to_string(),
        model: "fake-model".to_string(),
    };
    let streamed = stream(&mut client, chat_request(provider, "late")).await;
    let fake = late_fake.await.unwrap();
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    assert_eq!(streamed.content, default_reply_text("late"));
    assert_eq!(fake.chat_requests().len(), 1);
}

fn timeouts(connect: u64, first_token: u64, idle: u64) -> Config {
    Config {
        connect_timeout: Duration::from_millis(connect),
        first_token_timeout: Duration::from_millis(first_token),
        idle_timeout: Duration::from_millis(idle),
        ..test_config()
    }
}

#[tokio::test]
async fn no_first_token_in_time_is_deadline_exceeded_and_closes_the_request() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start_with(timeouts(5_000, 300, 5_000)).await;
    let mut client = server.client().await;

    // Headers, then nothing.
    fake.push_reply(Reply::text("too late").first_chunk_delay(Duration::from_secs(10)));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(status.message().contains("first-token timeout"), "{}", status.message());
    assert!(fake.wait_for_disconnect(Duration::from_secs(5)).await);

    // Not even headers.
    fake.push_reply(Reply::text("too late").headers_delay(Duration::from_secs(10)));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn silence_mid_answer_is_deadline_exceeded() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start_with(timeouts(5_000, 5_000, 1_000)).await;
    let mut client = server.client().await;
    fake.push_reply(Reply::text("first then nothing").chunk_delay(Duration::from_secs(10)));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "first ");
    let status = streamed.error.unwrap();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(status.message().contains("idle timeout"), "{}", status.message());
    assert!(fake.wait_for_disconnect(Duration::from_secs(5)).await);

    // Slow but steady is fine: each gap is under the idle timeout.
    fake.push_reply(Reply::text("a b c d").chunk_delay(Duration::from_millis(100)));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "a b c d");
    assert!(streamed.finish.is_some());
}

#[tokio::test]
async fn a_connection_that_never_completes_is_deadline_exceeded() {
    // A listener whose accept queue is full: Linux drops further SYNs, so connecting hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let connect = tokio::net::TcpStream::connect(address);
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            fillers.push(stream);
        }
    }
    let server = TestServer::start_with(Config {
        retry: no_retries().retry,
        ..timeouts(300, 10_000, 10_000)
    })
    .await;
    let mut client = server.client().await;
    let provider = parley_proto::llm::v1::Provider {
        base_url: format!("http://{address}/v1"),
        api_key: String::new(),
        model: "m".to_string(),
    };
    let status = stream_error(&mut client, chat_request(provider, "q")).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("connecting"), "{}", status.message());
    drop(listener);
}

#[tokio::test]
async fn any_retry_after_is_read_without_crashing() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await; // max_delay: 3 s
    let mut client = server.client().await;

    // Too large for a Duration: believed up to a day, handed to the caller.
    fake.push_reply(Reply::rate_limited(Duration::from_secs(1)).retry_after("1e20"));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        grpc_status::retry_delay(&status),
        Some(llm_service::provider::MAX_RETRY_AFTER)
    );
    assert_eq!(fake.chat_requests().len(), 1);

    // A fraction of a second, then an HTTP date a moment away: both waited for.
    fake.push_reply(Reply::rate_limited(Duration::from_secs(1)).retry_after("0.2"));
    let in_two_seconds = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    fake.push_reply(Reply::rate_limited(Duration::from_secs(1)).retry_after(in_two_seconds));
    let streamed = stream(&mut client, chat_request(provider(&fake), "again")).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    assert_eq!(streamed.content, default_reply_text("again"));
    assert_eq!(fake.chat_requests().len(), 4);

    // Nonsense is no delay at all (the default one), not a crash.
    for nonsense in ["-5", "NaN", "soon"] {
        fake.push_reply(Reply::rate_limited(Duration::from_secs(1)).retry_after(nonsense));
    }
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    let status = streamed.error.expect("three 429s with max_retries 2");
    assert_eq!(status.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn a_server_error_with_retry_after_beyond_the_cap_hands_the_delay_to_the_caller() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await; // max_delay: 3 s
    let mut client = server.client().await;
    let in_an_hour = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    fake.push_reply(Reply::status(503, "down for maintenance").retry_after(in_an_hour));
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("down for maintenance"),
        "{}",
        status.message()
    );
    let delay = grpc_status::retry_delay(&status).expect("no RetryInfo");
    assert!(
        delay > Duration::from_secs(3500) && delay <= Duration::from_secs(3600),
        "{delay:?}"
    );
    assert_eq!(fake.chat_requests().len(), 1, "waited for a delay beyond the cap");

    // Within the cap it is waited for, and retried.
    fake.push_reply(Reply::status(503, "restarting").retry_after("0.1"));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert!(streamed.finish.is_some(), "{:?}", streamed.error);
    assert_eq!(fake.chat_requests().len(), 3);
}

#[tokio::test]
async fn an_exhausted_quota_is_failed_precondition_and_not_retried() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    fake.push_reply(Reply::insufficient_quota());
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("You exceeded your current quota"),
        "{}",
        status.message()
    );
    assert_eq!(grpc_status::retry_delay(&status), None);
    assert_eq!(fake.chat_requests().len(), 1);
}

async fn rejecting(field: &str) -> FakeOpenAi {
    FakeOpenAi::start_with(FakeOpenAiConfig {
        rejected_fields: vec![field.to_string()],
        ..FakeOpenAiConfig::default()
    })
    .await
}

#[tokio::test]
async fn a_provider_that_refuses_stream_options_gets_a_request_without_them() {
    let fake = rejecting("stream_options").await;
    let server = TestServer::start_with(no_retries()).await;
    let mut client = server.client().await;
    let streamed = stream(&mut client, chat_request(provider(&fake), "hi")).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    assert_eq!(streamed.content, default_reply_text("hi"));
    // It could not be asked for usage, and sent none.
    assert_eq!(streamed.finish.unwrap().usage, None);
    let requests = fake.chat_requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].body.get("stream_options").is_some());
    assert!(requests[1].body.get("stream_options").is_none());
    assert_eq!(requests[1].body["messages"], requests[0].body["messages"]);
}

#[tokio::test]
async fn a_model_that_refuses_max_tokens_gets_max_completion_tokens() {
    let fake = rejecting("max_tokens").await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut request = chat_request(provider(&fake), "hi");
    request.params = Some(parley_proto::llm::v1::GenerationParams {
        max_tokens: Some(64),
        ..Default::default()
    });
    let streamed = stream(&mut client, request).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    let requests = fake.chat_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["max_tokens"], 64);
    assert!(requests[1].body.get("max_tokens").is_none());
    assert_eq!(requests[1].body["max_completion_tokens"], 64);

    // A real limit on max_tokens is the caller's error, not a field to rename.
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::status(400, "max_tokens is too large: 100000"));
    let mut with_limit = chat_request(provider(&fake), "hi");
    with_limit.params = Some(parley_proto::llm::v1::GenerationParams {
        max_tokens: Some(100_000),
        ..Default::default()
    });
    let status = stream_error(&mut client, with_limit).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fake.chat_requests().len(), 1, "a real limit was retried");
}
