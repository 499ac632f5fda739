//! The background cleanup: what it deletes, what it keeps, and that it runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use parley_proto::user::v1 as pb;
use parley_service_kit::database::now_millis;
use user_service::Config;

async fn set_expiry(db: &sqlx::AnyPool, table: &str, column: &str, id: &str, at: i64) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET expires_at = $1 WHERE {column} = $2"
    )))
    .bind(at)
    .bind(id)
    .execute(db)
    .await
    .unwrap();
}

async fn family_of(db: &sqlx::AnyPool, refresh_token: &str) -> String {
    let (family,): (String,) = sqlx::query_as("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
        .bind(user_service::verification::token_hash(refresh_token))
        .fetch_one(db)
        .await
        .unwrap();
    family
}

parley_testkit::on_every_backend!(
    sweep_removes_dead_codes_and_sessions_only,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let db = server.database().await;
        // A session that rotated once: its retired token is kept (presenting it is reuse).
        let xavier = register(&mut client, "xavier", "xavier password", None).await;
        let rotated = refresh(&mut client, &xavier.refresh_token).await.unwrap();
        // A session whose only token expired (unused for 30 days).
        let idle = login(&mut client, "xavier", "xavier password").await.unwrap();
        set_expiry(
            &db,
            "refresh_tokens",
            "token_hash",
            &user_service::verification::token_hash(&idle.refresh_token),
            now_millis() - 1,
        )
        .await;
        // A signed-out session.
        let logged_out = login(&mut client, "xavier", "xavier password").await.unwrap();
        client
            .logout(pb::LogoutRequest {
                refresh_token: logged_out.refresh_token.clone(),
            })
            .await
            .unwrap();
        // A session past its absolute lifetime, however fresh its token.
        let old = login(&mut client, "xavier", "xavier password").await.unwrap();
        let old_family = family_of(&db, &old.refresh_token).await;
        set_expiry(&db, "refresh_token_families", "id", &old_family, now_millis() - 1).await;
        client
            .send_verification_code(pb::SendVerificationCodeRequest {
                login: "xavier".into(),
                purpose: pb::VerificationPurpose::PasswordReset as i32,
            })
            .await
            .unwrap();
        server.mailer.wait_for_mails(1, Duration::from_secs(10)).await;
        sqlx::query("UPDATE verification_codes SET expires_at = $1")
            .bind(now_millis() - 1)
            .execute(&db)
            .await
            .unwrap();
        assert_eq!(count_rows(&db, "refresh_tokens").await, 5);
        assert_eq!(count_rows(&db, "refresh_token_families").await, 4);
        // The over-age session is refused before any sweep.
        assert_eq!(
            refresh(&mut client, &old.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );

        let database = parley_service_kit::database::connect(&db_url, &user_service::MIGRATIONS)
            .await
            .unwrap();
        let store = user_service::store::AccountStore::new(&database);
        let removed = user_service::cleanup::sweep(&store).await.unwrap();
        assert_eq!(removed.codes, 1);
        assert_eq!(removed.refresh_tokens, 3, "{removed:?}");
        assert_eq!(removed.refresh_token_families, 3, "{removed:?}");
        assert_eq!(count_rows(&db, "refresh_tokens").await, 2);
        assert_eq!(count_rows(&db, "verification_codes").await, 0);

        // The kept retired token still trips reuse detection once its grace is over.
        age_rotations(&db).await;
        assert_eq!(
            refresh(&mut client, &xavier.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            refresh(&mut client, &rotated.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated,
            "the reuse revoked the family"
        );
        // Now the whole family is dead and goes.
        let removed = user_service::cleanup::sweep(&store).await.unwrap();
        assert_eq!(removed.refresh_tokens, 2);
        assert_eq!(removed.refresh_token_families, 1);
        assert_eq!(count_rows(&db, "refresh_tokens").await, 0);
        assert_eq!(count_rows(&db, "refresh_token_families").await, 0);

        // The revocations (the logout, the reuse) outlive their families until every access
        // token they are about has expired.
        assert_eq!(removed.token_revocations, 0);
        assert_eq!(count_rows(&db, "token_revocations").await, 2);
        let retention = user_service::service::REVOCATION_RETENTION.as_millis() as i64;
        sqlx::query("UPDATE token_revocations SET revoked_at = $1")
            .bind(now_millis() - retention + 60_000)
            .execute(&db)
            .await
            .unwrap();
        assert_eq!(user_service::cleanup::sweep(&store).await.unwrap().token_revocations, 0);
        sqlx::query("UPDATE token_revocations SET revoked_at = $1")
            .bind(now_millis() - retention - 1)
            .execute(&db)
            .await
            .unwrap();
        assert_eq!(user_service::cleanup::sweep(&store).await.unwrap().token_revocations, 2);
        assert_eq!(count_rows(&db, "token_revocations").await, 0);
        server.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_runs_periodically_and_stops_with_the_server() {
    let test_db = parley_testkit::test_database::TestDatabase::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let mailer = user_service::test_support::RecordingMailer::new();
    let mut config = Config::new(test_db.url.clone(), dir.path());
    config.mailer = Arc::new(mailer.clone());
    config.cleanup_interval = Duration::from_millis(50);
    let server = TestServer::start_with(config, mailer).await;
    let mut client = server.client().await;
    let yara = register(&mut client, "yara", "yara password", None).await;
    let db = server.database().await;
    sqlx::query("UPDATE refresh_tokens SET expires_at = 0")
        .execute(&db)
        .await
        .unwrap();
    let mut remaining = 1;
    for _ in 0..400 {
        remaining = count_rows(&db, "refresh_tokens").await;
        if remaining == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(remaining, 0, "the cleanup task never removed the expired token");
    assert_eq!(
        refresh(&mut client, &yara.refresh_token).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    // `stop` waits for serve() to return, which waits for the cleanup task.
    server.stop().await;
}
