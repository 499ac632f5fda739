//! The access log: one line per call, with method, status, duration, user and request id, and
//! never a token. In its own test binary because it captures logs process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use parley_proto::chat::v1 as chat;
use support::*;
use tonic::Code;

const SEND_MESSAGE: &str = "/parley.chat.v1.MessageService/SendMessage";

fn send_request(content: &str) -> chat::SendMessageRequest {
    chat::SendMessageRequest {
        session_id: 1,
        content: content.into(),
        api_config_id: None,
        version_of_id: None,
    }
}

#[tokio::test]
async fn one_access_log_line_per_call_without_tokens() {
    let logs = parley_testkit::captured_logs::CapturedLogs::global();
    let stack = Stack::start_with(|config| {
        config.generation_rate_limit = Some(gateway::RateLimit {
            burst: 1,
            period: std::time::Duration::from_secs(60),
        });
    })
    .await;
    let token = access_token(USER_ID);
    let auth = bearer(&token);
    let stream = grpc_web_call(
        stack.addr,
        SEND_MESSAGE,
        &send_request("hi"),
        WebMode::Binary,
        &[("authorization", &auth), ("x-request-id", "log-me-1")],
    )
    .await;
    let (_, code, _) = stream.collect::<chat::SendMessageResponse>().await;
    assert_eq!(code, Code::Ok);
    let denied = grpc_web_call(stack.addr, SEND_MESSAGE, &send_request("hi"), WebMode::Binary, &[]).await;
    let _ = denied.collect::<chat::SendMessageResponse>().await;
    // What the gateway logs while handling a call is in the call's span, with its trace id.
    let limited = grpc_web_call(
        stack.addr,
        SEND_MESSAGE,
        &send_request("hi"),
        WebMode::Binary,
        &[
            ("authorization", &auth),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ],
    )
    .await;
    let (_, code, _) = limited.collect::<chat::SendMessageResponse>().await;
    assert_eq!(code, Code::ResourceExhausted);
    stack.shutdown().await;

    let contents = logs.contents();
    let lines: Vec<&str> = contents
        .lines()
        .filter(|l| l.contains("gateway::access") && l.contains("SendMessage"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].contains("code=Ok") && lines[0].contains("user_id=7") && lines[0].contains("log-me-1"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("code=Unauthenticated") && lines[1].contains("user_id=-"),
        "{}",
        lines[1]
    );
    assert!(lines[0].contains("duration_ms="));
    assert!(
        lines[2].contains("code=ResourceExhausted") && lines[2].contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
        "{}",
        lines[2]
    );
    let limited_line = contents
        .lines()
        .find(|l| l.contains("rate limited by user"))
        .unwrap_or_else(|| panic!("no rate limit line in:\n{contents}"));
    assert!(
        limited_line.contains("gateway{") && limited_line.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
        "not in the call's span: {limited_line}"
    );
    assert!(
        limited_line.contains("user_id=7"),
        "the span lacks the caller: {limited_line}"
    );
    let signature = token.rsplit('.').next().unwrap();
    assert!(!contents.contains(signature), "a token reached the logs");
}
