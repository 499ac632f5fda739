//! Failed sign-ins lock an account with a growing delay, and an unknown login behaves the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use parley_proto::user::v1 as pb;
use parley_service_kit::grpc_status::retry_delay;

async fn unlock_everyone(db: &sqlx::AnyPool) {
    sqlx::query("UPDATE login_failures SET locked_until = 0")
        .execute(db)
        .await
        .unwrap();
}

parley_testkit::on_every_backend!(failures_lock_with_a_growing_delay, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    register(&mut client, "uma", "uma password", None).await;
    let db = server.database().await;

    // Known and unknown logins go through exactly the same answers.
    for name in ["uma", "nobody"] {
        for attempt in 1..=5 {
            let status = login(&mut client, name, "wrong password").await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{name} attempt {attempt}");
            assert_eq!(status.message(), "invalid login or password");
        }
        // Locked: even the right password is refused until the delay has passed.
        let status = login(&mut client, name, "uma password").await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{name}");
        let delay = retry_delay(&status).unwrap();
        assert!(delay > Duration::ZERO && delay <= Duration::from_secs(30), "{delay:?}");
    }

    // After the lock: the next failure locks for longer.
    unlock_everyone(&db).await;
    login(&mut client, "uma", "wrong password").await.unwrap_err();
    let status = login(&mut client, "uma", "uma password").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(retry_delay(&status).unwrap() > Duration::from_secs(30));

    // A success resets the count: four more failures do not lock.
    unlock_everyone(&db).await;
    login(&mut client, "uma", "uma password").await.unwrap();
    for _ in 0..4 {
        login(&mut client, "uma", "wrong password").await.unwrap_err();
    }
    login(&mut client, "uma", "uma password").await.unwrap();
    server.stop().await;
});

// A lock never links two logins: a username and an email are counted apart, for a real
// account exactly as for logins with no account, so locking one tells nothing about whether
// the other names the same account (or any).
parley_testkit::on_every_backend!(
    the_lock_is_per_login_for_known_and_unknown_logins_alike,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        register(&mut client, "victor", "victor password", Some("victor@example.com")).await;
        verify_email(&server, &mut client, "victor", "victor").await;
        register(&mut client, "walter", "walter password", None).await;
        for (username, email) in [("victor", "victor@example.com"), ("nobody", "nobody@example.com")] {
            // Every spelling of the username counts on one counter…
            let upper = username.to_uppercase();
            for spelling in [username, &upper, username, &upper, username] {
                let status = login(&mut client, spelling, "wrong password").await.unwrap_err();
                assert_eq!(status.code(), tonic::Code::Unauthenticated, "{spelling}");
            }
            let status = login(&mut client, username, "victor password").await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{username}");
            // …and the email on its own, untouched by the username's lock.
            let status = login(&mut client, email, "wrong password").await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{email}");
        }
        login(&mut client, "victor@example.com", "victor password")
            .await
            .unwrap();
        // Someone else is not affected.
        login(&mut client, "walter", "walter password").await.unwrap();
        server.stop().await;
    }
);

