//! The fake provider over real HTTP, as any OpenAI-compatible client sees it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt;
use parley_testkit::fake_openai::{FakeOpenAi, Reply, default_reply_text};
use serde_json::{Value, json};

fn chat_body(model: &str, text: &str) -> Value {
    json!({
        "model": model,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
    })
}

/// A plain HTTP client. In a whole-workspace build reqwest is compiled with llm-service's
/// `rustls-no-provider` feature, so a crypto provider must be chosen before any client is built.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post_chat(fake: &FakeOpenAi, key: &str, body: &Value) -> reqwest::Response {
    http_client()
        .post(format!("{}/chat/completions", fake.base_url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// What the fake streamed for `body`, sent with the right key.
async fn answer(fake: &FakeOpenAi, body: &Value) -> Streamed {
    parse_stream(&post_chat(fake, &fake.api_key(), body).await.text().await.unwrap())
}

/// The `data:` payloads of an SSE body (comments skipped).
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")).map(str::to_string))
        .collect()
}

struct Streamed {
    content: String,
    reasoning: String,
    content_chunks: usize,
    finish_reasons: Vec<Value>,
    usage: Option<Value>,
    done: bool,
}

fn parse_stream(body: &str) -> Streamed {
    let mut streamed = Streamed {
        content: String::new(),
        reasoning: String::new(),
        content_chunks: 0,
        finish_reasons: Vec::new(),
        usage: None,
        done: false,
    };
    for data in sse_data(body) {
        if data == "[DONE]" {
            streamed.done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(&data).unwrap();
        if !chunk["usage"].is_null() {
            streamed.usage = Some(chunk["usage"].clone());
        }
        for choice in chunk["choices"].as_array().unwrap() {
            if let Some(c) = choice["delta"]["content"].as_str() {
                streamed.content.push_str(c);
                streamed.content_chunks += 1;
            }
            if let Some(r) = choice["delta"]["reasoning_content"].as_str() {
                streamed.reasoning.push_str(r);
            }
            if choice["delta"].as_object().unwrap().is_empty() {
                streamed.finish_reasons.push(choice["finish_reason"].clone());
            }
        }
    }
    streamed
}

#[tokio::test]
async fn default_reply_echoes_the_last_user_message_in_several_chunks() {
    let fake = FakeOpenAi::start().await;
    assert!(fake.base_url().starts_with("http://127.0.0.1:"));
    assert!(fake.base_url().ends_with("/v1"));
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "hello world")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let streamed = parse_stream(&response.text().await.unwrap());
    assert_eq!(streamed.content, default_reply_text("hello world"));
    assert!(streamed.content.starts_with("You said: hello world."));
    assert!(streamed.content_chunks > 3, "{} chunks", streamed.content_chunks);
    assert_eq!(streamed.finish_reasons, vec![json!("stop")]);
    let usage = streamed.usage.unwrap();
    assert_eq!(usage["prompt_tokens"], 4);
    assert_eq!(usage["completion_tokens"], 10);
    assert!(streamed.done);

    let requests = fake.chat_requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].has_bearer(&fake.api_key()));
    assert_eq!(requests[0].body["messages"][1]["content"], "hello world");
}

#[tokio::test]
async fn scripted_text_reasoning_chunking_and_odd_endings() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(
        Reply::text("abcdefg")
            .chunk_size(3)
            .reasoning("hmm")
            .finish_reason("weird_reason")
            .keep_alive_comments(),
    );
    fake.push_reply(Reply::text("x y").no_finish_reason().without_usage().without_done());
    let body = post_chat(&fake, &fake.api_key(), &chat_body("fake-reasoner", "q"))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains(": keep-alive\n\n"));
    assert!(body.contains("x_fake_extension"));
    let streamed = parse_stream(&body);
    assert_eq!(streamed.content, "abcdefg");
    assert_eq!(streamed.content_chunks, 3);
    assert_eq!(streamed.reasoning, "hmm");
    assert_eq!(streamed.finish_reasons, vec![json!("weird_reason")]);

    let streamed = answer(&fake, &chat_body("fake-model", "q")).await;
    assert_eq!(streamed.content, "x y");
    assert_eq!(streamed.finish_reasons, vec![Value::Null]);
    assert!(streamed.usage.is_none());
    assert!(!streamed.done);
    assert_eq!(fake.pending_replies(), 0);
}

