//! The `parley` binary: the whole stack from one command, on a fresh data directory and again
//! on the same one (keys reused, data kept), stopped gracefully by SIGTERM (an answer being
//! streamed still completes); start-up errors are one clear line, and the "running" line comes
//! only once every service is serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use parley_proto::chat::v1 as chat;
use parley_proto::chat::v1::api_config_service_client::ApiConfigServiceClient;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::chat::v1::message_service_client::MessageServiceClient;
use parley_proto::chat::v1::session_service_client::SessionServiceClient;
use parley_proto::user::v1 as user;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use parley_testkit::fake_openai::{FakeOpenAi, Reply};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const BINARY: &str = env!("CARGO_BIN_EXE_parley");
const READY_PREFIX: &str = "Parley is running at ";

/// A running `parley`, killed when the test ends however it ends.
struct Parley {
    child: Child,
    url: String,
    /// Every line it printed so far (logs share stdout with the running line).
    output: Arc<Mutex<Vec<String>>>,
}

impl Parley {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &["--listen", "127.0.0.1:0"])
    }

    /// Started with `args` (at least `--listen`), serving no web UI.
    fn start_with(data_dir: &Path, args: &[&str]) -> Self {
        let mut args = args.to_vec();
        args.extend(["--web-dir", "/nonexistent/web/dist"]);
        Self::start_with_env(data_dir, &args, &[])
    }

    /// Started with `args` (at least `--listen`) and the environment variables `env`; without
    /// `--web-dir` it serves the UI compiled in.
    fn start_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BINARY)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("PARLEY_ALLOW_PRIVATE_NETWORKS")
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("PARLEY_WEB_DIR")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (found, address) = mpsc::channel();
        let output = Arc::new(Mutex::new(Vec::new()));
        // Logs share stdout, so the pipe is drained for as long as the process runs.
        std::thread::spawn({
            let output = Arc::clone(&output);
            move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix(READY_PREFIX) {
                        let _ = found.send(url.trim().to_string());
                    }
                    output.lock().unwrap().push(line);
                }
            }
        });
        let url = address
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("parley never printed {READY_PREFIX:?}"));
        Self { child, url, output }
    }

    /// The lines printed so far.
    fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status.
    fn terminate(self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.wait_for_exit()
    }

    fn wait_for_exit(mut self) -> std::process::ExitStatus {
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

async fn users(url: &str) -> UserServiceClient<Channel> {
    UserServiceClient::connect(url.to_string()).await.unwrap()
}

async fn channel(url: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn register(url: &str, username: &str) -> String {
    users(url)
        .await
        .register(user::RegisterRequest {
            username: username.into(),
            password: "a long enough password".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

/// An API config for `fake`, created through the gateway.
async fn create_api_config(url: &str, token: &str, fake: &FakeOpenAi) -> i64 {
    ApiConfigServiceClient::new(channel(url).await)
        .create_api_config(with_token(
            chat::CreateApiConfigRequest {
                name: "fake".into(),
                base_url: fake.base_url(),
                api_key: fake.api_key(),
                model: "fake-model".into(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap()
        .id
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
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");

    let first = Parley::start(&data_dir);
    assert!(first.url.starts_with("http://127.0.0.1:"), "{}", first.url);
    let token = register(&first.url, "lin").await;
    let config_id = create_api_config(&first.url, &token, &fake).await;
    assert!(first.terminate().success(), "SIGTERM is a clean stop");
    assert!(data_dir.join("user-service.db").exists());
    // Owner-only, like the key files: the data directory and every database in it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            let path = data_dir.join(name);
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(""), 0o700);
        assert_eq!(mode("user-service.db"), 0o600);
        assert_eq!(mode("chat-service.db"), 0o600);
    }

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
            ..Default::default()
        })
        .await
        .unwrap();
    // The API key stored before the restart still decrypts: the master key was reused.
    let tested = ApiConfigServiceClient::new(channel(&second.url).await)
        .test_api_config(with_token(
            chat::TestApiConfigRequest {
                target: Some(chat::test_api_config_request::Target::Id(config_id)),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(tested.ok, "{tested:?}");
    assert!(
        fake.requests().iter().any(|r| r.has_bearer(&fake.api_key())),
        "the provider never saw the stored key"
    );
    assert!(second.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_answer_being_streamed_complete() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let parley = Parley::start(dir.path());
    let token = register(&parley.url, "ivy").await;
    let config_id = create_api_config(&parley.url, &token, &fake).await;
    let session = SessionServiceClient::new(channel(&parley.url).await)
        .create_session(with_token(
            chat::CreateSessionRequest {
                api_config_id: Some(config_id),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    // About two seconds of answer, well inside the ten-second drain deadline.
    let words = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    fake.push_reply(Reply::text(words.join(" ")).chunk_delay(Duration::from_millis(200)));
    let mut events = MessageServiceClient::new(channel(&parley.url).await)
        .send_message(with_token(
            chat::SendMessageRequest {
                session_id: session.id,
                content: "count to ten".into(),
                api_config_id: None,
                version_of_id: None,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    loop {
        let event = events
            .message()
            .await
            .unwrap()
            .expect("the stream ended before any delta");
        if matches!(event.event.and_then(|e| e.event), Some(Event::Delta(_))) {
            break;
        }
    }
    let pid = parley.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    let mut completed = None;
    while let Some(event) = events.message().await.unwrap_or_else(|s| panic!("stream cut: {s:?}")) {
        if let Some(Event::Completed(message)) = event.event.and_then(|e| e.event) {
            completed = Some(message);
        }
    }
    let completed = completed.expect("the answer never completed");
    assert_eq!(completed.content.trim(), words.join(" "));
    assert_eq!(completed.status, chat::MessageStatus::Complete as i32);
    assert!(parley.wait_for_exit().success(), "not a clean stop");
}

/// Scripts (and the UI's end-to-end tests) start using the stack as soon as the running line
/// appears, so by then the gateway already reports SERVING (its upstreams are up), with no
/// waiting on the client's side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_is_serving_when_the_running_line_is_printed() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let dir = tempfile::tempdir().unwrap();
    let parley = Parley::start(dir.path());
    let status = HealthClient::new(channel(&parley.url).await)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
}

/// `--access-token-refresh-ms` reaches every service's verifier: a logged-out session is
/// refused within a few of its intervals, far sooner than the 5 s default would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_token_is_refused_within_the_refresh_interval() {
    let dir = tempfile::tempdir().unwrap();
    let parley = Parley::start_with(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--access-token-refresh-ms", "100"],
    );
    let mut users = users(&parley.url).await;
    let signed_up = users
        .register(user::RegisterRequest {
            username: "noor".into(),
            password: "a long enough password".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let sessions = SessionServiceClient::new(channel(&parley.url).await);
    let list = || {
        let mut sessions = sessions.clone();
        let request = with_token(chat::ListSessionsRequest::default(), &signed_up.access_token);
        async move { sessions.list_sessions(request).await.map(|_| ()) }
    };
    list().await.unwrap();
    users
        .logout(user::LogoutRequest {
            refresh_token: signed_up.refresh_token.clone(),
        })
        .await
        .unwrap();
    let logged_out = std::time::Instant::now();
    parley_testkit::wait::eventually("the logged-out token refused", Duration::from_secs(1), || async {
        match list().await {
            Err(status) if status.code() == tonic::Code::Unauthenticated => Some(()),
            _ => None,
        }
    })
    .await;
    println!("logged-out token refused {:?} after Logout", logged_out.elapsed());
}

/// A plain HTTP/1.1 GET: (status, headers in lower case, body).
async fn http_get(url: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Without `--web-dir` the binary serves the UI it was built with (`make test` builds the UI
/// first): `index.html` and a precompressed asset, with nothing read from disk at run time. A
/// binary built before the UI says so, at start-up and in the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_ui_compiled_in_without_a_web_dir() {
    let dir = tempfile::tempdir().unwrap();
    // Started elsewhere than the repository, so a ./web/dist could not be what it serves.
    let parley = Parley::start_with_env(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/dist");
    if !parley::embedded_ui().is_built() {
        let (status, _, body) = http_get(&parley.url, "/", &[]).await;
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&body).contains("not built yet"));
        let output = parley.output().join("\n");
        assert!(output.contains("built without the web UI"), "{output}");
        assert!(
            !dist.join("index.html").exists(),
            "web/dist is built but the binary has no UI: cargo did not rebuild it"
        );
        println!("this build has no UI (run `make web-build` first to test the embedded one)");
        return;
    }
    let (status, headers, body) = http_get(&parley.url, "/", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read(dist.join("index.html")).unwrap());
    assert!(header_of(&headers, "content-type").unwrap().starts_with("text/html"));
    assert!(header_of(&headers, "etag").is_some(), "{headers:?}");

    // A hashed asset with its brotli and gzip copies, as the build writes them.
    let asset = std::fs::read_dir(dist.join("assets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(".js") && dist.join("assets").join(format!("{name}.br")).exists())
        .expect("the build has no precompressed script");
    let path = format!("/assets/{asset}");
    for (accept, extension, encoding) in [
        ("br", ".br", Some("br")),
        ("gzip", ".gz", Some("gzip")),
        ("identity", "", None),
    ] {
        let (status, headers, body) = http_get(&parley.url, &path, &[("Accept-Encoding", accept)]).await;
        assert_eq!(status, 200, "{accept}");
        assert_eq!(header_of(&headers, "content-encoding"), encoding, "{accept}");
        assert_eq!(header_of(&headers, "content-type"), Some("text/javascript"), "{accept}");
        assert_eq!(
            body,
            std::fs::read(dist.join("assets").join(format!("{asset}{extension}"))).unwrap(),
            "{accept}"
        );
    }
    let output = parley.output().join("\n");
    assert!(output.contains("serving the embedded web UI"), "{output}");
}

/// With `PARLEY_LOG_FORMAT=json` each access-log line is one JSON object; health checks (what
/// probes call every few seconds) are logged at DEBUG, so at the default INFO they are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_logged_as_json_and_health_checks_only_at_debug() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let dir = tempfile::tempdir().unwrap();
    let parley = Parley::start_with_env(
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[("PARLEY_LOG_FORMAT", "json")],
    );
    let mut health = HealthClient::new(channel(&parley.url).await);
    for _ in 0..3 {
        health
            .check(HealthCheckRequest { service: String::new() })
            .await
            .unwrap();
    }
    register(&parley.url, "json").await;
    let access_lines = || -> Vec<serde_json::Value> {
        parley
            .output()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|entry| entry["target"] == "gateway::access")
            .collect()
    };
    parley_testkit::wait::until("the access line of Register", Duration::from_secs(10), || {
        let found = access_lines()
            .iter()
            .any(|entry| entry["fields"]["method"] == "/parley.user.v1.UserService/Register");
        async move { found }
    })
    .await;
    let lines = access_lines();
    let register = lines
        .iter()
        .find(|entry| entry["fields"]["method"] == "/parley.user.v1.UserService/Register")
        .unwrap();
    assert_eq!(register["level"], "INFO", "{register}");
    assert_eq!(register["fields"]["code"], "Ok", "{register}");
    assert!(register["fields"]["duration_ms"].is_string(), "{register}");
    assert!(
        lines.iter().all(|entry| !entry["fields"]["method"]
            .as_str()
            .unwrap_or_default()
            .starts_with("/grpc.health.v1.")),
        "a health check was logged at INFO: {lines:#?}"
    );
    // Every line is JSON, not only the access log (the running line aside).
    let output = parley.output();
    assert!(
        output
            .iter()
            .filter(|line| !line.starts_with(READY_PREFIX))
            .all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok()),
        "{output:#?}"
    );
}

/// Private networks are allowed when parley listens on loopback and refused when it listens on
/// every address, unless the operator says otherwise; where they are allowed on a wider
/// listener, what a provider there says is not passed on (the HTTP status is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_networks_follow_the_listener_unless_set() {
    let fake = FakeOpenAi::start().await;
    let cases: [(&[&str], bool, bool); 4] = [
        (&["--listen", "127.0.0.1:0"], true, true),
        (&["--listen", "0.0.0.0:0"], false, false),
        (&["--listen", "0.0.0.0:0", "--allow-private-networks"], true, false),
        (
            &["--listen", "127.0.0.1:0", "--allow-private-networks=false"],
            false,
            true,
        ),
    ];
    for (args, allowed, echoed) in cases {
        let dir = tempfile::tempdir().unwrap();
        let parley = Parley::start_with(dir.path(), args);
        let token = register(&parley.url, "operator").await;
        let list_models = |api_key: String| {
            let url = parley.url.clone();
            let token = token.clone();
            let base_url = fake.base_url();
            async move {
                ApiConfigServiceClient::new(channel(&url).await)
                    .list_models(with_token(
                        chat::ListModelsRequest {
                            target: Some(chat::list_models_request::Target::Settings(chat::ProviderSettings {
                                base_url,
                                api_key,
                                model: "fake-model".into(),
                            })),
                        },
                        &token,
                    ))
                    .await
            }
        };
        let listed = list_models(fake.api_key()).await;
        let wrong_key = list_models("sk-wrong-key-1234".into()).await.unwrap_err();
        if !allowed {
            let status = listed.unwrap_err();
            assert_eq!(status.code(), tonic::Code::PermissionDenied, "{args:?}: {status:?}");
            assert!(status.message().contains("private networks"), "{args:?}: {status:?}");
            assert_eq!(wrong_key.code(), tonic::Code::PermissionDenied, "{args:?}");
            continue;
        }
        let ids = listed.unwrap().into_inner().model_ids;
        assert!(ids.contains(&"fake-model".to_string()), "{args:?}: {ids:?}");
        assert_eq!(
            wrong_key.code(),
            tonic::Code::FailedPrecondition,
            "{args:?}: {wrong_key:?}"
        );
        let message = wrong_key.message();
        assert_eq!(
            message.contains("Incorrect API key provided"),
            echoed,
            "{args:?}: {message}"
        );
        if !echoed {
            assert!(message.contains("HTTP 401"), "{args:?}: {message}");
        }
    }
}

fn failing_start(args: &[&str], data_dir: &Path) -> String {
    let output = Command::new(BINARY)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--web-dir", "/nonexistent/web/dist"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "parley should have refused to start");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains(READY_PREFIX),
        "it said it was running before it failed:\n{stdout}"
    );
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

    let line = failing_start(&["--listen", "127.0.0.1:0", "--unary-timeout-secs", "0"], dir.path());
    assert!(line.contains("--unary-timeout-secs"), "{line}");
}

#[test]
fn a_corrupt_database_fails_the_start_before_the_running_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("chat-service.db"),
        "this is not a SQLite database, not even close ".repeat(200),
    )
    .unwrap();
    let line = failing_start(&["--listen", "127.0.0.1:0"], dir.path());
    // The service and the cause, not a pool timeout.
    assert!(
        line.contains("chat-service") && line.contains("file is not a database"),
        "{line}"
    );
}
