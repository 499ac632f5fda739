//! What llm-service tells about a stream in its logs: the caller's trace id on every line, and
//! overhead figures that do not blame Parley for a slow caller. Logs are captured per thread
//! (the test's current-thread runtime runs the server too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use parley_testkit::captured_logs::CapturedLogs;
use parley_testkit::wait::eventually;

/// The `stream ended` line, once the generation's task has logged it.
async fn stream_ended_line(logs: &CapturedLogs) -> String {
    eventually("a `stream ended` line", Duration::from_secs(5), || async {
        logs.contents()
            .lines()
            .find(|l| l.contains("stream ended"))
            .map(str::to_string)
    })
    .await
}

/// The number after `name=` in a log line.
fn field_ms(line: &str, name: &str) -> f64 {
    let start = line
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + name.len()
        + 2;
    let value: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {line}"))
}

#[tokio::test]
async fn stream_chat_log_lines_carry_the_callers_trace_id() {
    let logs = CapturedLogs::new();
    let _capture = logs.capture_thread();
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(chat_request(provider(&fake), "hi"));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    let mut stream = client.stream_chat(request).await.unwrap().into_inner();
    while stream.message().await.unwrap().is_some() {}

    let line = stream_ended_line(&logs).await;
    assert!(line.contains(trace_id), "the trace id is missing: {line}");
    assert!(line.contains("llm.stream_chat"), "{line}");
}

#[tokio::test]
async fn a_slow_caller_is_not_counted_as_added_latency() {
    let logs = CapturedLogs::new();
    let _capture = logs.capture_thread();
    let fake = FakeOpenAi::start().await;
    // 1 MB (within the default answer cap): far more than the stream's buffer, hyper's send
    // buffer and this client's HTTP/2 windows hold, so the provider's chunks wait for the caller.
    fake.push_reply(Reply::text("x".repeat(1_000_000)).chunk_size(1000));
    let server = TestServer::start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.address))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut client = parley_proto::llm::v1::llm_service_client::LlmServiceClient::new(channel);

    let mut stream = client
        .stream_chat(chat_request(provider(&fake), "hi"))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    let pause = Duration::from_secs(2);
    tokio::time::sleep(pause).await;
    let mut received = 1;
    while stream.message().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, 1001, "1000 chunks and the finish");

    let line = stream_ended_line(&logs).await;
    let caller_wait = field_ms(&line, "caller_wait_ms");
    let added = field_ms(&line, "added_latency_ms");
    assert!(caller_wait >= 1500.0, "the caller's pause was not seen: {line}");
    // Without telling the caller's pace apart, the pause itself (2000 ms) is the added latency.
    assert!(added < 1000.0, "the slow caller counted as Parley's overhead: {line}");
}
