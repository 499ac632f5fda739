//! Access tokens, refresh-token rotation, browser cookies, keys, reflection and health.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parley_proto::user::v1 as pb;
use parley_service_kit::access_token::{self, AccessClaims, TokenVerifier, UserServiceKeySource};
use user_service::Config;

parley_testkit::on_every_backend!(
    refresh_rotates_and_reuse_revokes_the_family,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let first = register(&mut client, "frank", "frank password", None).await;
        let other_device = login(&mut client, "frank", "frank password").await.unwrap();

        let second = refresh(&mut client, &first.refresh_token).await.unwrap();
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_eq!(second.user.unwrap().username, "frank");
        client
            .get_me(authed(pb::GetMeRequest {}, &second.access_token))
            .await
            .unwrap();

        // Past the grace for a lost answer, the old token stops working, and using it again
        // revokes the token that replaced it.
        age_rotations(&server.database().await).await;
        let status = refresh(&mut client, &first.refresh_token).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let status = refresh(&mut client, &second.refresh_token).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);

        // Another device's session is its own family and survives.
        let other = refresh(&mut client, &other_device.refresh_token).await.unwrap();
        refresh(&mut client, &other.refresh_token).await.unwrap();

        // Garbage and empty tokens.
        assert_eq!(
            refresh(&mut client, "not-a-token").await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_invalid(refresh(&mut client, "").await, "refresh_token");
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(
    refresh_tokens_are_stored_hashed_and_expire,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let grace = register(&mut client, "grace", "grace password", None).await;
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&grace.refresh_token)
                .unwrap()
                .len(),
            32,
            "256-bit refresh tokens"
        );
        let db = server.database().await;
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT token_hash, expires_at, created_at FROM refresh_tokens")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(rows.len(), 1);
        let (hash, expires_at, created_at) = &rows[0];
        assert_ne!(hash, &grace.refresh_token);
        assert!(!hash.contains(&grace.refresh_token));
        assert_eq!(expires_at - created_at, 30 * 24 * 60 * 60 * 1000);

        sqlx::query("UPDATE refresh_tokens SET expires_at = $1")
            .bind(created_at - 1)
            .execute(&db)
            .await
            .unwrap();
        assert_eq!(
            refresh(&mut client, &grace.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(logout_is_idempotent, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let heidi = register(&mut client, "heidi", "heidi password", None).await;
    for token in [
        heidi.refresh_token.as_str(),
        heidi.refresh_token.as_str(),
        "unknown",
        "",
    ] {
        client
            .logout(pb::LogoutRequest {
                refresh_token: token.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("logout {token:?}: {s:?}"));
    }
    assert_eq!(
        refresh(&mut client, &heidi.refresh_token).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    server.stop().await;
});

fn set_cookie<T>(response: &tonic::Response<T>) -> String {
    response
        .metadata()
        .get("set-cookie")
        .expect("a set-cookie header")
        .to_str()
        .unwrap()
        .to_string()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("parley_refresh="))
        .unwrap()
        .to_string()
}

parley_testkit::on_every_backend!(
    browsers_get_the_refresh_token_as_a_cookie,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let response = client
            .register(pb::RegisterRequest {
                username: "ivan".into(),
                password: "ivan password".into(),
                email: None,
                display_name: None,
                ..Default::default()
            })
            .await
            .unwrap();
        let cookie = set_cookie(&response);
        let registered = response.into_inner();
        assert_eq!(
            cookie,
            format!(
                "parley_refresh={}; Path=/parley.user.v1.UserService/; Max-Age=2592000; HttpOnly; SameSite=Strict",
                registered.refresh_token
            )
        );

        let response = client
            .login(pb::LoginRequest {
                login: "ivan".into(),
                password: "ivan password".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let login_cookie = set_cookie(&response);
        assert_eq!(cookie_value(&login_cookie), response.get_ref().refresh_token);

        // RefreshToken with an empty body reads the cookie (among others) and sets the next one.
        let response = client
            .refresh_token(with_cookie(
                pb::RefreshTokenRequest::default(),
                &format!("theme=dark; parley_refresh={}", cookie_value(&login_cookie)),
            ))
            .await
            .unwrap();
        let rotated = set_cookie(&response);
        assert_ne!(cookie_value(&rotated), cookie_value(&login_cookie));
        // A token that came from the cookie is answered in the cookie only, so a script in the
        // page cannot read a fresh refresh token by calling RefreshToken itself.
        assert_eq!(response.get_ref().refresh_token, "");
        assert!(!response.get_ref().access_token.is_empty());

        // ChangePassword keeps the browser's own session (the cookie's family) and ends the others.
        let access = response.get_ref().access_token.clone();
        let mut change = authed(
            pb::ChangePasswordRequest {
                old_password: "ivan password".into(),
                new_password: "ivan's new password".into(),
                ..Default::default()
            },
            &access,
        );
        change.metadata_mut().insert(
            "cookie",
            format!("parley_refresh={}", cookie_value(&rotated)).parse().unwrap(),
        );
        client.change_password(change).await.unwrap();
        assert_eq!(
            refresh(&mut client, &registered.refresh_token)
                .await
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
        let response = client
            .refresh_token(with_cookie(
                pb::RefreshTokenRequest::default(),
                &format!("parley_refresh={}", cookie_value(&rotated)),
            ))
            .await
            .unwrap();
        let current = set_cookie(&response);

        // Logout reads the cookie, revokes it and clears it.
        let response = client
            .logout(with_cookie(
                pb::LogoutRequest::default(),
                &format!("parley_refresh={}", cookie_value(&current)),
            ))
            .await
            .unwrap();
        let cleared = set_cookie(&response);
        assert!(cleared.starts_with("parley_refresh=; "), "{cleared}");
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        assert_eq!(
            refresh(&mut client, &cookie_value(&current)).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );

        // A dead cookie is cleared when it is refused.
        let status = client
            .refresh_token(with_cookie(
                pb::RefreshTokenRequest::default(),
                &format!("parley_refresh={}", cookie_value(&current)),
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let cleared = status.metadata().get("set-cookie").unwrap().to_str().unwrap();
        assert!(
            cleared.starts_with("parley_refresh=; ") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );

        server.stop().await;
    }
);

parley_testkit::on_every_backend!(
    browsers_can_ask_for_the_refresh_token_in_the_cookie_only,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let cookie_only = pb::RefreshTokenDelivery::Cookie as i32;
        let response = client
            .register(pb::RegisterRequest {
                username: "ines".into(),
                password: "ines password".into(),
                refresh_token_delivery: cookie_only,
                ..Default::default()
            })
            .await
            .unwrap();
        let registered_cookie = cookie_value(&set_cookie(&response));
        assert_eq!(response.get_ref().refresh_token, "");
        assert!(!response.get_ref().access_token.is_empty());

        let response = client
            .login(pb::LoginRequest {
                login: "ines".into(),
                password: "ines password".into(),
                refresh_token_delivery: cookie_only,
            })
            .await
            .unwrap();
        let login_cookie = cookie_value(&set_cookie(&response));
        assert_eq!(response.get_ref().refresh_token, "");

        // The cookies are real refresh tokens; a token sent in the body is answered in the body.
        for token in [registered_cookie, login_cookie] {
            let response = client
                .refresh_token(pb::RefreshTokenRequest { refresh_token: token })
                .await
                .unwrap();
            assert!(!response.get_ref().refresh_token.is_empty());
            assert_eq!(cookie_value(&set_cookie(&response)), response.get_ref().refresh_token);
        }

        // An unknown delivery is refused, naming the field, before anything happens.
        let db = server.database().await;
        let tokens_before = count_rows(&db, "refresh_tokens").await;
        assert_invalid(
            client
                .register(pb::RegisterRequest {
                    username: "ines2".into(),
                    password: "ines password".into(),
                    refresh_token_delivery: 7,
                    ..Default::default()
                })
                .await,
            "refresh_token_delivery",
        );
        assert_invalid(
            client
                .login(pb::LoginRequest {
                    login: "ines".into(),
                    password: "ines password".into(),
                    refresh_token_delivery: 7,
                })
                .await,
            "refresh_token_delivery",
        );
        assert_eq!(count_rows(&db, "users").await, 1);
        assert_eq!(count_rows(&db, "refresh_tokens").await, tokens_before);
        server.stop().await;
    }
);

#[tokio::test]
async fn secure_cookies_when_configured() {
    let db = parley_testkit::test_database::TestDatabase::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let mailer = user_service::test_support::RecordingMailer::new();
    let mut config = Config::new(db.url.clone(), dir.path());
    config.secure_cookies = true;
    config.mailer = Arc::new(mailer.clone());
    let server = TestServer::start_with(config, mailer).await;
    let mut client = server.client().await;
    let response = client
        .register(pb::RegisterRequest {
            username: "judy".into(),
            password: "judy password".into(),
            email: None,
            display_name: None,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(set_cookie(&response).ends_with("; HttpOnly; SameSite=Strict; Secure"));
    server.stop().await;
}

/// The service's own signing key, read from its data directory, so tests can craft tokens.
fn server_key(server: &TestServer) -> (EncodingKey, String) {
    let seed = std::fs::read(server.data_dir.join("user-service/signing-key")).unwrap();
    let signer = user_service::token_signer::TokenSigner::from_seed(&seed.clone().try_into().unwrap());
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend_from_slice(&seed);
    (EncodingKey::from_ed_der(&der), signer.key_id().to_string())
}

/// The classic algorithm confusion: an HMAC token whose secret is the published public key.
async fn hs256_with_public_key(server: &TestServer, kid: &str, user_id: i64) -> String {
    let mut client = server.client().await;
    let keys = client
        .get_public_keys(pb::GetPublicKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.into());
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(
        &header,
        &claims(user_id, 600),
        &EncodingKey::from_secret(&keys[0].public_key),
    )
    .unwrap()
}

fn claims(user_id: i64, exp_offset: i64) -> AccessClaims {
    let now = parley_service_kit::database::now_millis() / 1000;
    AccessClaims {
        sub: user_id.to_string(),
        iss: access_token::ISSUER.into(),
        aud: access_token::AUDIENCE.into(),
        exp: now + exp_offset,
        iat: now,
        jti: "test".into(),
        role: "user".into(),
        sid: "test-session".into(),
        aid: "test-account".into(),
    }
}

fn sign(key: &EncodingKey, kid: &str, typ: &str, claims: &AccessClaims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    header.typ = Some(typ.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

parley_testkit::on_every_backend!(bad_access_tokens_are_refused, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let kim = register(&mut client, "kim", "kim password", None).await;
    let kim_id = kim.user.unwrap().id;
    let (key, kid) = server_key(&server);

    // The issued token carries what the issue asks for.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = kim.access_token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], kid.as_str());
    let body: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    for claim in ["iss", "aud", "sub", "exp", "iat", "jti", "role"] {
        assert!(body.get(claim).is_some(), "missing {claim}: {body}");
    }
    assert_eq!(body["sub"], kim_id.to_string());
    assert_eq!(body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(), 900);

    // A token crafted with the real key and good claims works, so the refusals below are
    // about the one thing each changes.
    let good = sign(&key, &kid, "at+jwt", &claims(kim_id, 600));
    client.get_me(authed(pb::GetMeRequest {}, &good)).await.unwrap();

    let mut wrong_audience = claims(kim_id, 600);
    wrong_audience.aud = "someone-else".into();
    let mut wrong_issuer = claims(kim_id, 600);
    wrong_issuer.iss = "evil".into();
    let mut other_user = claims(kim_id + 1, 600);
    other_user.sub = "999".into();
    let forged_body = sign(&key, &kid, "at+jwt", &other_user);
    let good_parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        good_parts[0],
        forged_body.split('.').nth(1).unwrap(),
        good_parts[2]
    );
    let alg_none = format!(
        "{}.{}.",
        b64.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#)),
        good_parts[1]
    );
    let (other_key, _) = {
        let seed = [9u8; 32];
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        (EncodingKey::from_ed_der(&der), ())
    };
    let cases = [
        ("expired", sign(&key, &kid, "at+jwt", &claims(kim_id, -600))),
        ("wrong audience", sign(&key, &kid, "at+jwt", &wrong_audience)),
        ("wrong issuer", sign(&key, &kid, "at+jwt", &wrong_issuer)),
        ("plain JWT type", sign(&key, &kid, "JWT", &claims(kim_id, 600))),
        ("tampered payload", tampered),
        ("alg none", alg_none),
        (
            "another key claiming ours",
            sign(&other_key, &kid, "at+jwt", &claims(kim_id, 600)),
        ),
        (
            "unknown key id",
            sign(&other_key, "unknown", "at+jwt", &claims(kim_id, 600)),
        ),
        (
            "HS256 keyed with the public key",
            hs256_with_public_key(&server, &kid, kim_id).await,
        ),
        ("garbage", "not.a.jwt".to_string()),
        ("a refresh token", kim.refresh_token.clone()),
    ];
    for (what, token) in cases {
        let status = client.get_me(authed(pb::GetMeRequest {}, &token)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{what}: {status:?}");
    }
    server.stop().await;
});

parley_testkit::on_every_backend!(
    key_is_published_and_reused_across_restarts,
    |db_url: String| async move {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(&db_url, dir.path().to_path_buf()).await;
        let mut client = server.client().await;
        let keys = client
            .get_public_keys(pb::GetPublicKeysRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(keys.issuer, access_token::ISSUER);
        assert_eq!(keys.audience, access_token::AUDIENCE);
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].algorithm, "EdDSA");
        assert_eq!(keys.keys[0].public_key.len(), 32);
        let leo = register(&mut client, "leo", "leo password", None).await;

        // Another service verifies locally with the published keys.
        let verifier = TokenVerifier::with_source(Arc::new(UserServiceKeySource::new(server.channel().await)));
        let user = verifier.verify(&leo.access_token).await.unwrap();
        assert_eq!(user.user_id, leo.user.as_ref().unwrap().id);

        let key_file = dir.path().join("user-service/signing-key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let seed = std::fs::read(&key_file).unwrap();
        server.stop().await;

        // Same data dir: same key, and tokens issued before the restart still work.
        let server = TestServer::start(&db_url, dir.path().to_path_buf()).await;
        let mut client = server.client().await;
        let again = client
            .get_public_keys(pb::GetPublicKeysRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.keys, keys.keys);
        assert_eq!(std::fs::read(&key_file).unwrap(), seed);
        client
            .get_me(authed(pb::GetMeRequest {}, &leo.access_token))
            .await
            .unwrap();
        refresh(&mut client, &leo.refresh_token).await.unwrap();
        server.stop().await;

        // A different data dir means a different key: old tokens are refused there.
        let other_dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(&db_url, other_dir.path().to_path_buf()).await;
        let mut client = server.client().await;
        let other = client
            .get_public_keys(pb::GetPublicKeysRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_ne!(other.keys[0].key_id, keys.keys[0].key_id);
        assert_eq!(
            client
                .get_me(authed(pb::GetMeRequest {}, &leo.access_token))
                .await
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
        server.stop().await;
    }
);

#[tokio::test]
async fn reflection_lists_the_service_and_health_answers_serving() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let db = parley_testkit::test_database::TestDatabase::sqlite();
    let (server, _dir) = start(&db.url).await;
    let channel = server.channel().await;

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"parley.user.v1.UserService".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("parley.llm.")), "{names:?}");

    // The service's own schema resolves; the internal llm-service schema is not described here.
    for (symbol, found) in [
        ("parley.user.v1.UserService", true),
        ("parley.llm.v1.LlmService", false),
    ] {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
        };
        let mut responses = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        match responses.next().await.unwrap() {
            Ok(response) => {
                assert!(found, "{symbol} was described");
                assert!(matches!(
                    response.message_response,
                    Some(MessageResponse::FileDescriptorResponse(_))
                ));
            }
            Err(status) => {
                assert!(!found, "{symbol}: {status:?}");
                assert_eq!(status.code(), tonic::Code::NotFound);
            }
        }
    }

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "parley.user.v1.UserService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    server.stop().await;
}
