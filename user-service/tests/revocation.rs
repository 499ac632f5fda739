//! Revoking access tokens before they expire: a logout, a password change and a deleted
//! account are refused by a verifier in another service within its refresh interval (the
//! time it takes is measured and printed); account ids are never reused; the migration gives
//! existing accounts one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use parley_proto::user::v1 as pb;
use parley_service_kit::access_token::{TokenError, TokenVerifier, UserServiceKeySource};
use parley_testkit::wait::eventually;
use user_service::Config;

/// How often the verifiers in these tests fetch revocations (5 s in production).
const REFRESH: Duration = Duration::from_millis(500);
/// A revoked token must be refused within this: the interval, one fetch, and slack for a
/// loaded machine.
const REFUSED_WITHIN: Duration = Duration::from_millis(3 * 500);

async fn start_refreshing(db_url: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(db_url, dir.path().to_path_buf());
    config.revocation_refresh_interval = REFRESH;
    let mailer = user_service::test_support::RecordingMailer::new();
    config.mailer = Arc::new(mailer.clone());
    (TestServer::start_with(config, mailer).await, dir)
}

/// Waits until `verifier` refuses `token` as revoked; answers how long that took after
/// `since` (when the revoking call returned), and prints it.
async fn refused_after(what: &str, verifier: &TokenVerifier, token: &str, since: Instant) -> Duration {
    eventually(&format!("{what}: the token refused"), REFUSED_WITHIN, || async {
        match verifier.verify(token).await {
            Err(TokenError::Revoked) => Some(()),
            Ok(_) => None,
            Err(other) => panic!("{what}: refused for another reason: {other}"),
        }
    })
    .await;
    let took = since.elapsed();
    println!("{what}: access token refused by another service {took:?} after the call (refresh interval {REFRESH:?})");
    took
}

async fn accepted(verifier: &TokenVerifier, token: &str) -> bool {
    verifier.verify(token).await.is_ok()
}

