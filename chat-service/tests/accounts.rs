//! Chat data belongs to accounts (the token's `aid`), and a deleted account's data is erased:
//! user-service's outbox calls chat-service's internal `EraseAccountData` with a service
//! token, which no user token can call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use parley_proto::chat::internal::v1 as internal;
use parley_proto::chat::internal::v1::account_data_service_client::AccountDataServiceClient;
use parley_proto::chat::v1 as pb;
use parley_proto::user::v1 as user_pb;
use parley_service_kit::database::now_millis;
use parley_testkit::{on_every_backend, wait};
use tonic::Code;
use tonic::transport::Channel;

/// Generous: the outbox is checked every 50 ms, and a running answer is stopped first.
const ERASED_WITHIN: Duration = Duration::from_secs(20);

/// The `sub` and `aid` claims of an access token.
fn claims_of(token: &str) -> (i64, String) {
    let payload = token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&json).unwrap();
    (
        claims["sub"].as_str().unwrap().parse().unwrap(),
        claims["aid"].as_str().unwrap().to_owned(),
    )
}

/// A service token for chat-service, signed with the stack's user-service key.
fn service_token(stack: &Stack, scope: &str) -> String {
    let signer =
        user_service::token_signer::TokenSigner::load_or_create(&user_service::token_signer::key_path(&stack.data_dir))
            .unwrap();
    signer
        .sign_service(internal::SERVICE_TOKEN_AUDIENCE, scope, now_millis() / 1000)
        .unwrap()
}

async fn internal_client(stack: &Stack) -> AccountDataServiceClient<Channel> {
    AccountDataServiceClient::new(wait::channel(stack.chat_address()).await)
}

/// Everything `owner` has in chat-service's tables (messages through their sessions).
async fn rows_of(db: &sqlx::AnyPool, owner: i64) -> [i64; 4] {
    let count = |sql: &'static str| async move {
        let (n,): (i64,) = sqlx::query_as(sql).bind(owner).fetch_one(db).await.unwrap();
        n
    };
    [
        count(
            "SELECT COUNT(*) FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id \
             WHERE s.user_id = $1",
        )
        .await,
        count("SELECT COUNT(*) FROM chat_sessions WHERE user_id = $1").await,
        count("SELECT COUNT(*) FROM personas WHERE user_id = $1").await,
        count("SELECT COUNT(*) FROM api_configs WHERE user_id = $1").await,
    ]
}

/// The owner id a session is stored under.
async fn owner_of(db: &sqlx::AnyPool, session_id: i64) -> i64 {
    let (owner,): (i64,) = sqlx::query_as("SELECT user_id FROM chat_sessions WHERE id = $1")
        .bind(session_id)
        .fetch_one(db)
        .await
        .unwrap();
    owner
}

