//! StreamChat against the fake provider over real HTTP: text, usage, reasoning, the odd
//! endings real servers produce, validation, cut streams and cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use llm_service::Config;
use parley_proto::llm::v1 as pb;
use parley_service_kit::grpc_status;
use parley_testkit::wait::until;
use tonic::Code;

#[tokio::test]
async fn streams_the_answer_with_usage() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let streamed = stream(&mut client, chat_request(provider(&fake), "hello there")).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    assert_eq!(streamed.content, default_reply_text("hello there"));
    assert!(
        streamed.content_chunks > 3,
        "the answer came in {} chunks",
        streamed.content_chunks
    );
    assert_eq!(streamed.reasoning, "");
    let finish = streamed.finish.unwrap();
    assert_eq!(finish.reason, "stop");
    // The fake counts words: 3 ("You are terse.") + 2 in, 10 out.
    assert_eq!(
        finish.usage,
        Some(pb::Usage {
            prompt_tokens: 5,
            completion_tokens: 10
        })
    );
    assert_eq!(streamed.after_finish, 0);

    // What the provider received: the model, the messages with their roles, streaming with usage, the key.
    let requests = fake.chat_requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].has_bearer(&fake.api_key()));
    let body = &requests[0].body;
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["messages"][1]["content"], "hello there");
    assert!(body.get("temperature").is_none());
    server.stop().await;
}

#[tokio::test]
async fn passes_generation_params_and_omits_an_empty_key() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut request = chat_request(provider(&fake), "hi");
    request.params = Some(pb::GenerationParams {
        temperature: Some(0.5),
        top_p: Some(0.9),
        max_tokens: Some(64),
    });
    let streamed = stream(&mut client, request).await;
    assert!(streamed.finish.is_some(), "{:?}", streamed.error);
    let body = &fake.chat_requests()[0].body;
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["max_tokens"], 64);

    // Ollama needs no key: none is sent, and this fake then refuses.
    let mut keyless = provider(&fake);
    keyless.api_key = String::new();
    let status = stream_error(&mut client, chat_request(keyless, "hi")).await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(fake.chat_requests()[1].authorization, None);
}

#[tokio::test]
async fn reasoning_arrives_as_reasoning_deltas() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(
        Reply::text("The answer is 4.")
            .reasoning("2 plus 2 makes 4. Easy.")
            .chunk_size(5),
    );
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut provider = provider(&fake);
    provider.model = "fake-reasoner".to_string();
    let streamed = stream(&mut client, chat_request(provider, "2+2?")).await;
    assert_eq!(streamed.reasoning, "2 plus 2 makes 4. Easy.");
    assert_eq!(streamed.content, "The answer is 4.");
    assert_eq!(streamed.finish.unwrap().reason, "stop");
}

#[tokio::test]
async fn odd_endings_do_not_break_a_stream() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;

    // Unknown finish_reason, keep-alive comments, unknown fields in every chunk.
    fake.push_reply(
        Reply::text("a b c")
            .finish_reason("end_turn_custom")
            .keep_alive_comments(),
    );
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "a b c");
    assert_eq!(streamed.finish.as_ref().unwrap().reason, "end_turn_custom");

    // An empty finish_reason and no usage.
    fake.push_reply(Reply::text("d e").finish_reason("").without_usage());
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "d e");
    let finish = streamed.finish.unwrap();
    assert_eq!(finish.reason, "");
    assert_eq!(finish.usage, None);

    // finish_reason null to the end, but [DONE]: a normal end, reason unknown.
    fake.push_reply(Reply::text("f g").no_finish_reason());
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "f g");
    assert_eq!(streamed.finish.unwrap().reason, "");

    // A finish_reason but no [DONE]: complete all the same.
    fake.push_reply(Reply::text("h i").finish_reason("length").without_done());
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "h i");
    assert_eq!(streamed.finish.unwrap().reason, "length");
}

