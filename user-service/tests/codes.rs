//! Verification codes: hashing, expiry, single use, resends, attempt and send limits, and
//! answers that never tell whether an account exists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use parley_proto::user::v1 as pb;
use user_service::Purpose;

const RESET: i32 = pb::VerificationPurpose::PasswordReset as i32;
const EMAIL: i32 = pb::VerificationPurpose::EmailVerify as i32;

async fn send(
    client: &mut Client,
    login: &str,
    purpose: i32,
) -> Result<pb::SendVerificationCodeResponse, tonic::Status> {
    client
        .send_verification_code(pb::SendVerificationCodeRequest {
            login: login.into(),
            purpose,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn verify(client: &mut Client, login: &str, code: &str, purpose: i32) -> bool {
    client
        .verify_code(pb::VerifyCodeRequest {
            login: login.into(),
            code: code.into(),
            purpose,
        })
        .await
        .unwrap_or_else(|s| panic!("verify_code: {s:?}"))
        .into_inner()
        .valid
}

async fn reset(client: &mut Client, login: &str, code: &str, new_password: &str) -> Result<(), tonic::Status> {
    client
        .reset_password(pb::ResetPasswordRequest {
            login: login.into(),
            code: code.into(),
            new_password: new_password.into(),
        })
        .await
        .map(|_| ())
}

/// Moves every send window two minutes into the past, past the once-a-minute limit.
async fn age_sends(db: &sqlx::AnyPool) {
    sqlx::query(
        "UPDATE send_counters SET minute_started_at = minute_started_at - 120000, \
         day_started_at = day_started_at - 120000",
    )
    .execute(db)
    .await
    .unwrap();
}

/// A code different from `code`.
fn other_code(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

parley_testkit::on_every_backend!(codes_are_hashed_single_use_and_expire, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    register(&mut client, "mallory", "mallory password", Some("mallory@example.com")).await;
    let db = server.database().await;
    verify_email(&server, &mut client, "mallory", "mallory").await;
    sqlx::query("DELETE FROM verification_codes")
        .execute(&db)
        .await
        .unwrap();

    send(&mut client, "mallory", RESET).await.unwrap();
    let code = server.code("mallory", Purpose::PasswordReset, 2).await;
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let mail = &server.mailer.mails()[1];
    assert_eq!(mail.email.as_deref(), Some("mallory@example.com"));
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT code_hash, expires_at, created_at FROM verification_codes")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].0.contains(&code), "codes are stored only as hashes");
    assert_eq!(rows[0].1 - rows[0].2, 10 * 60 * 1000, "codes live ten minutes");

    assert!(!verify(&mut client, "mallory", &other_code(&code), RESET).await);
    // A reset code stays usable after VerifyCode, and is for its own purpose only.
    assert!(verify(&mut client, "mallory", &code, RESET).await);
    assert!(verify(&mut client, "mallory@example.com", &code, RESET).await);
    assert!(!verify(&mut client, "mallory", &code, EMAIL).await);
    reset(&mut client, "mallory", &code, "mallory's new password")
        .await
        .unwrap();
    // Single use.
    assert!(!verify(&mut client, "mallory", &code, RESET).await);
    assert_invalid(
        reset(&mut client, "mallory", &code, "another new password").await,
        "code",
    );
    login(&mut client, "mallory", "mallory's new password").await.unwrap();

    // Expiry.
    age_sends(&db).await;
    send(&mut client, "mallory", RESET).await.unwrap();
    let code = server.code("mallory", Purpose::PasswordReset, 3).await;
    sqlx::query("UPDATE verification_codes SET expires_at = $1")
        .bind(parley_service_kit::database::now_millis() - 1)
        .execute(&db)
        .await
        .unwrap();
    assert!(!verify(&mut client, "mallory", &code, RESET).await);
    assert_invalid(
        reset(&mut client, "mallory", &code, "another new password").await,
        "code",
    );
    login(&mut client, "mallory", "mallory's new password").await.unwrap();
    server.stop().await;
});

parley_testkit::on_every_backend!(a_resend_replaces_the_old_code, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    register(&mut client, "niaj", "niaj password", None).await;
    let db = server.database().await;
    send(&mut client, "niaj", RESET).await.unwrap();
    let first = server.code("niaj", Purpose::PasswordReset, 1).await;
    // Codes are random: resend until the new one differs (one in a million will not).
    let mut second = first.clone();
    for sent in 2..=4 {
        age_sends(&db).await;
        send(&mut client, "niaj", RESET).await.unwrap();
        second = server.code("niaj", Purpose::PasswordReset, sent).await;
        if second != first {
            break;
        }
    }
    assert_ne!(first, second);
    assert!(!verify(&mut client, "niaj", &first, RESET).await);
    assert!(verify(&mut client, "niaj", &second, RESET).await);
    assert_eq!(count_rows(&db, "verification_codes").await, 1);
    server.stop().await;
});

parley_testkit::on_every_backend!(five_wrong_guesses_kill_a_code, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    register(&mut client, "olivia", "olivia password", None).await;
    send(&mut client, "olivia", RESET).await.unwrap();
    let code = server.code("olivia", Purpose::PasswordReset, 1).await;
    let wrong = other_code(&code);

    // Only wrong guesses count: four wrong, a right one, then the fifth wrong one.
    for _ in 0..4 {
        assert!(!verify(&mut client, "olivia", &wrong, RESET).await);
    }
    assert!(verify(&mut client, "olivia", &code, RESET).await);
    assert_invalid(
        reset(&mut client, "olivia", &wrong, "olivia new password").await,
        "code",
    );
    // Now the right code is refused too, by VerifyCode and by ResetPassword.
    assert!(!verify(&mut client, "olivia", &code, RESET).await);
    assert_invalid(reset(&mut client, "olivia", &code, "olivia new password").await, "code");
    login(&mut client, "olivia", "olivia password").await.unwrap();
    server.stop().await;
});

parley_testkit::on_every_backend!(
    sends_are_limited_alike_for_known_and_unknown_logins,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        register(&mut client, "peggy", "peggy password", Some("peggy@example.com")).await;
        let db = server.database().await;
        // Reset codes go only to a verified address (EMAIL_VERIFY sends then nothing).
        sqlx::query("UPDATE users SET email_verified = 1")
            .execute(&db)
            .await
            .unwrap();

        for login_name in ["peggy", "nobody-here", "nobody@example.com"] {
            let first = send(&mut client, login_name, RESET).await.unwrap();
            assert_eq!(first.expires_in, 600);
            // Once a minute.
            let status = send(&mut client, login_name, RESET).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{login_name}");
            let delay = parley_service_kit::grpc_status::retry_delay(&status).unwrap();
            assert!(delay > Duration::ZERO && delay <= Duration::from_secs(60), "{delay:?}");
            assert!(
                status.message().starts_with("a code was sent moments ago"),
                "{status:?}"
            );
            // Another purpose is counted on its own.
            send(&mut client, login_name, EMAIL).await.unwrap();
        }
        // Ten a day. (Each mail is awaited before time is moved on, so the background send
        // is counted before the aging.)
        server.code("peggy", Purpose::PasswordReset, 1).await;
        for sent in 1..10 {
            age_sends(&db).await;
            for login_name in ["peggy", "nobody-here"] {
                send(&mut client, login_name, RESET).await.unwrap();
            }
            server.code("peggy", Purpose::PasswordReset, 1 + sent).await;
        }
        age_sends(&db).await;
        for login_name in ["peggy", "nobody-here"] {
            let status = send(&mut client, login_name, RESET).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            assert!(status.message().starts_with("too many codes sent today"), "{status:?}");
            let delay = parley_service_kit::grpc_status::retry_delay(&status).unwrap();
            assert!(delay > Duration::from_secs(60 * 60), "{delay:?}");
        }
        // Only the real account got mails: ten reset codes (no email-verify code: its address is
        // verified already); nothing went
        // to the unknown logins. Codes go out in order: once one for another account has
        // arrived, every earlier request has been dealt with.
        register(&mut client, "zara", "zara password", None).await;
        send(&mut client, "zara", RESET).await.unwrap();
        server.code("zara", Purpose::PasswordReset, 11).await;
        let mails: Vec<_> = server
            .mailer
            .mails()
            .into_iter()
            .filter(|m| m.username != "zara")
            .collect();
        assert!(mails.iter().all(|m| m.username == "peggy"), "{mails:?}");
        assert_eq!(mails.iter().filter(|m| m.purpose == Purpose::PasswordReset).count(), 10);
        assert_eq!(mails.iter().filter(|m| m.purpose == Purpose::EmailVerify).count(), 0);
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(
    an_account_is_limited_across_its_logins_silently,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        register(&mut client, "oscar", "oscar password", Some("oscar@example.com")).await;
        register(&mut client, "zed", "zed password", None).await;
        verify_email(&server, &mut client, "oscar", "oscar").await;
        let db = server.database().await;
        send(&mut client, "oscar", RESET).await.unwrap();
        server.code("oscar", Purpose::PasswordReset, 2).await;
        let code_hash = || async {
            let (hash,): (String,) = sqlx::query_as("SELECT code_hash FROM verification_codes WHERE purpose = $1")
                .bind(Purpose::PasswordReset.as_str())
                .fetch_one(&db)
                .await
                .unwrap();
            hash
        };
        let first = code_hash().await;
        // Another spelling of the same account: the same answer as ever, but no new code.
        send(&mut client, "oscar@example.com", RESET).await.unwrap();
        send(&mut client, "OSCAR", RESET).await.unwrap_err();
        // Codes go out in the order they were asked for: once zed's has arrived, the one for
        // oscar@example.com would have too.
        send(&mut client, "zed", RESET).await.unwrap();
        server.code("zed", Purpose::PasswordReset, 3).await;
        let mails: Vec<String> = server.mailer.mails().into_iter().map(|m| m.username).collect();
        assert_eq!(mails, ["oscar", "oscar", "zed"]);
        assert_eq!(code_hash().await, first);
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(unknown_logins_get_the_same_answers, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    register(&mut client, "quinn", "quinn password", None).await;
    let known = send(&mut client, "quinn", RESET).await.unwrap();
    let unknown = send(&mut client, "nobody", RESET).await.unwrap();
    assert_eq!(known, unknown);
    let code = server.code("quinn", Purpose::PasswordReset, 1).await;
    let wrong = other_code(&code);
    assert!(!verify(&mut client, "quinn", &wrong, RESET).await);
    assert!(!verify(&mut client, "nobody", &wrong, RESET).await);
    let known = reset(&mut client, "quinn", &wrong, "quinn new password")
        .await
        .unwrap_err();
    let unknown = reset(&mut client, "nobody", &wrong, "quinn new password")
        .await
        .unwrap_err();
    assert_eq!(known.code(), unknown.code());
    assert_eq!(known.message(), unknown.message());

    let known = login(&mut client, "quinn", "not quinn's password").await.unwrap_err();
    let unknown = login(&mut client, "nobody", "not quinn's password").await.unwrap_err();
    assert_eq!(known.code(), tonic::Code::Unauthenticated);
    assert_eq!(known.code(), unknown.code());
    assert_eq!(known.message(), unknown.message());
    server.stop().await;
});

parley_testkit::on_every_backend!(email_verification, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let rupert = register(&mut client, "rupert", "rupert password", Some("rupert@example.com")).await;
    register(&mut client, "sybil", "sybil password", None).await;
    let db = server.database().await;

    // An unverified address names no account yet: by username.
    send(&mut client, "rupert", EMAIL).await.unwrap();
    let code = server.code("rupert", Purpose::EmailVerify, 1).await;
    assert!(verify(&mut client, "rupert", &code, EMAIL).await);
    // EMAIL_VERIFY codes are consumed.
    assert!(!verify(&mut client, "rupert", &code, EMAIL).await);
    let me = client
        .get_me(authed(pb::GetMeRequest {}, &rupert.access_token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(me.email_verified);

    // A new address starts unverified again.
    let user = client
        .update_profile(authed(
            pb::UpdateProfileRequest {
                email: Some("rupert@new.example.com".into()),
                current_password: Some("rupert password".into()),
                ..Default::default()
            },
            &rupert.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(!user.email_verified);

    // No address: the same answer, but nothing is sent. Codes go out in order, so once
    // rupert's has arrived, one for sybil would have too.
    age_sends(&db).await;
    send(&mut client, "sybil", EMAIL).await.unwrap();
    send(&mut client, "rupert", EMAIL).await.unwrap();
    server.code("rupert", Purpose::EmailVerify, 2).await;
    let mails = server.mailer.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(mails[1].email.as_deref(), Some("rupert@new.example.com"));
    assert!(mails.iter().all(|m| m.username == "rupert"));
    server.stop().await;
});

parley_testkit::on_every_backend!(
    bad_code_requests_name_the_field_and_change_nothing,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        register(&mut client, "trent", "trent password", None).await;
        let db = server.database().await;

        assert_invalid(send(&mut client, "trent", 0).await, "purpose");
        assert_invalid(send(&mut client, "trent", 99).await, "purpose");
        assert_invalid(send(&mut client, "  ", RESET).await, "login");
        assert_eq!(count_rows(&db, "send_counters").await, 0);

        send(&mut client, "trent", RESET).await.unwrap();
        let code = server.code("trent", Purpose::PasswordReset, 1).await;
        for bad in ["12345", "1234567", "12a456", ""] {
            assert_invalid(
                client
                    .verify_code(pb::VerifyCodeRequest {
                        login: "trent".into(),
                        code: bad.into(),
                        purpose: RESET,
                    })
                    .await,
                "code",
            );
        }
        assert_invalid(
            client
                .verify_code(pb::VerifyCodeRequest {
                    login: "trent".into(),
                    code: code.clone(),
                    purpose: 0,
                })
                .await,
            "purpose",
        );
        assert_invalid(reset(&mut client, "trent", &code, "short").await, "new_password");
        assert_invalid(reset(&mut client, "", &code, "long enough pw").await, "login");
        // None of that used an attempt or the code.
        let attempts: (i64,) = sqlx::query_as("SELECT attempts FROM verification_codes")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(attempts.0, 0);
        reset(&mut client, "trent", &code, "trent new password").await.unwrap();
        server.stop().await;
    }
);

// A code is bound to the address it was sent to: if the address changes however the change
// races with the send or the check, the code verifies nothing. (The change is written
// directly, as a profile update racing the send would leave it.)
parley_testkit::on_every_backend!(
    a_code_verifies_only_the_address_it_was_sent_to,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let quincy = register(&mut client, "quincy", "quincy password", Some("quincy@old.example.com")).await;
        let db = server.database().await;
        send(&mut client, "quincy", EMAIL).await.unwrap();
        let code = server.code("quincy", Purpose::EmailVerify, 1).await;
        sqlx::query("UPDATE users SET email = $1, email_normalized = $1")
            .bind("quincy@new.example.com")
            .execute(&db)
            .await
            .unwrap();
        assert!(!verify(&mut client, "quincy", &code, EMAIL).await);
        let me = client
            .get_me(authed(pb::GetMeRequest {}, &quincy.access_token))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert!(!me.email_verified);
        server.stop().await;
    }
);

// A burst of sends for one login is counted one by one: exactly one gets through.
parley_testkit::on_every_backend!(a_burst_of_sends_gets_one_through, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let client = server.client().await;
    let sends: Vec<_> = (0..8)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { send(&mut client, "burst@example.com", RESET).await.map(|_| ()) })
        })
        .collect();
    let mut codes = Vec::new();
    for s in sends {
        codes.push(s.await.unwrap().map_or_else(|s| s.code(), |()| tonic::Code::Ok));
    }
    assert_eq!(codes.iter().filter(|c| **c == tonic::Code::Ok).count(), 1, "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, tonic::Code::Ok | tonic::Code::ResourceExhausted))
    );
    server.stop().await;
});

