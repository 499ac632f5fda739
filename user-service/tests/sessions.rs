//! Sessions (refresh-token families): the grace for a lost answer, races between rotation
//! and reuse, the absolute lifetime, keeping one session across a password change, and
//! signing-key rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use parley_proto::user::v1 as pb;
use parley_service_kit::access_token::{TokenVerifier, UserServiceKeySource};
use parley_service_kit::database::now_millis;

fn code(result: &Result<pb::RefreshTokenResponse, tonic::Status>) -> tonic::Code {
    result.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok)
}

// A tab closed or reloaded mid-refresh: the browser still holds the previous token. Within
// the grace it gets a new one and nobody is signed out; past the grace, or once a newer
// token was used, the old one is reuse and ends the session.
parley_testkit::on_every_backend!(
    a_lost_refresh_answer_can_be_retried_within_the_grace,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let db = server.database().await;
        let first = register(&mut client, "gina", "gina password", None).await;
        let _lost = refresh(&mut client, &first.refresh_token).await.unwrap();
        let retried = refresh(&mut client, &first.refresh_token).await.unwrap();
        let next = refresh(&mut client, &retried.refresh_token).await.unwrap();
        client
            .get_me(authed(pb::GetMeRequest {}, &next.access_token))
            .await
            .unwrap();
        assert_eq!(count_rows(&db, "refresh_token_families").await, 1);

        // `first` is two rotations old now: reuse, even within the grace.
        assert_eq!(
            refresh(&mut client, &first.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            refresh(&mut client, &next.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated,
            "the reuse revoked the session"
        );

        // Past the grace, even the immediately previous token is reuse.
        let other = login(&mut client, "gina", "gina password").await.unwrap();
        let rotated = refresh(&mut client, &other.refresh_token).await.unwrap();
        age_rotations(&db).await;
        assert_eq!(
            refresh(&mut client, &other.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            refresh(&mut client, &rotated.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        server.stop().await;
    }
);

// Two tabs refreshing with the same cookie at once: every one gets a token, the session
// survives, and each token it handed out goes on working.
parley_testkit::on_every_backend!(
    concurrent_refreshes_of_one_token_keep_the_session,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let hana = register(&mut client, "hana", "hana password", None).await;
        let refreshes: Vec<_> = (0..4)
            .map(|_| {
                let mut client = client.clone();
                let token = hana.refresh_token.clone();
                tokio::spawn(async move { refresh(&mut client, &token).await })
            })
            .collect();
        let mut tokens = Vec::new();
        for r in refreshes {
            tokens.push(r.await.unwrap().unwrap().refresh_token);
        }
        for token in &tokens {
            refresh(&mut client, token).await.unwrap();
        }
        server.stop().await;
    }
);

// A stale token (past its grace) presented while its successor rotates: whichever runs
// first, the session ends and no token handed out survives it.
parley_testkit::on_every_backend!(
    a_reuse_racing_a_rotation_leaves_no_live_token,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let db = server.database().await;
        register(&mut client, "ivo", "ivo password", None).await;
        for round in 0..8 {
            let stale = login(&mut client, "ivo", "ivo password").await.unwrap();
            let current = refresh(&mut client, &stale.refresh_token).await.unwrap();
            age_rotations(&db).await;
            let (legit, reuse) = {
                let (mut a, mut b) = (client.clone(), client.clone());
                let (current, stale) = (current.refresh_token.clone(), stale.refresh_token.clone());
                tokio::join!(
                    tokio::spawn(async move { refresh(&mut a, &current).await }),
                    tokio::spawn(async move { refresh(&mut b, &stale).await })
                )
            };
            let (legit, reuse) = (legit.unwrap(), reuse.unwrap());
            assert_eq!(code(&reuse), tonic::Code::Unauthenticated, "round {round}");
            if let Ok(issued) = legit {
                assert_eq!(
                    refresh(&mut client, &issued.refresh_token).await.unwrap_err().code(),
                    tonic::Code::Unauthenticated,
                    "round {round}: a token issued beside the reuse still works"
                );
            }
        }
        server.stop().await;
    }
);

// However often it is refreshed, a sign-in ends when its family does: a new token never
// outlives it, and the cookie says so.
parley_testkit::on_every_backend!(a_session_never_outlives_its_lifetime, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let db = server.database().await;
    let jan = register(&mut client, "jan", "jan password", None).await;
    let (family_expiry,): (i64,) = sqlx::query_as("SELECT expires_at - created_at FROM refresh_token_families")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(family_expiry, 90 * 24 * 60 * 60 * 1000);
    let ends_at = now_millis() + 60 * 60 * 1000;
    sqlx::query("UPDATE refresh_token_families SET expires_at = $1")
        .bind(ends_at)
        .execute(&db)
        .await
        .unwrap();
    let response = client
        .refresh_token(pb::RefreshTokenRequest {
            refresh_token: jan.refresh_token.clone(),
        })
        .await
        .unwrap();
    let cookie = response
        .metadata()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let max_age: u64 = cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&max_age), "{cookie}");
    let hash = user_service::verification::token_hash(&response.get_ref().refresh_token);
    let (expires_at,): (i64,) = sqlx::query_as("SELECT expires_at FROM refresh_tokens WHERE token_hash = $1")
        .bind(hash)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(expires_at, ends_at);
    server.stop().await;
});