#[tokio::test]
async fn a_stream_cut_off_midway_ends_with_an_error() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    fake.push_reply(Reply::text("one two three four five six").cut_after(3));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "one two three ");
    assert!(streamed.finish.is_none(), "a cut stream finished cleanly");
    let status = streamed.error.unwrap();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("broke off"), "{}", status.message());
    // No retry once tokens were sent.
    assert_eq!(fake.chat_requests().len(), 1);

    // `finish_reason: ""` on every chunk (as some servers send) means not finished yet.
    fake.push_reply(Reply::text("one two three four").chunk_finish_reason("").cut_after(2));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "one two ");
    assert!(streamed.finish.is_none(), "a cut stream finished cleanly");
    assert_eq!(streamed.error.unwrap().code(), Code::Unavailable);
    fake.push_reply(
        Reply::text("one two")
            .chunk_finish_reason("")
            .finish_reason("")
            .without_done(),
    );
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
    // …while the same chunks ending with a finish_reason and [DONE] are a normal answer.
    fake.push_reply(Reply::text("one two").chunk_finish_reason(""));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "one two");
    assert_eq!(streamed.finish.unwrap().reason, "stop");

    // Neither a finish_reason nor [DONE]: the stream did not finish either.
    fake.push_reply(Reply::text("x y").no_finish_reason().without_done());
    let status = stream_error(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn dropping_the_stream_closes_the_provider_request() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("slow words keep coming here").chunk_delay(Duration::from_secs(10)));
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut stream = client
        .stream_chat(chat_request(provider(&fake), "q"))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(
        first.chunk,
        Some(pb::stream_chat_response::Chunk::ContentDelta("slow ".to_string()))
    );
    assert_eq!(fake.open_streams(), 1);
    drop(stream);
    assert!(
        fake.wait_for_disconnect(Duration::from_secs(5)).await,
        "the provider never saw the connection close"
    );
    assert_eq!(fake.open_streams(), 0);
}