#[tokio::test]
async fn errors_look_like_openai_errors() {
    let fake = FakeOpenAi::start().await;
    let response = post_chat(&fake, "sk-wrong", &chat_body("fake-model", "q")).await;
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");

    let response = post_chat(&fake, &fake.api_key(), &chat_body("gpt-nope", "q")).await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "model_not_found");
    assert!(error["error"]["message"].as_str().unwrap().contains("gpt-nope"));

    fake.push_reply(Reply::rate_limited(Duration::from_millis(1500)));
    fake.push_reply(Reply::status(500, "the server is on fire"));
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
    assert_eq!(response.status(), 500);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["message"], "the server is on fire");
}

#[tokio::test]
async fn a_cut_stream_fails_on_the_client() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("one two three four five").cut_after(2));
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = String::new();
    let mut failed = false;
    while let Some(item) = body.next().await {
        match item {
            Ok(bytes) => received.push_str(std::str::from_utf8(&bytes).unwrap()),
            Err(_) => failed = true,
        }
    }
    assert!(failed, "the body ended cleanly: {received}");
    assert_eq!(parse_stream(&received).content, "one two ");
    // A cut by the script is not a client disconnect.
    assert_eq!(fake.disconnects(), 0);
}

#[tokio::test]
async fn a_client_that_goes_away_is_seen() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("a b c d e f g h").chunk_delay(Duration::from_secs(5)));
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    assert_eq!(fake.open_streams(), 1);
    assert_eq!(fake.disconnects(), 0);
    drop(body);
    assert!(fake.wait_for_disconnect(Duration::from_secs(3)).await);
    assert_eq!(fake.disconnects(), 1);
    assert_eq!(fake.open_streams(), 0);
}

#[tokio::test]
async fn an_endless_reply_talks_until_the_client_goes_away() {
    let fake = FakeOpenAi::start().await;
    // Scripted over HTTP, as other processes do.
    http_client()
        .post(format!("http://{}/__fake/replies", fake.address()))
        .json(&json!({"text": "again and ", "reasoning": "hmm", "endless": true}))
        .send()
        .await
        .unwrap();
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
    let mut body = response.bytes_stream();
    // Far more than the text and the reasoning: it repeats.
    let mut received = String::new();
    while received.len() < 64 << 10 {
        received.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
    }
    let complete = &received[..received.rfind("\n\n").unwrap() + 2];
    let streamed = parse_stream(complete);
    assert_eq!(streamed.reasoning, "hmm");
    assert!(
        streamed.content.starts_with("again and again and again and "),
        "{}",
        streamed.content
    );
    assert!(streamed.content.len() > 1000, "{}", streamed.content.len());
    assert!(
        streamed.finish_reasons.iter().all(Value::is_null),
        "{:?}",
        streamed.finish_reasons
    );
    assert!(!streamed.done && streamed.usage.is_none());
    assert_eq!(fake.open_streams(), 1);
    drop(body);
    assert!(fake.wait_for_disconnect(Duration::from_secs(3)).await);
    assert_eq!(fake.open_streams(), 0);
}

#[tokio::test]
async fn models_and_non_streaming_completions() {
    let fake = FakeOpenAi::start().await;
    let client = http_client();
    let models: Value = client
        .get(format!("{}/models", fake.base_url()))
        .bearer_auth(fake.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"fake-model"));
    let unauthorized = client.get(format!("{}/models", fake.base_url())).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);

    let mut body = chat_body("fake-model", "hi");
    body["stream"] = json!(false);
    let completion: Value = post_chat(&fake, &fake.api_key(), &body).await.json().await.unwrap();
    assert_eq!(completion["choices"][0]["message"]["content"], default_reply_text("hi"));
    assert_eq!(completion["usage"]["prompt_tokens"], 3);
}