parley_testkit::on_every_backend!(
    logout_password_change_and_deletion_revoke_access_tokens_promptly,
    |db_url: String| async move {
        let (server, _dir) = start_refreshing(&db_url).await;
        let mut client = server.client().await;
        // Another service's verifier, as chat-service and the gateway build it.
        let verifier = TokenVerifier::with_source_refreshed_every(
            Arc::new(UserServiceKeySource::new(server.channel().await)),
            REFRESH,
        );
        let laptop = register(&mut client, "rosa", "rosa password", None).await;
        let phone = login(&mut client, "rosa", "rosa password").await.unwrap();
        let tablet = login(&mut client, "rosa", "rosa password").await.unwrap();
        for token in [&laptop.access_token, &phone.access_token, &tablet.access_token] {
            assert!(accepted(&verifier, token).await);
        }

        // Logout ends that sign-in's access token too, and only that one.
        client
            .logout(pb::LogoutRequest {
                refresh_token: laptop.refresh_token.clone(),
            })
            .await
            .unwrap();
        let since = Instant::now();
        refused_after("Logout", &verifier, &laptop.access_token, since).await;
        assert!(accepted(&verifier, &phone.access_token).await);
        // user-service's own check refuses it as well.
        eventually("user-service refusing the logged-out token", REFUSED_WITHIN, || {
            let mut client = client.clone();
            let token = laptop.access_token.clone();
            async move {
                let answer = client.get_me(authed(pb::GetMeRequest {}, &token)).await;
                (answer.err()?.code() == tonic::Code::Unauthenticated).then_some(())
            }
        })
        .await;

        // A password change signs out every other device, access tokens included.
        client
            .change_password(authed(
                pb::ChangePasswordRequest {
                    old_password: "rosa password".into(),
                    new_password: "rosa new password".into(),
                    keep_refresh_token: Some(phone.refresh_token.clone()),
                },
                &phone.access_token,
            ))
            .await
            .unwrap();
        let since = Instant::now();
        refused_after("ChangePassword", &verifier, &tablet.access_token, since).await;
        assert!(accepted(&verifier, &phone.access_token).await);

        // A deleted account's tokens go, and the revocation names only the account's UUID.
        client
            .delete_account(authed(
                pb::DeleteAccountRequest {
                    password: "rosa new password".into(),
                },
                &phone.access_token,
            ))
            .await
            .unwrap();
        let since = Instant::now();
        refused_after("DeleteAccount", &verifier, &phone.access_token, since).await;
        let published = client
            .get_public_keys(pb::GetPublicKeysRequest {})
            .await
            .unwrap()
            .into_inner();
        let accounts: Vec<_> = published
            .revocations
            .iter()
            .filter_map(|r| match &r.subject {
                Some(pb::revocation::Subject::AccountId(id)) => Some(id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(accounts.len(), 1);
        assert_eq!(uuid::Uuid::parse_str(&accounts[0]).unwrap().get_version_num(), 4);
        assert_eq!(
            published.revocations.len(),
            3,
            "the laptop's and the tablet's sign-ins and the account: {:?}",
            published.revocations
        );
        server.stop().await;
    }
);

// A password reset ends every sign-in; a reset of one account leaves others alone.
parley_testkit::on_every_backend!(
    a_password_reset_revokes_every_access_token,
    |db_url: String| async move {
        let (server, _dir) = start_refreshing(&db_url).await;
        let mut client = server.client().await;
        let verifier = TokenVerifier::with_source_refreshed_every(
            Arc::new(UserServiceKeySource::new(server.channel().await)),
            REFRESH,
        );
        let first = register(&mut client, "sami", "sami password", None).await;
        let second = login(&mut client, "sami", "sami password").await.unwrap();
        let other = register(&mut client, "tove", "tove password", None).await;
        client
            .send_verification_code(pb::SendVerificationCodeRequest {
                login: "sami".into(),
                purpose: pb::VerificationPurpose::PasswordReset.into(),
            })
            .await
            .unwrap();
        let code = server.code("sami", user_service::Purpose::PasswordReset, 1).await;
        client
            .reset_password(pb::ResetPasswordRequest {
                login: "sami".into(),
                code,
                new_password: "sami new password".into(),
            })
            .await
            .unwrap();
        let since = Instant::now();
        refused_after("ResetPassword", &verifier, &first.access_token, since).await;
        refused_after("ResetPassword (second sign-in)", &verifier, &second.access_token, since).await;
        assert!(accepted(&verifier, &other.access_token).await);
        // Signing in again works at once: the new sign-in is not revoked.
        let again = login(&mut client, "sami", "sami new password").await.unwrap();
        assert!(accepted(&verifier, &again.access_token).await);
        server.stop().await;
    }
);

// User ids start again at 1 in a new database; account ids never repeat, so data keyed by
// them cannot pass to the new account.
parley_testkit::on_every_backend!(account_ids_are_never_reused, |db_url: String| async move {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&db_url, dir.path().to_path_buf()).await;
    let mut client = server.client().await;
    let verifier = TokenVerifier::with_source(Arc::new(UserServiceKeySource::new(server.channel().await)));
    let ines = register(&mut client, "ines", "ines password", None).await;
    let first = verifier.verify(&ines.access_token).await.unwrap();
    let jon = register(&mut client, "jon", "jon password", None).await;
    let jon = verifier.verify(&jon.access_token).await.unwrap();
    assert_ne!(first.account_id, jon.account_id);
    assert_eq!(uuid::Uuid::parse_str(&first.account_id).unwrap().get_version_num(), 4);
    // The sign-in's id is the token's session.
    let again = login(&mut client, "ines", "ines password").await.unwrap();
    let again = verifier.verify(&again.access_token).await.unwrap();
    assert_eq!(again.account_id, first.account_id);
    assert_ne!(again.session_id, first.session_id);
    server.stop().await;

    // The database starts over (same signing key): the same user id, another account id.
    let fresh = if db_url.starts_with("sqlite") {
        parley_testkit::test_database::TestDatabase::sqlite()
    } else {
        parley_testkit::test_database::TestDatabase::postgres().await.unwrap()
    };
    let server = TestServer::start(&fresh.url, dir.path().to_path_buf()).await;
    let mut client = server.client().await;
    let verifier = TokenVerifier::with_source(Arc::new(UserServiceKeySource::new(server.channel().await)));
    let newcomer = register(&mut client, "kim", "kim password", None).await;
    let newcomer = verifier.verify(&newcomer.access_token).await.unwrap();
    assert_eq!(newcomer.user_id, first.user_id);
    assert_ne!(newcomer.account_id, first.account_id);
    server.stop().await;
});

// Accounts that existed before migration 0004 get distinct account ids.
parley_testkit::on_every_backend!(the_migration_gives_existing_accounts_ids, |db_url: String| async move {
    use parley_service_kit::database::{self, Migrations};
    let before = |migrator: &sqlx::migrate::Migrator| -> &'static sqlx::migrate::Migrator {
        Box::leak(Box::new(sqlx::migrate::Migrator::with_migrations(
            migrator.iter().filter(|m| m.version < 4).cloned().collect(),
        )))
    };
    let old = Migrations {
        sqlite: before(user_service::MIGRATIONS.sqlite),
        postgres: before(user_service::MIGRATIONS.postgres),
    };
    let db = database::connect(&db_url, &old).await.unwrap();
    for name in ["old1", "old2"] {
        sqlx::query(
            "INSERT INTO users (username, username_normalized, password_hash, created_at, updated_at) \
             VALUES ($1, $1, 'x', 0, 0)",
        )
        .bind(name)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    db.pool.close().await;
    let db = database::connect(&db_url, &user_service::MIGRATIONS).await.unwrap();
    let ids: Vec<(String,)> = sqlx::query_as("SELECT account_id FROM users ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0].0, ids[1].0);
    for (id,) in &ids {
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4, "{id}");
    }
    db.pool.close().await;
});

// Disabling an account (the admin path calls `revoke_account`): every token issued so far is
// refused and every sign-in ends; a sign-in after that works again.
parley_testkit::on_every_backend!(
    revoking_an_account_refuses_its_earlier_tokens,
    |db_url: String| async move {
        let (server, _dir) = start_refreshing(&db_url).await;
        let mut client = server.client().await;
        let verifier = TokenVerifier::with_source_refreshed_every(
            Arc::new(UserServiceKeySource::new(server.channel().await)),
            REFRESH,
        );
        let yuki = register(&mut client, "yuki", "yuki password", None).await;
        let zoe = register(&mut client, "zoe", "zoe password", None).await;
        let database = parley_service_kit::database::connect(&db_url, &user_service::MIGRATIONS)
            .await
            .unwrap();
        let store = user_service::store::AccountStore::new(&database);
        store
            .revoke_account(
                yuki.user.as_ref().unwrap().id,
                parley_service_kit::database::now_millis(),
            )
            .await
            .unwrap();
        let since = Instant::now();
        refused_after("revoke_account", &verifier, &yuki.access_token, since).await;
        assert!(accepted(&verifier, &zoe.access_token).await);
        assert_eq!(
            refresh(&mut client, &yuki.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        // Tokens carry whole seconds: a sign-in from the next second on is after the revocation.
        let now = parley_service_kit::database::now_millis();
        tokio::time::sleep(Duration::from_millis((1000 - now % 1000) as u64 + 10)).await;
        let again = login(&mut client, "yuki", "yuki password").await.unwrap();
        assert!(accepted(&verifier, &again.access_token).await);
        server.stop().await;
    }
);