// Parallel wrong guesses cannot outrun the counter: each attempt is counted (and the lock
// set) before its password is checked, so no more than the free failures plus the one that
// locks are ever checked.
parley_testkit::on_every_backend!(
    parallel_guesses_get_no_more_tries_than_serial_ones,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let uma = register(&mut client, "uma", "uma password", None).await;
        let guesses = |make: fn(usize) -> (String, String)| {
            let client = client.clone();
            async move {
                let attempts: Vec<_> = (0..16)
                    .map(|i| {
                        let mut client = client.clone();
                        let (login_name, password) = make(i);
                        tokio::spawn(async move { login(&mut client, &login_name, &password).await.map(|_| ()) })
                    })
                    .collect();
                let mut codes = Vec::new();
                for attempt in attempts {
                    codes.push(attempt.await.unwrap().unwrap_err().code());
                }
                codes
            }
        };
        for make in [
            (|i| ("uma".to_string(), format!("wrong password {i}"))) as fn(usize) -> (String, String),
            |i| ("nobody".to_string(), format!("wrong password {i}")),
        ] {
            let codes = guesses(make).await;
            let checked = codes.iter().filter(|c| **c == tonic::Code::Unauthenticated).count();
            let refused = codes.iter().filter(|c| **c == tonic::Code::ResourceExhausted).count();
            assert_eq!((checked, refused), (5, 11), "{codes:?}");
        }

        // The same for a signed-in user's own password (ChangePassword, DeleteAccount).
        let attempts: Vec<_> = (0..16)
            .map(|i| {
                let mut client = client.clone();
                let token = uma.access_token.clone();
                tokio::spawn(async move {
                    client
                        .change_password(authed(
                            pb::ChangePasswordRequest {
                                old_password: format!("wrong password {i}"),
                                new_password: "a new password".into(),
                                ..Default::default()
                            },
                            &token,
                        ))
                        .await
                        .unwrap_err()
                        .code()
                })
            })
            .collect();
        let mut codes = Vec::new();
        for attempt in attempts {
            codes.push(attempt.await.unwrap());
        }
        let checked = codes.iter().filter(|c| **c == tonic::Code::InvalidArgument).count();
        assert_eq!(checked, 5, "{codes:?}");
        server.stop().await;
    }
);

// A disabled account: the right password says so, but no session comes out of it; its
// sessions stop refreshing; a password reset answers as for an unknown login and keeps
// the account locked.
parley_testkit::on_every_backend!(
    a_disabled_account_cannot_sign_in_refresh_or_reset,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let yves = register(&mut client, "yves", "yves password", None).await;
        let db = server.database().await;
        client
            .send_verification_code(pb::SendVerificationCodeRequest {
                login: "yves".into(),
                purpose: pb::VerificationPurpose::PasswordReset as i32,
            })
            .await
            .unwrap();
        let code = server.code("yves", user_service::Purpose::PasswordReset, 1).await;
        for _ in 0..5 {
            login(&mut client, "yves", "wrong password").await.unwrap_err();
        }
        sqlx::query("UPDATE users SET status = 'disabled'")
            .execute(&db)
            .await
            .unwrap();
        let locked: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM login_failures WHERE locked_until > 0")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(locked.0, 1);

        assert_eq!(
            refresh(&mut client, &yves.refresh_token).await.unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let known = client
            .reset_password(pb::ResetPasswordRequest {
                login: "yves".into(),
                code: code.clone(),
                new_password: "yves new password".into(),
            })
            .await
            .unwrap_err();
        let unknown = client
            .reset_password(pb::ResetPasswordRequest {
                login: "nobody".into(),
                code,
                new_password: "yves new password".into(),
            })
            .await
            .unwrap_err();
        assert_eq!((known.code(), known.message()), (unknown.code(), unknown.message()));
        let still_locked: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM login_failures WHERE locked_until > 0")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(still_locked.0, 1, "a refused reset lifted the lock");

        unlock_everyone(&db).await;
        let status = login(&mut client, "yves", "yves password").await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            count_rows(&db, "refresh_token_families").await,
            1,
            "no session was started"
        );
        server.stop().await;
    }
);

/// A sign-in as the gateway forwards it, with the client's address in `x-parley-client-ip`
/// (`None`: a direct call, counted by its peer address).
async fn login_from(
    client: &mut Client,
    address: Option<&str>,
    login_name: &str,
    password: &str,
) -> Result<pb::LoginResponse, tonic::Status> {
    let mut request = tonic::Request::new(pb::LoginRequest {
        login: login_name.into(),
        password: password.into(),
        ..Default::default()
    });
    if let Some(address) = address {
        request
            .metadata_mut()
            .insert("x-parley-client-ip", address.parse().unwrap());
    }
    client.login(request).await.map(tonic::Response::into_inner)
}