// An access token alone must not be able to take an account over by moving where reset codes
// go: a reset code reaches only an address its owner has verified. An account with an
// unverified address gets none (by username or by that address), until it is verified.
parley_testkit::on_every_backend!(reset_codes_go_only_to_verified_addresses, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    register(&mut client, "ursula", "ursula password", Some("ursula@example.com")).await;
    register(&mut client, "zed", "zed password", None).await;
    let db = server.database().await;

    send(&mut client, "ursula", RESET).await.unwrap();
    // Codes go out in order: once zed's has arrived, one for ursula would have too.
    send(&mut client, "zed", RESET).await.unwrap();
    server.code("zed", Purpose::PasswordReset, 1).await;
    let mails = server.mailer.mails();
    assert!(mails.iter().all(|m| m.username == "zed"), "{mails:?}");
    assert_eq!(count_rows(&db, "verification_codes").await, 1, "ursula got no code");

    // Verified, the address gets reset codes.
    verify_email(&server, &mut client, "ursula", "ursula").await;
    age_sends(&db).await;
    send(&mut client, "ursula", RESET).await.unwrap();
    let code = server.code("ursula", Purpose::PasswordReset, 3).await;
    let mail = server.mailer.mails().pop().unwrap();
    assert_eq!(mail.email.as_deref(), Some("ursula@example.com"));
    reset(&mut client, "ursula", &code, "ursula new password")
        .await
        .unwrap();
    server.stop().await;
});

