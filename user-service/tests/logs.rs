//! No password, token or code ever reaches a log line. This file captures logs process-wide,
//! so it holds only tests that share that capture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use common::*;
use parley_proto::user::v1 as pb;
use parley_testkit::captured_logs::CapturedLogs;

fn logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(CapturedLogs::global)
}

parley_testkit::on_every_backend!(no_secret_reaches_the_logs, |db_url: String| async move {
    let logs = logs();
    let (server, _dir) = start(&db_url).await;
    let username = format!("logcheck_{}", db_url.len());
    let mut secrets = run_lifecycle(&server, &username).await;

    // The failure paths log too: reuse detection, wrong codes, lockouts.
    let mut client = server.client().await;
    let other = register(&mut client, &format!("{username}_b"), "b-password-secret", None).await;
    secrets.extend([
        "b-password-secret".to_string(),
        other.access_token.clone(),
        other.refresh_token.clone(),
    ]);
    let rotated = refresh(&mut client, &other.refresh_token).await.unwrap();
    secrets.extend([rotated.access_token.clone(), rotated.refresh_token.clone()]);
    age_rotations(&server.database().await).await;
    refresh(&mut client, &other.refresh_token).await.unwrap_err();
    for _ in 0..6 {
        login(&mut client, &format!("{username}_b"), "wrong-secret-pw")
            .await
            .unwrap_err();
    }
    secrets.push("wrong-secret-pw".to_string());
    client
        .get_me(authed(pb::GetMeRequest {}, "forged.token.value"))
        .await
        .unwrap_err();
    server.stop().await;

    let contents = logs.contents();
    assert!(contents.contains("account registered"), "logs were not captured");
    assert!(contents.contains("reused"), "reuse detection was not logged");
    for secret in &secrets {
        assert!(!appears(&contents, secret), "a secret reached the logs: {secret}");
    }
    // (h2 logs `code=NO_ERROR`; a verification code would be digits.)
    let code_lines: Vec<&str> = contents
        .lines()
        .filter(|l| {
            l.match_indices("code=")
                .any(|(i, _)| l[i + 5..].starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert!(code_lines.is_empty(), "a code field reached the logs: {code_lines:?}");
});

/// Whether `secret` is in the logs as a value of its own. A six-digit code is short enough to
/// turn up inside a longer number (a timestamp's microseconds), which is not a leak.
fn appears(contents: &str, secret: &str) -> bool {
    if !secret.bytes().all(|b| b.is_ascii_digit()) {
        return contents.contains(secret);
    }
    contents.match_indices(secret).any(|(at, _)| {
        let before = contents[..at].chars().next_back();
        let after = contents[at + secret.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.') && !after.is_some_and(|c| c.is_ascii_digit())
    })
}
