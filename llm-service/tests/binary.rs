//! The `llm-service` binary: flags and env vars reach the library, start-up errors are one line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use parley_proto::llm::v1::llm_service_client::LlmServiceClient;
use tonic::Code;

const BINARY: &str = env!("CARGO_BIN_EXE_llm-service");

fn one_error_line(output: &std::process::Output) -> String {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("llm-service:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

#[test]
fn start_up_errors_are_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(BINARY).args(["--listen", &address]).output().unwrap();
    let line = one_error_line(&output);
    assert!(line.contains("cannot listen on") && line.contains(&address), "{line}");

    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--idle-timeout-secs=-1"])
        .output()
        .unwrap();
    assert!(one_error_line(&output).contains("--idle-timeout-secs"));
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_binary(allow_private_networks: Option<&str>) -> (Running, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(BINARY);
    command
        .env("PARLEY_LLM_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("PARLEY_ALLOW_PRIVATE_NETWORKS")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(value) = allow_private_networks {
        command.env("PARLEY_ALLOW_PRIVATE_NETWORKS", value);
    }
    let child = Running(command.spawn().unwrap());
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..400 {
        if let Ok(channel) = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            return (child, LlmServiceClient::new(channel));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the binary never started listening on {url}");
}

#[tokio::test]
async fn private_networks_are_refused_unless_the_env_var_allows_them() {
    let fake = FakeOpenAi::start().await;

    let (_strict, mut client) = start_binary(None).await;
    let status = stream_error(&mut client, chat_request(provider(&fake), "hi")).await;
    assert_eq!(status.code(), Code::PermissionDenied);

    let (_open, mut client) = start_binary(Some("true")).await;
    let streamed = stream(&mut client, chat_request(provider(&fake), "hi")).await;
    assert_eq!(streamed.content, default_reply_text("hi"), "{:?}", streamed.error);
    assert_eq!(fake.chat_requests().len(), 1);
}
