//! Administrators: who is one, and what AdminService lets them (and only them) do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::user::v1 as pb;
use parley_proto::user::v1::admin_service_client::AdminServiceClient;
use tonic::Code;
use tonic::transport::Channel;

type Admin = AdminServiceClient<Channel>;

async fn admin_client(server: &TestServer) -> Admin {
    AdminServiceClient::new(server.channel().await)
}

async fn list(
    admin: &mut Admin,
    token: &str,
    request: pb::ListUsersRequest,
) -> Result<pb::ListUsersResponse, tonic::Status> {
    admin
        .list_users(authed(request, token))
        .await
        .map(tonic::Response::into_inner)
}

fn names(users: &[pb::User]) -> Vec<String> {
    users.iter().map(|u| u.username.clone()).collect()
}

parley_testkit::on_every_backend!(
    the_first_account_administers_and_nobody_else_may,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let mut admin = admin_client(&server).await;
        let root = register(&mut client, "root", "root password", None).await;
        let ann = register(&mut client, "ann", "ann password", Some("ann@example.com")).await;
        assert_eq!(root.user.as_ref().unwrap().role, pb::Role::Admin as i32);
        assert_eq!(ann.user.as_ref().unwrap().role, pb::Role::User as i32);
        let me = client
            .get_me(authed(pb::GetMeRequest {}, &ann.access_token))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(me.role, pb::Role::User as i32);
        assert_eq!(me.status, pb::AccountStatus::Active as i32);
        assert!(me.last_login_at.is_some());

        // Every method refuses a non-administrator, whatever the request names.
        let token = ann.access_token.clone();
        let root_id = root.user.as_ref().unwrap().id;
        let denied = [
            admin
                .list_users(authed(pb::ListUsersRequest::default(), &token))
                .await
                .map(|_| ()),
            admin
                .get_user(authed(pb::GetUserRequest { id: root_id }, &token))
                .await
                .map(|_| ()),
            admin
                .disable_user(authed(pb::DisableUserRequest { id: root_id }, &token))
                .await
                .map(|_| ()),
            admin
                .enable_user(authed(pb::EnableUserRequest { id: root_id }, &token))
                .await
                .map(|_| ()),
            admin
                .delete_user(authed(pb::DeleteUserRequest { id: root_id }, &token))
                .await
                .map(|_| ()),
            admin
                .approve_user(authed(pb::ApproveUserRequest { id: root_id }, &token))
                .await
                .map(|_| ()),
        ];
        for result in denied {
            assert_eq!(result.unwrap_err().code(), Code::PermissionDenied);
        }
        // No token at all is UNAUTHENTICATED.
        let status = admin.list_users(pb::ListUsersRequest::default()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        let listed = list(&mut admin, &root.access_token, pb::ListUsersRequest::default())
            .await
            .unwrap();
        assert_eq!(names(&listed.users), ["root", "ann"]);
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(
    administrators_list_search_and_page_through_accounts,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let mut admin = admin_client(&server).await;
        let root = register(&mut client, "root", "root password", None).await;
        let token = root.access_token.clone();
        register(&mut client, "Anna", "anna password", Some("anna@example.com")).await;
        register(&mut client, "bob", "bob password", Some("HANNAH@example.org")).await;
        register(&mut client, "cid", "cid password", None).await;
        register(&mut client, "odd_1", "odd password", None).await;
        let db = server.database().await;
        sqlx::query("UPDATE users SET display_name = 'Odd 100%' WHERE username = 'odd_1'")
            .execute(&db)
            .await
            .unwrap();

        // Search: username, address or display name, ignoring case; `%` and `_` are literal.
        let found = list(
            &mut admin,
            &token,
            pb::ListUsersRequest {
                search: "ANN".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(names(&found.users), ["Anna", "bob"]);
        assert!(found.next_page_token.is_empty());
        let found = list(
            &mut admin,
            &token,
            pb::ListUsersRequest {
                search: "%".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(names(&found.users), ["odd_1"]);
        let found = list(
            &mut admin,
            &token,
            pb::ListUsersRequest {
                search: "c_d".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(found.users.is_empty(), "{found:?}");

        // Paging: every account once, in order.
        let mut seen = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = list(
                &mut admin,
                &token,
                pb::ListUsersRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert!(page.users.len() <= 2);
            seen.extend(names(&page.users));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!(seen, ["root", "Anna", "bob", "cid", "odd_1"]);

        // Status filter.
        sqlx::query("UPDATE users SET status = 'disabled' WHERE username = 'cid'")
            .execute(&db)
            .await
            .unwrap();
        let disabled = list(
            &mut admin,
            &token,
            pb::ListUsersRequest {
                status: pb::AccountStatus::Disabled as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(names(&disabled.users), ["cid"]);
        assert_eq!(disabled.users[0].status, pb::AccountStatus::Disabled as i32);

        // Bad requests name their field.
        for (request, field) in [
            (
                pb::ListUsersRequest {
                    page_size: 201,
                    ..Default::default()
                },
                "page_size",
            ),
            (
                pb::ListUsersRequest {
                    page_size: -1,
                    ..Default::default()
                },
                "page_size",
            ),
            (
                pb::ListUsersRequest {
                    page_token: "not-a-token".into(),
                    ..Default::default()
                },
                "page_token",
            ),
            (
                pb::ListUsersRequest {
                    status: 42,
                    ..Default::default()
                },
                "status",
            ),
            (
                pb::ListUsersRequest {
                    search: "x".repeat(201),
                    ..Default::default()
                },
                "search",
            ),
        ] {
            assert_invalid(list(&mut admin, &token, request).await, field);
        }
        // GetUser: a missing id is NOT_FOUND.
        let status = admin
            .get_user(authed(pb::GetUserRequest { id: 9999 }, &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(
    administrators_disable_enable_approve_and_delete,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let mut admin = admin_client(&server).await;
        let db = server.database().await;
        let root = register(&mut client, "root", "root password", None).await;
        let token = root.access_token.clone();
        let root_id = root.user.unwrap().id;
        let ann = register(&mut client, "ann", "ann password", None).await;
        let ann_id = ann.user.unwrap().id;

        // Disabling ends every session and stops sign-in.
        let user = admin
            .disable_user(authed(pb::DisableUserRequest { id: ann_id }, &token))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(user.status, pb::AccountStatus::Disabled as i32);
        assert_eq!(
            refresh(&mut client, &ann.refresh_token).await.unwrap_err().code(),
            Code::Unauthenticated
        );
        assert_eq!(
            login(&mut client, "ann", "ann password").await.unwrap_err().code(),
            Code::PermissionDenied
        );
        // Again: nothing more changes.
        admin
            .disable_user(authed(pb::DisableUserRequest { id: ann_id }, &token))
            .await
            .unwrap();
        // Approving is only for accounts awaiting it.
        let status = admin
            .approve_user(authed(pb::ApproveUserRequest { id: ann_id }, &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        let user = admin
            .enable_user(authed(pb::EnableUserRequest { id: ann_id }, &token))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(user.status, pb::AccountStatus::Active as i32);
        login(&mut client, "ann", "ann password").await.unwrap();

        // A pending account cannot sign in until approved, and says why.
        register(&mut client, "pat", "pat password", None).await;
        sqlx::query("UPDATE users SET status = 'pending' WHERE username = 'pat'")
            .execute(&db)
            .await
            .unwrap();
        let status = login(&mut client, "pat", "pat password").await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("awaiting approval"), "{status:?}");
        let pat_id: (i64,) = sqlx::query_as("SELECT id FROM users WHERE username = 'pat'")
            .fetch_one(&db)
            .await
            .unwrap();
        let status = admin
            .enable_user(authed(pb::EnableUserRequest { id: pat_id.0 }, &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let user = admin
            .approve_user(authed(pb::ApproveUserRequest { id: pat_id.0 }, &token))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(user.status, pb::AccountStatus::Active as i32);
        login(&mut client, "pat", "pat password").await.unwrap();

        // Not on one's own account.
        let status = admin
            .disable_user(authed(pb::DisableUserRequest { id: root_id }, &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let status = admin
            .delete_user(authed(pb::DeleteUserRequest { id: root_id }, &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);

        // Deleting removes the account and everything it had.
        admin
            .delete_user(authed(pb::DeleteUserRequest { id: ann_id }, &token))
            .await
            .unwrap();
        for id in [ann_id, 9999] {
            let status = admin
                .get_user(authed(pb::GetUserRequest { id }, &token))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::NotFound);
            let status = admin
                .delete_user(authed(pb::DeleteUserRequest { id }, &token))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::NotFound);
        }
        assert_eq!(
            login(&mut client, "ann", "ann password").await.unwrap_err().code(),
            Code::Unauthenticated
        );
        // A demoted administrator loses the rights at once, whatever its token says.
        sqlx::query("UPDATE users SET role = 'user'")
            .execute(&db)
            .await
            .unwrap();
        let status = admin
            .list_users(authed(pb::ListUsersRequest::default(), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        server.stop().await;
    }
);

// --admin-username names an administrator: one that signs up later becomes one, and an
// existing account is made one at start-up.
parley_testkit::on_every_backend!(an_administrator_named_by_flag, |db_url: String| async move {
    let dir = tempfile::tempdir().unwrap();
    let start_named = |name: &str| {
        let mailer = user_service::test_support::RecordingMailer::new();
        let mut config = user_service::Config::new(&db_url, dir.path().to_path_buf());
        config.mailer = std::sync::Arc::new(mailer.clone());
        config.rules.admin_username = Some(name.to_string());
        TestServer::start_with(config, mailer)
    };
    let server = start_named("Boss").await;
    let mut client = server.client().await;
    register(&mut client, "first", "first password", None).await;
    let carl = register(&mut client, "carl", "carl password", None).await;
    let boss = register(&mut client, "boss", "boss password", None).await;
    assert_eq!(carl.user.unwrap().role, pb::Role::User as i32);
    assert_eq!(boss.user.unwrap().role, pb::Role::Admin as i32);
    server.stop().await;

    let server = start_named("carl").await;
    let mut client = server.client().await;
    let carl = login(&mut client, "carl", "carl password").await.unwrap();
    assert_eq!(carl.user.unwrap().role, pb::Role::Admin as i32);
    server.stop().await;
});