#[tokio::test]
async fn dropping_the_stream_while_waiting_for_the_first_token_closes_it_too() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("late").first_chunk_delay(Duration::from_secs(10)));
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let stream = client
        .stream_chat(chat_request(provider(&fake), "q"))
        .await
        .unwrap()
        .into_inner();
    // Wait until the provider has the request, then hang up.
    until("the provider has the request", Duration::from_secs(2), || async {
        fake.open_streams() == 1
    })
    .await;
    drop(stream);
    assert!(fake.wait_for_disconnect(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn bad_requests_name_the_field_and_reach_no_provider() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let base = chat_request(provider(&fake), "q");
    let cases: Vec<(&str, pb::StreamChatRequest)> = vec![
        (
            "provider",
            pb::StreamChatRequest {
                provider: None,
                ..base.clone()
            },
        ),
        ("provider.base_url", {
            let mut r = base.clone();
            r.provider.as_mut().unwrap().base_url = String::new();
            r
        }),
        ("provider.base_url", {
            let mut r = base.clone();
            r.provider.as_mut().unwrap().base_url = "not a url".to_string();
            r
        }),
        ("provider.base_url", {
            let mut r = base.clone();
            r.provider.as_mut().unwrap().base_url = format!("http://user:pw@{}/v1", fake.address());
            r
        }),
        ("provider.model", {
            let mut r = base.clone();
            r.provider.as_mut().unwrap().model = " ".to_string();
            r
        }),
        ("provider.api_key", {
            let mut r = base.clone();
            r.provider.as_mut().unwrap().api_key = "sk-abc\r\nX-Injected: 1".to_string();
            r
        }),
        ("provider.api_key", {
            let mut r = base.clone();
            r.provider.as_mut().unwrap().api_key = "sk-abc-clé".to_string();
            r
        }),
        (
            "messages",
            pb::StreamChatRequest {
                messages: vec![],
                ..base.clone()
            },
        ),
        ("messages.role", {
            let mut r = base.clone();
            r.messages[1].role = pb::ChatRole::Unspecified as i32;
            r
        }),
        ("params.temperature", {
            let mut r = base.clone();
            r.params = Some(pb::GenerationParams {
                temperature: Some(2.5),
                ..Default::default()
            });
            r
        }),
        ("params.top_p", {
            let mut r = base.clone();
            r.params = Some(pb::GenerationParams {
                top_p: Some(-0.1),
                ..Default::default()
            });
            r
        }),
        ("params.max_tokens", {
            let mut r = base.clone();
            r.params = Some(pb::GenerationParams {
                max_tokens: Some(0),
                ..Default::default()
            });
            r
        }),
    ];
    for (field, request) in cases {
        let status = client.stream_chat(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let violations = grpc_status::field_violations(&status);
        assert_eq!(violations.len(), 1, "{field}: {status:?}");
        assert_eq!(violations[0].0, field);
        assert!(
            !status.message().contains("sk-abc"),
            "the key was echoed: {}",
            status.message()
        );
    }
    assert!(fake.requests().is_empty());
}

/// A one-route provider on 127.0.0.1 answering every chat request with `body` as `content_type`.
async fn canned_provider(content_type: &'static str, body: &'static str) -> pb::Provider {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || async move { ([("content-type", content_type)], body) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    pb::Provider {
        base_url: format!("http://{address}/v1"),
        api_key: String::new(),
        model: "m".to_string(),
    }
}

#[tokio::test]
async fn a_server_that_ignores_stream_true_still_answers() {
    let provider = canned_provider(
        "application/json",
        r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",
            "content":"All at once.","reasoning_content":"Thought first."},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
    )
    .await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let streamed = stream(&mut client, chat_request(provider, "q")).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    assert_eq!(streamed.content, "All at once.");
    assert_eq!(streamed.reasoning, "Thought first.");
    let finish = streamed.finish.unwrap();
    assert_eq!(finish.reason, "stop");
    assert_eq!(
        finish.usage,
        Some(pb::Usage {
            prompt_tokens: 3,
            completion_tokens: 4
        })
    );
}

#[tokio::test]
async fn something_that_is_not_an_openai_api_is_unavailable_with_a_hint() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for provider in [
        canned_provider("text/html", "<html><body>Welcome to nginx!</body></html>").await,
        canned_provider("application/json", r#"{"hello": "world"#).await,
        canned_provider("application/json", r#"{"hello": "world"}"#).await,
    ] {
        let status = stream_error(&mut client, chat_request(provider, "q")).await;
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("OpenAI-compatible"), "{}", status.message());
    }
    // Stream events that are not JSON.
    let provider = canned_provider("text/event-stream", "data: <<garbage>>\n\n").await;
    let status = stream_error(&mut client, chat_request(provider, "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("not JSON"), "{}", status.message());
}

#[tokio::test]
async fn a_last_event_without_its_blank_line_still_counts() {
    let provider = canned_provider(
        "text/event-stream",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\ndata: [DONE]",
    )
    .await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let streamed = stream(&mut client, chat_request(provider, "q")).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    assert_eq!(streamed.content, "Hi");
    assert_eq!(streamed.finish.unwrap().reason, "");
}

#[tokio::test]
async fn a_json_answer_cut_off_midway_names_the_cause() {
    // By hand, so the cut is exact: the headers and part of a promised body, then the end.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // The whole request first, so closing sends a clean end of stream, not a reset.
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = socket.read(&mut buffer).await.unwrap();
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if request.len() >= end + 4 + length {
                    break;
                }
            }
        }
        socket
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"choices\":",
            )
            .await
            .unwrap();
        socket.shutdown().await.unwrap();
    });
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let provider = pb::Provider {
        base_url: format!("http://{address}/v1"),
        api_key: String::new(),
        model: "m".to_string(),
    };
    let status = stream_error(&mut client, chat_request(provider, "q")).await;
    assert_eq!(status.code(), Code::Unavailable);
    let message = status.message();
    assert!(message.contains("broke off"), "{message}");
    // What happened, not only reqwest's wrapper around it.
    assert!(!message.ends_with("error decoding response body"), "{message}");
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_size_cap_and_the_provider_request_dropped() {
    let fake = FakeOpenAi::start().await;
    // Multi-byte characters, so the cap falls inside one.
    fake.push_reply(Reply::text("loop é語 ").endless());
    let server = TestServer::start_with(Config {
        max_answer_bytes: 10_000,
        ..test_config()
    })
    .await;
    let mut client = server.client().await;
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    // Everything up to the cap, cut on a character boundary (each repeat is 11 bytes).
    assert!(
        streamed.content.len() <= 10_000 && streamed.content.len() > 10_000 - 4,
        "{} bytes",
        streamed.content.len()
    );
    assert!(streamed.content.starts_with("loop é語 loop é語 "));
    let finish = streamed.finish.unwrap();
    assert_eq!(finish.reason, "length");
    assert_eq!(streamed.after_finish, 0);
    assert!(
        fake.wait_for_disconnect(Duration::from_secs(5)).await,
        "the provider request was not dropped"
    );
    assert_eq!(fake.open_streams(), 0);

    // Reasoning counts towards the cap too; the content then never starts.
    fake.push_reply(Reply::text("the answer").reasoning("0123456789 ".repeat(2000)));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.reasoning.len(), 10_000);
    assert_eq!(streamed.content, "");
    assert_eq!(streamed.finish.unwrap().reason, "length");

    // An answer within the cap is untouched.
    fake.push_reply(Reply::text("short"));
    let streamed = stream(&mut client, chat_request(provider(&fake), "q")).await;
    assert_eq!(streamed.content, "short");
    assert_eq!(streamed.finish.unwrap().reason, "stop");
}

#[tokio::test]
async fn a_whole_json_answer_is_cut_at_the_size_cap_too() {
    let provider = canned_provider(
        "application/json",
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"0123456789abcdef"},"finish_reason":"stop"}]}"#,
    )
    .await;
    let server = TestServer::start_with(Config {
        max_answer_bytes: 10,
        ..test_config()
    })
    .await;
    let mut client = server.client().await;
    let streamed = stream(&mut client, chat_request(provider, "q")).await;
    assert_eq!(streamed.content, "0123456789");
    assert_eq!(streamed.finish.unwrap().reason, "length");
}
