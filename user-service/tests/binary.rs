//! The `user-service` binary: flags and env vars reach the library, startup errors are one line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

use parley_proto::user::v1 as pb;
use parley_proto::user::v1::user_service_client::UserServiceClient;

const BINARY: &str = env!("CARGO_BIN_EXE_user-service");

#[test]
fn a_bad_database_url_is_one_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--database-url", "mysql://nowhere/db"])
        .env("PARLEY_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("user-service:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("sqlite: or postgres:"), "{stderr}");
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn starts_from_env_vars_with_a_sqlite_file_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stdout.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _child = Running(
        Command::new(BINARY)
            .env("PARLEY_USER_LISTEN", format!("127.0.0.1:{port}"))
            .env("PARLEY_DATA_DIR", dir.path())
            .env_remove("PARLEY_USER_DATABASE_URL")
            .env_remove("PARLEY_SMTP_HOST")
            .env("RUST_LOG", "info")
            .env_remove("PARLEY_LOG_FORMAT")
            .stdout(Stdio::from(std::fs::File::create(&log_path).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut client =
        UserServiceClient::new(parley_testkit::wait::channel_to(&format!("http://127.0.0.1:{port}")).await);
    client
        .register(pb::RegisterRequest {
            username: "zoe".into(),
            password: "zoe password".into(),
            email: None,
            display_name: None,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(dir.path().join("user-service.db").exists());
    assert!(dir.path().join("user-service/signing-key").exists());

    // Without SMTP the code goes to the log, as `code=NNNNNN` next to the login: the way an
    // operator (and the web end-to-end test) reads it.
    client
        .send_verification_code(pb::SendVerificationCodeRequest {
            login: "zoe".into(),
            purpose: pb::VerificationPurpose::PasswordReset as i32,
        })
        .await
        .unwrap();
    let line = parley_testkit::wait::eventually("a verification code in the log", Duration::from_secs(10), || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let line = log
            .lines()
            .find(|l| l.contains("verification code"))
            .map(str::to_string);
        async move { line }
    })
    .await;
    // The operator was told once, at start-up, where codes go and how to send them by mail.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("log mailer in use")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("--smtp-host"),
        "{log}"
    );
    assert!(line.contains("login=zoe"), "{line}");
    let code = line.split("code=").nth(1).unwrap_or_default();
    let digits: String = code.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(digits.len(), 6, "{line}");
    let valid = client
        .verify_code(pb::VerifyCodeRequest {
            login: "zoe".into(),
            code: digits,
            purpose: pb::VerificationPurpose::PasswordReset as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .valid;
    assert!(valid);
}

#[test]
fn reads_every_variable_the_deployment_files_set() {
    parley_testkit::deploy_env::assert_binary_reads_all(BINARY, "user-service");
}
