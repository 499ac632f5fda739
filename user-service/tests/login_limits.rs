//! Failed sign-ins lock an account with a growing delay, and an unknown login behaves the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
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

parley_testkit::on_every_backend!(the_lock_is_per_account_not_per_spelling, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    register(&mut client, "victor", "victor password", Some("victor@example.com")).await;
    register(&mut client, "walter", "walter password", None).await;
    for name in ["victor", "VICTOR", "victor@example.com", "Victor@Example.com", "victor"] {
        login(&mut client, name, "wrong password").await.unwrap_err();
    }
    let status = login(&mut client, "victor@example.com", "victor password")
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    // Someone else is not affected.
    login(&mut client, "walter", "walter password").await.unwrap();
    server.stop().await;
});