// Anyone can sign up with someone else's address, and each account has its own send limits:
// so the address itself gets at most --codes-per-address-per-day codes, over every account
// that names it and every purpose. The answers stay the same (they never say).
parley_testkit::on_every_backend!(
    an_address_gets_only_so_many_codes_a_day_however_many_accounts_name_it,
    |db_url: String| async move {
        let dir = tempfile::tempdir().unwrap();
        let mailer = user_service::test_support::RecordingMailer::new();
        let mut config = user_service::Config::new(&db_url, dir.path().to_path_buf());
        config.mailer = std::sync::Arc::new(mailer.clone());
        config.codes_per_address_per_day = 2;
        let server = common::TestServer::start_with(config, mailer).await;
        let mut client = server.client().await;
        for name in ["flood1", "flood2", "flood3"] {
            register(&mut client, name, "flood password", Some("Victim@Example.com")).await;
            send(&mut client, name, EMAIL).await.unwrap();
        }
        register(&mut client, "other", "other password", Some("other@example.com")).await;
        send(&mut client, "other", EMAIL).await.unwrap();
        // Codes go out in order: once other's has arrived, the floods' have been dealt with.
        server.code("other", Purpose::EmailVerify, 3).await;
        let mails = server.mailer.mails();
        let to_victim = mails
            .iter()
            .filter(|m| {
                m.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case("victim@example.com"))
            })
            .count();
        assert_eq!(to_victim, 2, "{mails:?}");
        assert_eq!(mails.len(), 3, "{mails:?}");
        server.stop().await;
    }
);
