//! The all-in-one wires user-service's deletion outbox to chat-service: deleting an account
//! through the gateway erases its chats, although user-service starts before chat-service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use parley_proto::chat::v1 as chat;
use parley_proto::chat::v1::persona_service_client::PersonaServiceClient;
use parley_proto::chat::v1::session_service_client::SessionServiceClient;
use parley_proto::user::v1 as user;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use parley_testkit::wait;

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn owned_rows(db: &sqlx::AnyPool) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM chat_sessions) + (SELECT COUNT(*) FROM personas WHERE user_id IS NOT NULL)",
    )
    .fetch_one(db)
    .await
    .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_erases_its_chats() {
    let stack = support::Stack::start().await;
    let channel = wait::channel(stack.addr).await;
    let mut users = UserServiceClient::new(channel.clone());
    let token = users
        .register(user::RegisterRequest {
            username: "dee".into(),
            password: "a long enough password".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    PersonaServiceClient::new(channel.clone())
        .create_persona(with_token(
            chat::CreatePersonaRequest {
                name: "mine".into(),
                description: String::new(),
                system_prompt: "Be brief.".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap();
    SessionServiceClient::new(channel.clone())
        .create_session(with_token(chat::CreateSessionRequest::default(), &token))
        .await
        .unwrap();

    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&format!(
        "sqlite://{}",
        stack.data_dir.join("chat-service.db").display()
    ))
    .await
    .unwrap();
    assert_eq!(owned_rows(&db).await, 2);
    users
        .delete_account(with_token(
            user::DeleteAccountRequest {
                password: "a long enough password".into(),
            },
            &token,
        ))
        .await
        .unwrap();
    // The outbox is checked every 5 s.
    wait::until("the account's chats to be erased", Duration::from_secs(30), || {
        let db = db.clone();
        async move { owned_rows(&db).await == 0 }
    })
    .await;
    db.close().await;
    stack.stop().await;
}