// Five wrong passwords no longer lock the account: they lock that login from that address.
// The owner elsewhere (another forwarded address, or a direct call from its own peer address)
// signs in as ever; the guesser stays locked out.
parley_testkit::on_every_backend!(
    a_guesser_at_one_address_does_not_lock_the_owner_out,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        register(&mut client, "amy", "amy password", None).await;
        let guesser = Some("198.51.100.7");
        for attempt in 1..=5 {
            let status = login_from(&mut client, guesser, "amy", "wrong password")
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "attempt {attempt}");
        }
        let status = login_from(&mut client, guesser, "amy", "amy password")
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        // An IPv6 guesser's whole /64 is one address.
        for attempt in 1..=5 {
            let address = format!("2001:db8:7:7::{attempt}");
            login_from(&mut client, Some(&address), "amy", "wrong password")
                .await
                .unwrap_err();
        }
        let status = login_from(&mut client, Some("2001:db8:7:7::99"), "amy", "amy password")
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");

        login_from(&mut client, Some("203.0.113.9"), "amy", "amy password")
            .await
            .unwrap();
        login_from(&mut client, None, "amy", "amy password").await.unwrap();
        // A direct call is counted by its peer (127.0.0.1): locking it leaves forwarded
        // addresses alone.
        for _ in 0..5 {
            login_from(&mut client, None, "amy", "wrong password")
                .await
                .unwrap_err();
        }
        let status = login_from(&mut client, None, "amy", "amy password").await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        login_from(&mut client, Some("127.0.0.2"), "amy", "amy password")
            .await
            .unwrap();
        server.stop().await;
    }
);

// The wide counters, with small limits so the test stays short: one address guessing across
// many logins is slowed; guesses spread over many addresses reach the login's ceiling, which
// then holds for every address.
parley_testkit::on_every_backend!(
    many_logins_from_one_address_and_one_login_from_many_are_slowed,
    |db_url: String| async move {
        use user_service::service::{LockSchedule, SIGN_IN_LIMITS, SignInLimits};
        let dir = tempfile::tempdir().unwrap();
        let mailer = user_service::test_support::RecordingMailer::new();
        let mut config = user_service::Config::new(&db_url, dir.path().to_path_buf());
        config.mailer = std::sync::Arc::new(mailer.clone());
        let wide = LockSchedule {
            free_failures: 6,
            ..SIGN_IN_LIMITS.per_login
        };
        config.rules.sign_in_limits = SignInLimits {
            per_address: wide,
            per_login: wide,
            ..SIGN_IN_LIMITS
        };
        let server = common::TestServer::start_with(config, mailer).await;
        let mut client = server.client().await;
        register(&mut client, "bea", "bea password", None).await;
        register(&mut client, "cal", "cal password", None).await;

        // One address, a different login each time (none reaches its own limit of 4): the
        // seventh failure locks the address.
        let sprayer = Some("198.51.100.20");
        for i in 0..7 {
            let status = login_from(&mut client, sprayer, &format!("user{i}"), "password1")
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "login {i}");
        }
        let status = login_from(&mut client, sprayer, "cal", "cal password")
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        login_from(&mut client, Some("198.51.100.21"), "cal", "cal password")
            .await
            .unwrap();

        // One login from many addresses, one guess each: none is locked on its own…
        for i in 0..7 {
            let address = format!("192.0.2.{}", 10 + i);
            let status = login_from(&mut client, Some(&address), "bea", "wrong password")
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{address}");
        }
        // …but the login's ceiling now holds everywhere, the owner's address included.
        let status = login_from(&mut client, Some("203.0.113.50"), "bea", "bea password")
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        // Other logins are untouched.
        login_from(&mut client, Some("203.0.113.50"), "cal", "cal password")
            .await
            .unwrap();
        // Direct calls (no forwarded address) are not counted per address: their peer may be
        // a gateway that does not forward, with every user behind it.
        for i in 0..8 {
            let status = login_from(&mut client, None, &format!("direct{i}"), "password1")
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "direct {i}");
        }
        login_from(&mut client, None, "cal", "cal password").await.unwrap();
        server.stop().await;
    }
);