/// A config, a persona and a session with one finished exchange; answers the session.
async fn fill(stack: &Stack, user: &User) -> pb::Session {
    stack.fake_config(user, "fake").await;
    user.personas()
        .create_persona(user.req(pb::CreatePersonaRequest {
            name: "mine".into(),
            description: String::new(),
            system_prompt: "Be brief.".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let session = user.create_session(pb::CreateSessionRequest::default()).await;
    let events = collect_send(user.send(session.id, "hello").await).await;
    user.wait_finished(started_id(&events)).await;
    session
}

on_every_backend!(deleting_an_account_erases_its_chat_data, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let db = stack.database().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let alice_session = fill(&stack, &alice).await;
    let bob_session = fill(&stack, &bob).await;
    let (alice_owner, bob_owner) = (
        owner_of(&db, alice_session.id).await,
        owner_of(&db, bob_session.id).await,
    );
    assert_eq!(rows_of(&db, alice_owner).await, [2, 1, 1, 1]);
    let bob_before = rows_of(&db, bob_owner).await;
    assert_eq!(bob_before, [2, 1, 1, 1]);

    // Alice's second session is answering (slowly) when she deletes her account.
    let busy = alice.create_session(pb::CreateSessionRequest::default()).await;
    stack.fake.push_reply(
        Reply::text("word ".repeat(500))
            .chunk_size(5)
            .chunk_delay(Duration::from_millis(20)),
    );
    let mut streaming = alice.send(busy.id, "tell me a long story").await;
    next_event(&mut streaming).await;
    let mut users = stack.users().await;
    users
        .delete_account(authed(
            user_pb::DeleteAccountRequest {
                password: "password of alice".into(),
            },
            &alice.token,
        ))
        .await
        .unwrap();

    wait::until("alice's chat data to be erased", ERASED_WITHIN, || {
        let db = db.clone();
        async move { rows_of(&db, alice_owner).await == [0, 0, 0, 0] }
    })
    .await;
    let (messages_left,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM chat_messages WHERE session_id = $1 OR session_id = $2")
            .bind(alice_session.id)
            .bind(busy.id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(messages_left, 0);
    assert_eq!(rows_of(&db, bob_owner).await, bob_before, "bob's data was touched");
    assert_eq!(bob.list_messages(bob_session.id).await.len(), 2);

    // Alice's token, still within its lifetime, writes nothing more.
    assert_code(
        alice
            .sessions()
            .create_session(alice.req(pb::CreateSessionRequest::default()))
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(rows_of(&db, alice_owner).await, [0, 0, 0, 0]);

    // Erasing again is a no-op that succeeds.
    let (alice_id, alice_account) = claims_of(&alice.token);
    let again = internal_client(&stack)
        .await
        .erase_account_data(authed(
            internal::EraseAccountDataRequest {
                user_id: alice_id,
                account_id: alice_account,
            },
            &service_token(&stack, internal::ERASE_ACCOUNT_SCOPE),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, internal::EraseAccountDataResponse::default());
    assert_eq!(rows_of(&db, bob_owner).await, bob_before);
    stack.stop().await;
});

on_every_backend!(only_a_scoped_service_token_may_erase, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let db = stack.database().await;
    let bob = stack.user("bob").await;
    let session = fill(&stack, &bob).await;
    let owner = owner_of(&db, session.id).await;
    let (bob_id, bob_account) = claims_of(&bob.token);
    let erase_bob = || internal::EraseAccountDataRequest {
        user_id: bob_id,
        account_id: bob_account.clone(),
    };
    let mut client = internal_client(&stack).await;

    // A user's access token (his own account!) is refused on the internal method.
    let refused = client.erase_account_data(authed(erase_bob(), &bob.token)).await;
    assert_code(refused, Code::Unauthenticated);
    // No token, or a service token for another scope.
    assert_code(client.erase_account_data(erase_bob()).await, Code::Unauthenticated);
    let other_scope = service_token(&stack, "chat.read-everything");
    assert_code(
        client.erase_account_data(authed(erase_bob(), &other_scope)).await,
        Code::PermissionDenied,
    );
    // A service token is no user's token anywhere else.
    let service = service_token(&stack, internal::ERASE_ACCOUNT_SCOPE);
    assert_code(
        bob.sessions()
            .list_sessions(authed(pb::ListSessionsRequest::default(), &service))
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(
        rows_of(&db, owner).await,
        [2, 1, 1, 1],
        "a refused call changed something"
    );

    // Bad input changes nothing.
    let status = client
        .erase_account_data(authed(
            internal::EraseAccountDataRequest {
                user_id: bob_id,
                account_id: String::new(),
            },
            &service,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(rows_of(&db, owner).await, [2, 1, 1, 1]);
    stack.stop().await;
});

// user-service's database starts over: the new first account gets the integer id of the old
// one, but not its chats, which belong to the old account's `aid`.
on_every_backend!(a_reused_user_id_does_not_see_old_chats, |db_url: String| async move {
    let mut stack = Stack::start(&db_url).await;
    let old = stack.user("alice").await;
    let old_session = fill(&stack, &old).await;
    stack.reset_user_service().await;
    let new = stack.user("mallory").await;
    assert_eq!(
        claims_of(&new.token).0,
        claims_of(&old.token).0,
        "the id was not reused"
    );
    assert_ne!(claims_of(&new.token).1, claims_of(&old.token).1);

    let sessions = new
        .sessions()
        .list_sessions(new.req(pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert!(sessions.is_empty(), "{sessions:?}");
    assert_code(
        new.sessions()
            .get_session(new.req(pb::GetSessionRequest { id: old_session.id }))
            .await,
        Code::NotFound,
    );
    let configs = new
        .configs()
        .list_api_configs(new.req(pb::ListApiConfigsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .api_configs;
    assert!(configs.is_empty(), "{configs:?}");
    let personas = new
        .personas()
        .list_personas(new.req(pb::ListPersonasRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .personas;
    assert!(personas.iter().all(|p| p.name != "mine"), "{personas:?}");
    stack.stop().await;
});

/// Stores a session under the legacy owner of `user_id`, as migration 0004 leaves the rows
/// written before chat data was keyed by account.
async fn legacy_session(db: &sqlx::AnyPool, db_url: &str, user_id: i64) {
    // chat-service migrates its database as it starts, in the background of the test.
    wait::until("chat-service's migrations", Duration::from_secs(10), || async {
        sqlx::query("SELECT COUNT(*) FROM chat_owners")
            .execute(db)
            .await
            .is_ok()
    })
    .await;
    sqlx::query("INSERT INTO chat_owners (id, account_id, legacy_user_id, created_at) VALUES ($1, NULL, $1, 0)")
        .bind(user_id)
        .execute(db)
        .await
        .unwrap();
    if db_url.starts_with("postgres") {
        // What the migration does after numbering the legacy owners.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('chat_owners', 'id'), \
             COALESCE((SELECT MAX(id) FROM chat_owners), 0) + 1, false)",
        )
        .execute(db)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO chat_sessions (user_id, title, start_time, updated_at, last_active_at) \
         VALUES ($1, 'written before accounts', 1, 1, 1)",
    )
    .bind(user_id)
    .execute(db)
    .await
    .unwrap();
}

async fn session_titles(user: &User) -> Vec<String> {
    user.sessions()
        .list_sessions(user.req(pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions
        .into_iter()
        .map(|s| s.title)
        .collect()
}

// By default rows from before accounts are adopted by nobody: chat-service cannot tell the
// account that wrote them from a new one that got the same id after a reset.
on_every_backend!(legacy_rows_are_not_adopted_by_default, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let db = stack.database().await;
    legacy_session(&db, &db_url, 1).await;
    let alice = stack.user("alice").await;
    assert_eq!(claims_of(&alice.token).0, 1);
    assert!(session_titles(&alice).await.is_empty());
    let (unclaimed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM chat_owners WHERE legacy_user_id = 1 AND account_id IS NULL")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(unclaimed, 1, "the legacy rows must stay, unclaimed");
    assert_eq!(count_rows(&db, "chat_sessions").await, 1);
    stack.stop().await;
});

// With --adopt-legacy-chats the first account with the rows' user id gets them, once: no
// other account, and not a second one with that id.
on_every_backend!(
    legacy_rows_are_adopted_by_their_user_id_when_allowed,
    |db_url: String| async move {
        let mut stack = Stack::start_with(&db_url, |config| config.adopt_legacy_chats = true).await;
        let db = stack.database().await;
        legacy_session(&db, &db_url, 1).await;
        let alice = stack.user("alice").await;
        let bob = stack.user("bob").await;
        assert_eq!(claims_of(&alice.token).0, 1);
        assert_eq!(session_titles(&alice).await, ["written before accounts"]);
        assert!(session_titles(&bob).await.is_empty());
        // A new account that gets id 1 after the adoption does not take them over.
        stack.reset_user_service().await;
        let mallory = stack.user("mallory").await;
        assert_eq!(claims_of(&mallory.token).0, 1);
        assert!(session_titles(&mallory).await.is_empty());
        stack.stop().await;
    }
);

// An erasure a crash cut short (or a row another instance wrote for a token it still
// accepted) is finished by the sweep.
on_every_backend!(rows_an_erasure_left_behind_are_swept, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.erased_sweep_interval = Duration::from_millis(50);
    })
    .await;
    let db = stack.database().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let alice_session = fill(&stack, &alice).await;
    let bob_session = fill(&stack, &bob).await;
    let (alice_owner, bob_owner) = (
        owner_of(&db, alice_session.id).await,
        owner_of(&db, bob_session.id).await,
    );
    // Marked erased, rows still there: what a crash right after the first step leaves.
    sqlx::query("UPDATE chat_owners SET erased_at = 1 WHERE id = $1")
        .bind(alice_owner)
        .execute(&db)
        .await
        .unwrap();
    wait::until("the sweep to erase alice's rows", ERASED_WITHIN, || {
        let db = db.clone();
        async move { rows_of(&db, alice_owner).await == [0, 0, 0, 0] }
    })
    .await;
    assert_eq!(rows_of(&db, bob_owner).await, [2, 1, 1, 1]);
    stack.stop().await;
});
