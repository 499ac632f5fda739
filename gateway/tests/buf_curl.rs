//! `buf curl` (npm @bufbuild/buf), a gRPC-web client nobody in this project wrote, against the
//! gateway in front of the real user-service: it lists the services through reflection and
//! signs up and in, with reflection (over HTTP/2) and with the schema from proto/ (gRPC-web
//! over HTTP/1.1, as a browser).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::process::Output;

use support::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// buf from the test tools: the platform package's binary (`@bufbuild/buf-linux-x64`,
/// `-linux-arm64`, `-darwin-arm64` …), or else npm's `buf` wrapper, which finds it itself.
fn buf() -> PathBuf {
    let modules = repo_root().join("tools/node_modules");
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    let exe = if cfg!(windows) { "buf.exe" } else { "buf" };
    let candidates = [
        modules.join(format!("@bufbuild/buf-{os}-{arch}/bin/{exe}")),
        modules.join(".bin").join(exe),
    ];
    candidates
        .iter()
        .find(|path| path.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "buf is missing (looked for {candidates:?}): install the test tools with `npm ci --prefix tools` (or `make tools-deps`)"
            )
        })
}

async fn run_buf(args: Vec<String>) -> Output {
    let output = tokio::process::Command::new(buf())
        .args(&args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "buf {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buf_curl_lists_services_and_logs_in_over_grpc_web() {
    let binary = buf();
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let user_url = format!("http://{}", listener.local_addr().unwrap());
    let config = user_service::Config::new(user_service::Config::default_database_url(dir.path()), dir.path());
    tokio::spawn(user_service::serve(listener, config, std::future::pending()));
    let stack = Stack::gateway(
        gateway::Config::new(user_url, closed_port_url().await),
        Default::default(),
    )
    .await;

    let listed = run_buf(vec![
        "curl".into(),
        "--protocol".into(),
        "grpcweb".into(),
        "--list-services".into(),
        stack.url(),
    ])
    .await;
    let services = String::from_utf8_lossy(&listed.stdout);
    for service in [
        "parley.user.v1.UserService",
        "parley.chat.v1.SessionService",
        "parley.chat.v1.MessageService",
        "parley.chat.v1.ApiConfigService",
        "parley.chat.v1.PersonaService",
        "parley.chat.v1.QuotaService",
        "parley.chat.v1.SharedConnectionService",
        "parley.chat.v1.UsageService",
        "parley.chat.v1.RoomService",
    ] {
        assert!(
            services.lines().any(|l| l.trim() == service),
            "{service} not listed:\n{services}"
        );
    }
    assert!(
        !services.contains("parley.llm"),
        "the internal service is listed:\n{services}"
    );

    let registered = run_buf(vec![
        "curl".into(),
        "--protocol".into(),
        "grpcweb".into(),
        "--data".into(),
        r#"{"username":"ada","password":"a long enough password"}"#.into(),
        format!("{}/parley.user.v1.UserService/Register", stack.url()),
    ])
    .await;
    let reply: serde_json::Value = serde_json::from_slice(&registered.stdout).unwrap();
    let user_id = reply["user"]["id"].clone();
    assert!(user_id.is_string(), "{reply}");

    let body = r#"{"login":"ada","password":"a long enough password"}"#.to_string();
    let login_url = format!("{}/parley.user.v1.UserService/Login", stack.url());
    let with_reflection = run_buf(vec![
        "curl".into(),
        "--protocol".into(),
        "grpcweb".into(),
        "--data".into(),
        body.clone(),
        login_url.clone(),
    ])
    .await;
    let reply: serde_json::Value = serde_json::from_slice(&with_reflection.stdout).unwrap();
    assert_eq!(reply["user"]["id"], user_id);
    assert!(reply["accessToken"].as_str().is_some_and(|t| !t.is_empty()));

    // Without reflection buf speaks gRPC-web over HTTP/1.1, as a browser does.
    let with_schema = run_buf(vec![
        "curl".into(),
        "--protocol".into(),
        "grpcweb".into(),
        "--schema".into(),
        repo_root().join("proto").display().to_string(),
        "--data".into(),
        body,
        login_url,
    ])
    .await;
    let reply: serde_json::Value = serde_json::from_slice(&with_schema.stdout).unwrap();
    assert_eq!(reply["user"]["username"], "ada");

    drop(binary);
    stack.shutdown().await;
}
