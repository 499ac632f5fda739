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

    for (flag, value) in [
        ("--idle-timeout-secs", "-1"),
        ("--request-timeout-secs", "0"),
        ("--connect-timeout-secs", "0"),
        ("--initial-backoff-secs", "-0.5"),
    ] {
        let output = Command::new(BINARY)
            .args(["--listen", "127.0.0.1:0", &format!("{flag}={value}")])
            .output()
            .unwrap();
        let line = one_error_line(&output);
        assert!(line.contains(flag), "{flag}={value}: {line}");
    }

    let missing = std::env::temp_dir().join("parley-no-such-ca.pem");
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0"])
        .env("PARLEY_EXTRA_CA_CERTS", &missing)
        .output()
        .unwrap();
    let line = one_error_line(&output);
    assert!(
        line.contains("extra CA certificates") && line.contains(&missing.display().to_string()),
        "{line}"
    );
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
    start_binary_with(allow_private_networks, &[]).await
}

async fn start_binary_with(allow_private_networks: Option<&str>, env: &[(&str, &str)]) -> (Running, Client) {
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
    command.envs(env.iter().copied());
    let child = Running(command.spawn().unwrap());
    let channel = parley_testkit::wait::channel_to(&format!("http://127.0.0.1:{port}")).await;
    (child, LlmServiceClient::new(channel))
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

#[tokio::test]
async fn the_request_timeout_comes_from_its_env_var() {
    let app = axum::Router::new().route(
        "/v1/models",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "too late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (_running, mut client) = start_binary_with(Some("true"), &[("PARLEY_LLM_REQUEST_TIMEOUT_SECS", "0.3")]).await;
    let status = client
        .list_models(parley_proto::llm::v1::ListModelsRequest {
            provider: Some(parley_proto::llm::v1::Provider {
                base_url: format!("http://{address}/v1"),
                api_key: String::new(),
                model: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(status.message().contains("within 0.3s"), "{}", status.message());
}

#[test]
fn reads_every_variable_the_deployment_files_set() {
    parley_testkit::deploy_env::assert_binary_reads_all(BINARY, "llm-service");
}