// gRPC clients name the session to keep when they change the password; a token that is not
// a live one of the account is refused and nothing changes.
parley_testkit::on_every_backend!(change_password_keeps_the_named_session, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let kai = register(&mut client, "kai", "kai password", None).await;
    let other_device = login(&mut client, "kai", "kai password").await.unwrap();
    let someone_else = register(&mut client, "lou", "lou password", None).await;
    let change_client = client.clone();
    let change = |keep: Option<String>, new_password: &str| {
        let mut client = change_client.clone();
        let request = authed(
            pb::ChangePasswordRequest {
                old_password: "kai password".into(),
                new_password: new_password.into(),
                keep_refresh_token: keep,
            },
            &kai.access_token,
        );
        async move { client.change_password(request).await }
    };
    for bad in ["", "not-a-token", someone_else.refresh_token.as_str()] {
        assert_invalid(
            change(Some(bad.to_string()), "kai new password").await,
            "keep_refresh_token",
        );
    }
    // Nothing changed: the old password works and both sessions live.
    let still = login(&mut client, "kai", "kai password").await.unwrap();
    let kept = refresh(&mut client, &kai.refresh_token).await.unwrap();

    change(Some(kept.refresh_token.clone()), "kai new password")
        .await
        .unwrap();
    refresh(&mut client, &kept.refresh_token).await.unwrap();
    for ended in [&other_device.refresh_token, &still.refresh_token] {
        assert_eq!(
            refresh(&mut client, ended).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }
    server.stop().await;
});

// Rotating the signing key signs nobody out: tokens of the retired key still verify (at
// user-service and at any service that fetched the keys), new tokens use the new key, and
// GetPublicKeys publishes both.
parley_testkit::on_every_backend!(
    the_signing_key_rotates_without_signing_anyone_out,
    |db_url: String| async move {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(&db_url, dir.path().to_path_buf()).await;
        let mut client = server.client().await;
        let before = register(&mut client, "max", "max password", None).await;
        server.stop().await;

        let key = user_service::token_signer::key_path(dir.path());
        let previous = user_service::token_signer::previous_keys_dir(dir.path());
        let rotation = user_service::token_signer::rotate(&key, &previous).unwrap();

        let server = TestServer::start(&db_url, dir.path().to_path_buf()).await;
        let mut client = server.client().await;
        let keys = client
            .get_public_keys(pb::GetPublicKeysRequest {})
            .await
            .unwrap()
            .into_inner()
            .keys;
        let ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
        assert_eq!(ids, [rotation.new_key_id.as_str(), rotation.retired_key_id.as_str()]);
        client
            .get_me(authed(pb::GetMeRequest {}, &before.access_token))
            .await
            .unwrap();
        let after = login(&mut client, "max", "max password").await.unwrap();
        let kid = jsonwebtoken::decode_header(&after.access_token).unwrap().kid.unwrap();
        assert_eq!(kid, rotation.new_key_id);
        let verifier = TokenVerifier::with_source(Arc::new(UserServiceKeySource::new(server.channel().await)));
        for token in [&before.access_token, &after.access_token] {
            verifier.verify(token).await.unwrap();
        }
        // The refresh token from before the rotation goes on too.
        refresh(&mut client, &before.refresh_token).await.unwrap();
        server.stop().await;
    }
);
