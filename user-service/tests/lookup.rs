//! LookupUsers: signed-in users find active accounts' public profiles by username (ignoring
//! case) or account id, on every backend; nothing else of an account is told.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::user::v1 as pb;
use parley_proto::user::v1::admin_service_client::AdminServiceClient;
use tonic::Code;

async fn lookup(
    client: &mut Client,
    token: &str,
    usernames: &[&str],
    account_ids: &[&str],
) -> Result<Vec<pb::UserProfile>, tonic::Status> {
    let mut users = client
        .lookup_users(authed(
            pb::LookupUsersRequest {
                usernames: usernames.iter().map(|u| (*u).to_owned()).collect(),
                account_ids: account_ids.iter().map(|a| (*a).to_owned()).collect(),
            },
            token,
        ))
        .await?
        .into_inner()
        .users;
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(users)
}

parley_testkit::on_every_backend!(
    finds_active_accounts_by_username_or_account_id,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let admin = register(&mut client, "Admin", "correct horse battery", None).await;
        let alice = register(&mut client, "Alice", "correct horse battery", Some("alice@example.com")).await;
        let bob = register(&mut client, "bob", "correct horse battery", None).await;
        let token = &bob.access_token;
        let alice_user = alice.user.unwrap();
        let bob_user = bob.user.unwrap();

        let found = lookup(
            &mut client,
            token,
            &["ALICE", "@nobody", "nobody", "alice"],
            &[&bob_user.account_id],
        )
        .await
        .unwrap();
        assert_eq!(
            found,
            vec![
                pb::UserProfile {
                    account_id: alice_user.account_id.clone(),
                    username: "Alice".into(),
                    display_name: "Alice".into(),
                    avatar_url: String::new(),
                },
                pb::UserProfile {
                    account_id: bob_user.account_id.clone(),
                    username: "bob".into(),
                    display_name: "bob".into(),
                    avatar_url: String::new(),
                },
            ]
        );
        assert!(lookup(&mut client, token, &[], &[]).await.unwrap().is_empty());

        // A disabled account is found no more.
        AdminServiceClient::new(server.channel().await)
            .disable_user(authed(
                pb::DisableUserRequest { id: alice_user.id },
                &admin.access_token,
            ))
            .await
            .unwrap();
        assert!(lookup(&mut client, token, &["alice"], &[]).await.unwrap().is_empty());

        // Signed-in users only; at most 100 names at once.
        let anonymous = client
            .lookup_users(pb::LookupUsersRequest {
                usernames: vec!["bob".into()],
                account_ids: vec![],
            })
            .await;
        assert_eq!(anonymous.unwrap_err().code(), Code::Unauthenticated);
        let many: Vec<String> = (0..101).map(|i| format!("user{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_invalid(lookup(&mut client, token, &many, &[]).await, "usernames");
        server.stop().await;
    }
);
