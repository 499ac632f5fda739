//! The `parley` binary: the whole stack from one command, on a fresh data directory and again
//! on the same one (keys reused, data kept), stopped gracefully by SIGTERM; start-up errors
//! are one clear line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use parley_proto::user::v1 as user;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use tonic::metadata::MetadataValue;

const BINARY: &str = env!("CARGO_BIN_EXE_parley");
const READY_PREFIX: &str = "Parley is running at ";

/// A running `parley`, killed when the test ends however it ends.
struct Parley {
    child: Child,
    url: String,
}

impl Parley {
    fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(BINARY)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--web-dir", "/nonexistent/web/dist"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (found, address) = mpsc::channel();
        // Logs share stdout, so the pipe is drained for as long as the process runs.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix(READY_PREFIX) {
                    let _ = found.send(url.trim().to_string());
                }
            }
        });
        let url = address
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("parley never printed {READY_PREFIX:?}"));
        Self { child, url }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("parley did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Parley {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn users(url: &str) -> UserServiceClient<tonic::transport::Channel> {
    UserServiceClient::connect(url.to_string()).await.unwrap()
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_fresh_then_again_with_keys_reused_and_data_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");

    let first = Parley::start(&data_dir);
    assert!(first.url.starts_with("http://127.0.0.1:"), "{}", first.url);
    let registered = users(&first.url)
        .await
        .register(user::RegisterRequest {
            username: "lin".into(),
            password: "a long enough password".into(),
            email: None,
            display_name: None,
        })
        .await
        .unwrap()
        .into_inner();
    let token = registered.access_token;
    assert!(first.terminate().success(), "SIGTERM is a clean stop");
    assert!(data_dir.join("user-service.db").exists());

    let second = Parley::start(&data_dir);
    let mut users = users(&second.url).await;
    // A token signed before the restart still verifies: the signing key was reused.
    let me = users
        .get_me(with_token(user::GetMeRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.user.unwrap().username, "lin");
    // The account is still there.
    users
        .login(user::LoginRequest {
            login: "lin".into(),
            password: "a long enough password".into(),
        })
        .await
        .unwrap();
    assert!(second.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reports_serving_once_every_service_is_up() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let dir = tempfile::tempdir().unwrap();
    let parley = Parley::start(dir.path());
    let channel = tonic::transport::Endpoint::from_shared(parley.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for _ in 0..200 {
        let status = health
            .check(HealthCheckRequest { service: String::new() })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == ServingStatus::Serving as i32 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway never reported SERVING");
}

fn failing_start(args: &[&str], data_dir: &Path) -> String {
    let output = Command::new(BINARY)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(!output.status.success(), "parley should have refused to start");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with("parley: "), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    lines[0].to_string()
}

#[test]
fn start_up_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = failing_start(&["--listen", &addr], dir.path());
    assert!(line.contains("cannot listen on") && line.contains(&addr), "{line}");

    let not_a_dir = dir.path().join("a-file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let line = failing_start(&["--listen", "127.0.0.1:0"], &not_a_dir);
    assert!(line.contains("data directory"), "{line}");

    let line = failing_start(
        &["--listen", "127.0.0.1:0", "--cors-origins", "not an origin"],
        dir.path(),
    );
    assert!(line.contains("CORS origin"), "{line}");
}
