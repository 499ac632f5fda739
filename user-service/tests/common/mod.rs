//! A real user-service on 127.0.0.1:0 for each test, with a recording mailer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use parley_proto::user::v1 as pb;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use tonic::transport::Channel;
use user_service::Config;
use user_service::test_support::RecordingMailer;

pub type Client = UserServiceClient<Channel>;

pub struct TestServer {
    pub address: std::net::SocketAddr,
    pub mailer: RecordingMailer,
    pub data_dir: PathBuf,
    pub db_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), user_service::Error>>>,
}

impl TestServer {
    pub async fn start(db_url: &str, data_dir: PathBuf) -> Self {
        let mailer = RecordingMailer::new();
        let mut config = Config::new(db_url, data_dir.clone());
        config.mailer = std::sync::Arc::new(mailer.clone());
        Self::start_with(config, mailer).await
    }

    pub async fn start_with(config: Config, mailer: RecordingMailer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let data_dir = config.data_dir.clone();
        let db_url = config.database_url.clone();
        let task = tokio::spawn(user_service::serve(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            mailer,
            data_dir,
            db_url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn client(&self) -> Client {
        UserServiceClient::new(self.channel().await)
    }

    pub async fn channel(&self) -> Channel {
        parley_testkit::wait::channel(self.address).await
    }

    /// Stops the server and waits until it has ended.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// The latest code mailed to `username` for `purpose`, waiting for delivery.
    pub async fn code(&self, username: &str, purpose: user_service::Purpose, mails_expected: usize) -> String {
        self.mailer
            .wait_for_mails(mails_expected, Duration::from_secs(10))
            .await;
        self.mailer
            .last_code(username, purpose)
            .unwrap_or_else(|| panic!("no {purpose:?} code was mailed to {username}"))
    }

    /// A direct database connection, to move time forward (expire codes, tokens, locks).
    pub async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.db_url).await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start(db_url: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(db_url, dir.path().to_path_buf()).await;
    (server, dir)
}

pub fn authed<T>(message: T, access_token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {access_token}").parse().unwrap());
    request
}

pub fn with_cookie<T>(message: T, cookie: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("cookie", cookie.parse().unwrap());
    request
}

pub async fn register(
    client: &mut Client,
    username: &str,
    password: &str,
    email: Option<&str>,
) -> pb::RegisterResponse {
    client
        .register(pb::RegisterRequest {
            username: username.into(),
            password: password.into(),
            email: email.map(Into::into),
            display_name: None,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("register {username}: {s:?}"))
        .into_inner()
}

pub async fn login(client: &mut Client, login: &str, password: &str) -> Result<pb::LoginResponse, tonic::Status> {
    client
        .login(pb::LoginRequest {
            login: login.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

pub async fn refresh(client: &mut Client, token: &str) -> Result<pb::RefreshTokenResponse, tonic::Status> {
    client
        .refresh_token(pb::RefreshTokenRequest {
            refresh_token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Verifies the account's email: an EMAIL_VERIFY code by username, read from the mailer.
pub async fn verify_email(server: &TestServer, client: &mut Client, username: &str, login: &str) {
    let mails_before = server.mailer.mails().len();
    client
        .send_verification_code(pb::SendVerificationCodeRequest {
            login: login.into(),
            purpose: pb::VerificationPurpose::EmailVerify as i32,
        })
        .await
        .unwrap();
    let code = server
        .code(username, user_service::Purpose::EmailVerify, mails_before + 1)
        .await;
    let valid = client
        .verify_code(pb::VerifyCodeRequest {
            login: login.into(),
            code,
            purpose: pb::VerificationPurpose::EmailVerify as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .valid;
    assert!(valid, "{username}'s email was not verified");
}

/// Asserts INVALID_ARGUMENT with a BadRequest violation for `field`.
pub fn assert_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("expected INVALID_ARGUMENT");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = parley_service_kit::grpc_status::field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, vec![field.to_string()], "{status:?}");
}

/// The whole account lifecycle from the issue, asserting each step. Answers every secret it
/// saw (passwords, tokens, codes) so callers can check none reached a log.
pub async fn run_lifecycle(server: &TestServer, username: &str) -> Vec<String> {
    use user_service::Purpose;
    let mut client = server.client().await;
    let mut secrets = Vec::new();
    let first_password = format!("first-pass-{username}");
    let second_password = format!("second-pass-{username}");
    let third_password = format!("third-pass-{username}");
    secrets.extend([first_password.clone(), second_password.clone(), third_password.clone()]);
    let email = format!("{username}@example.com");

    // register → login → me
    let registered = register(&mut client, username, &first_password, Some(&email)).await;
    secrets.extend([registered.access_token.clone(), registered.refresh_token.clone()]);
    let signed_in = login(&mut client, username, &first_password).await.unwrap();
    secrets.extend([signed_in.access_token.clone(), signed_in.refresh_token.clone()]);
    let access = signed_in.access_token.clone();
    let me = client
        .get_me(authed(pb::GetMeRequest {}, &access))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(me.username, username);
    assert!(me.last_login_at.is_some());

    // update profile
    let updated = client
        .update_profile(authed(
            pb::UpdateProfileRequest {
                display_name: Some("New Name".into()),
                avatar_url: Some("https://example.com/a.png".into()),
                ..Default::default()
            },
            &access,
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(updated.display_name, "New Name");
    assert_eq!(updated.avatar_url, "https://example.com/a.png");
    assert_eq!(updated.email, email);

    // change password → old refresh tokens dead
    client
        .change_password(authed(
            pb::ChangePasswordRequest {
                old_password: first_password.clone(),
                new_password: second_password.clone(),
                ..Default::default()
            },
            &access,
        ))
        .await
        .unwrap();
    for old in [&registered.refresh_token, &signed_in.refresh_token] {
        assert_eq!(
            refresh(&mut client, old).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }
    assert_eq!(
        login(&mut client, username, &first_password).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );

    // verify the email (an address names the account in a login only once verified)
    verify_email(server, &mut client, username, username).await;
    secrets.push(server.mailer.last_code(username, Purpose::EmailVerify).unwrap());

    // send code → verify → reset
    let mails_before = server.mailer.mails().len();
    let sent = client
        .send_verification_code(pb::SendVerificationCodeRequest {
            login: email.clone(),
            purpose: pb::VerificationPurpose::PasswordReset as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.expires_in, 600);
    let code = server.code(username, Purpose::PasswordReset, mails_before + 1).await;
    secrets.push(code.clone());
    let verified = client
        .verify_code(pb::VerifyCodeRequest {
            login: username.into(),
            code: code.clone(),
            purpose: pb::VerificationPurpose::PasswordReset as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verified.valid);
    client
        .reset_password(pb::ResetPasswordRequest {
            login: username.into(),
            code: code.clone(),
            new_password: third_password.clone(),
        })
        .await
        .unwrap();
    // The code was consumed.
    assert_invalid(
        client
            .reset_password(pb::ResetPasswordRequest {
                login: username.into(),
                code: code.clone(),
                new_password: "yet-another-password".into(),
            })
            .await,
        "code",
    );

    // login with the new password → logout → refresh fails
    assert_eq!(
        login(&mut client, username, &second_password).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let fresh = login(&mut client, username, &third_password).await.unwrap();
    secrets.extend([fresh.access_token.clone(), fresh.refresh_token.clone()]);
    client
        .logout(pb::LogoutRequest {
            refresh_token: fresh.refresh_token.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        refresh(&mut client, &fresh.refresh_token).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );

    // delete account
    let last = login(&mut client, username, &third_password).await.unwrap();
    secrets.extend([last.access_token.clone(), last.refresh_token.clone()]);
    client
        .delete_account(authed(
            pb::DeleteAccountRequest {
                password: third_password.clone(),
            },
            &last.access_token,
        ))
        .await
        .unwrap();
    assert_eq!(
        client
            .get_me(authed(pb::GetMeRequest {}, &last.access_token))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        login(&mut client, username, &third_password).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        refresh(&mut client, &last.refresh_token).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    secrets
}

/// Moves every rotation a minute into the past, beyond the grace in which the token it
/// replaced may be presented again: presenting that token now is reuse.
pub async fn age_rotations(db: &sqlx::AnyPool) {
    sqlx::query("UPDATE refresh_token_families SET rotated_at = rotated_at - 60000 WHERE rotated_at IS NOT NULL")
        .execute(db)
        .await
        .unwrap();
}

/// Rows in a table (to check deletes and that bad input changed nothing).
pub async fn count_rows(pool: &sqlx::AnyPool, table: &str) -> i64 {
    let row: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap();
    row.0
}