#[tokio::test]
async fn replies_can_be_scripted_over_http() {
    let fake = FakeOpenAi::start().await;
    let client = http_client();
    let control = format!("http://{}/__fake/replies", fake.address());
    let queued: Value = client
        .post(&control)
        .json(&json!([{"text": "scripted answer", "chunk_delay_ms": 1}, {"status": 429, "retry_after_secs": 7}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queued["queued"], 2);
    let bad = client
        .post(&control)
        .json(&json!({"txt": "typo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let streamed = answer(&fake, &chat_body("fake-model", "q")).await;
    assert_eq!(streamed.content, "scripted answer");
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    client
        .post(&control)
        .json(&json!({"text": "never sent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(client.delete(&control).send().await.unwrap().status(), 204);
    assert_eq!(fake.pending_replies(), 0);

    let requests: Value = client
        .get(format!("http://{}/__fake/requests", fake.address()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requests.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_binary_prints_where_it_listens() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-openai"))
        .args(["--port", "0", "--api-key", "sk-demo", "--chunk-delay-ms", "0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let prefix = "Fake OpenAI-compatible provider at ";
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected line: {line}"));
    let (base_url, key) = rest.split_once(" (api key: ").unwrap();
    assert_eq!(key, "sk-demo)");
    assert!(base_url.starts_with("http://127.0.0.1:") && base_url.ends_with("/v1"));
    let models = http_client()
        .get(format!("{base_url}/models"))
        .bearer_auth("sk-demo")
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn a_request_the_checks_refuse_leaves_the_script_for_the_next_one() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("meant for the good request"));
    let response = post_chat(&fake, &fake.api_key(), &chat_body("gpt-nope", "q")).await;
    assert_eq!(response.status(), 404);
    let response = post_chat(&fake, "sk-wrong", &chat_body("fake-model", "q")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(fake.pending_replies(), 1);
    let streamed = answer(&fake, &chat_body("fake-model", "q")).await;
    assert_eq!(streamed.content, "meant for the good request");
}

#[tokio::test]
async fn any_retry_after_and_any_error_type_can_be_sent() {
    let fake = FakeOpenAi::start().await;
    for value in ["1e20", "0.5", "Wed, 21 Oct 2065 07:28:00 GMT", "-3"] {
        fake.push_reply(Reply::status(503, "busy").retry_after(value));
        let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], value);
    }
    fake.push_reply(Reply::insufficient_quota());
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "insufficient_quota");
    assert_eq!(error["error"]["code"], "insufficient_quota");
}

#[tokio::test]
async fn intermediate_chunks_can_carry_an_empty_finish_reason() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("a b c").chunk_finish_reason(""));
    let body = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q"))
        .await
        .text()
        .await
        .unwrap();
    let reasons: Vec<Value> = sse_data(&body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| {
            let chunk: Value = serde_json::from_str(d).unwrap();
            chunk["choices"].get(0).map(|c| c["finish_reason"].clone())
        })
        .collect();
    assert_eq!(reasons, vec![json!(""), json!(""), json!(""), json!("stop")]);
}

#[tokio::test]
async fn configured_fields_are_refused_like_real_servers_refuse_them() {
    let fake = FakeOpenAi::start_with(parley_testkit::fake_openai::FakeOpenAiConfig {
        rejected_fields: vec!["stream_options".to_string(), "max_tokens".to_string()],
        ..Default::default()
    })
    .await;
    fake.push_reply(Reply::text("accepted"));
    let response = post_chat(&fake, &fake.api_key(), &chat_body("fake-model", "q")).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["param"], "stream_options");

    let mut body = chat_body("fake-model", "q");
    body.as_object_mut().unwrap().remove("stream_options");
    body["max_tokens"] = json!(10);
    let response = post_chat(&fake, &fake.api_key(), &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_completion_tokens")
    );
    assert_eq!(fake.pending_replies(), 1, "a refused request used the script");

    body.as_object_mut().unwrap().remove("max_tokens");
    body["max_completion_tokens"] = json!(10);
    let streamed = answer(&fake, &body).await;
    assert_eq!(streamed.content, "accepted");
}
