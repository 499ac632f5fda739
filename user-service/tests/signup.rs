//! Who may sign up: the policy (flag, then an administrator's setting), approval, invite codes,
//! closed sign-up, and consent to the operator's terms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::user::v1 as pb;
use parley_proto::user::v1::admin_service_client::AdminServiceClient;
use tonic::Code;
use user_service::service::SignupPolicy;

async fn start_with_rules(
    db_url: &str,
    policy: SignupPolicy,
    terms_url: Option<&str>,
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mailer = user_service::test_support::RecordingMailer::new();
    let mut config = user_service::Config::new(db_url, dir.path().to_path_buf());
    config.mailer = std::sync::Arc::new(mailer.clone());
    config.rules.signup_policy = policy;
    config.rules.terms_url = terms_url.map(str::to_string);
    (TestServer::start_with(config, mailer).await, dir)
}

async fn try_register(
    client: &mut Client,
    request: pb::RegisterRequest,
) -> Result<pb::RegisterResponse, tonic::Status> {
    client.register(request).await.map(tonic::Response::into_inner)
}

fn named(username: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        username: username.into(),
        password: format!("{username} password"),
        ..Default::default()
    }
}

async fn signup_info(client: &mut Client) -> pb::GetSignupInfoResponse {
    // Public: no access token.
    client
        .get_signup_info(pb::GetSignupInfoRequest {})
        .await
        .unwrap()
        .into_inner()
}

parley_testkit::on_every_backend!(
    approval_keeps_new_accounts_waiting_until_approved,
    |db_url: String| async move {
        let (server, _dir) = start_with_rules(&db_url, SignupPolicy::Approval, None).await;
        let mut client = server.client().await;
        let mut admin = AdminServiceClient::new(server.channel().await);
        assert_eq!(signup_info(&mut client).await.policy, pb::SignupPolicy::Approval as i32);
        // The first account administers, so it needs no approval.
        let root = try_register(&mut client, named("root")).await.unwrap();
        let status = try_register(&mut client, named("pam")).await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("awaiting approval"), "{status:?}");
        let status = login(&mut client, "pam", "pam password").await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("awaiting approval"), "{status:?}");

        let pending = admin
            .list_users(authed(
                pb::ListUsersRequest {
                    status: pb::AccountStatus::Pending as i32,
                    ..Default::default()
                },
                &root.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .users;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].username, "pam");
        admin
            .approve_user(authed(pb::ApproveUserRequest { id: pending[0].id }, &root.access_token))
            .await
            .unwrap();
        let pam = login(&mut client, "pam", "pam password").await.unwrap();
        assert_eq!(pam.user.unwrap().status, pb::AccountStatus::Active as i32);
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(invite_codes_admit_as_many_as_they_allow, |db_url: String| async move {
    let (server, _dir) = start_with_rules(&db_url, SignupPolicy::Open, None).await;
    let mut client = server.client().await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let db = server.database().await;
    let root = try_register(&mut client, named("root")).await.unwrap();
    let token = root.access_token.clone();
    let user = try_register(&mut client, named("ann")).await.unwrap();

    // An administrator's setting overrides the flag, and only an administrator's.
    let status = admin
        .set_signup_policy(authed(
            pb::SetSignupPolicyRequest {
                policy: pb::SignupPolicy::Closed as i32,
            },
            &user.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let before = admin
        .get_signup_policy(authed(pb::GetSignupPolicyRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (before.policy, before.set_by_administrator),
        (pb::SignupPolicy::Open as i32, false)
    );
    assert_invalid(
        admin
            .set_signup_policy(authed(pb::SetSignupPolicyRequest { policy: 0 }, &token))
            .await,
        "policy",
    );
    admin
        .set_signup_policy(authed(
            pb::SetSignupPolicyRequest {
                policy: pb::SignupPolicy::Invite as i32,
            },
            &token,
        ))
        .await
        .unwrap();
    let after = admin
        .get_signup_policy(authed(pb::GetSignupPolicyRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (after.policy, after.set_by_administrator),
        (pb::SignupPolicy::Invite as i32, true)
    );
    assert_eq!(signup_info(&mut client).await.policy, pb::SignupPolicy::Invite as i32);

    // No code, or a wrong one: refused, nothing created.
    assert_invalid(try_register(&mut client, named("bob")).await, "invite_code");
    assert_invalid(
        try_register(
            &mut client,
            pb::RegisterRequest {
                invite_code: "made-up".into(),
                ..named("bob")
            },
        )
        .await,
        "invite_code",
    );
    assert_eq!(count_rows(&db, "users").await, 2);

    // Bad invites are refused.
    for (request, field) in [
        (
            pb::CreateInviteCodeRequest {
                max_uses: 1001,
                ..Default::default()
            },
            "max_uses",
        ),
        (
            pb::CreateInviteCodeRequest {
                expires_at: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
                ..Default::default()
            },
            "expires_at",
        ),
    ] {
        assert_invalid(admin.create_invite_code(authed(request, &token)).await, field);
    }

    let created = admin
        .create_invite_code(authed(
            pb::CreateInviteCodeRequest {
                max_uses: 2,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let code = created.code.clone();
    assert!(!code.is_empty());
    // A sign-up that fails (a taken name) uses none of it.
    let status = try_register(
        &mut client,
        pb::RegisterRequest {
            invite_code: code.clone(),
            ..named("ann")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    for name in ["bob", "cid"] {
        try_register(
            &mut client,
            pb::RegisterRequest {
                invite_code: code.clone(),
                ..named(name)
            },
        )
        .await
        .unwrap();
    }
    // Used up.
    assert_invalid(
        try_register(
            &mut client,
            pb::RegisterRequest {
                invite_code: code.clone(),
                ..named("dee")
            },
        )
        .await,
        "invite_code",
    );
    let listed = admin
        .list_invite_codes(authed(pb::ListInviteCodesRequest {}, &token))
        .await
        .unwrap()
        .into_inner()
        .invites;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].uses, listed[0].max_uses), (2, 2));
    // Codes are stored only as hashes.
    let (hash,): (String,) = sqlx::query_as("SELECT code_hash FROM invite_codes")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(!hash.contains(&code));

    // Revoked and expired codes admit nobody.
    let revoked = admin
        .create_invite_code(authed(pb::CreateInviteCodeRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    let invite = admin
        .revoke_invite_code(authed(
            pb::RevokeInviteCodeRequest {
                id: revoked.invite.unwrap().id,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .invite
        .unwrap();
    assert!(invite.revoked_at.is_some());
    assert_invalid(
        try_register(
            &mut client,
            pb::RegisterRequest {
                invite_code: revoked.code.clone(),
                ..named("dee")
            },
        )
        .await,
        "invite_code",
    );
    let expired = admin
        .create_invite_code(authed(pb::CreateInviteCodeRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    sqlx::query("UPDATE invite_codes SET expires_at = 1 WHERE id = $1")
        .bind(expired.invite.unwrap().id)
        .execute(&db)
        .await
        .unwrap();
    assert_invalid(
        try_register(
            &mut client,
            pb::RegisterRequest {
                invite_code: expired.code.clone(),
                ..named("dee")
            },
        )
        .await,
        "invite_code",
    );
    let status = admin
        .revoke_invite_code(authed(pb::RevokeInviteCodeRequest { id: 9999 }, &token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Closed: nobody, and nothing is created.
    admin
        .set_signup_policy(authed(
            pb::SetSignupPolicyRequest {
                policy: pb::SignupPolicy::Closed as i32,
            },
            &token,
        ))
        .await
        .unwrap();
    let users = count_rows(&db, "users").await;
    let status = try_register(&mut client, named("eve")).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("closed"), "{status:?}");
    assert_eq!(count_rows(&db, "users").await, users);
    server.stop().await;
});

// With terms published, sign-up needs consent and records when it was given.
parley_testkit::on_every_backend!(sign_up_records_consent_to_the_terms, |db_url: String| async move {
    let terms = "https://example.com/terms";
    let (server, _dir) = start_with_rules(&db_url, SignupPolicy::Open, Some(terms)).await;
    let mut client = server.client().await;
    let db = server.database().await;
    let info = signup_info(&mut client).await;
    assert_eq!(
        (info.policy, info.terms_url.as_str()),
        (pb::SignupPolicy::Open as i32, terms)
    );
    assert_invalid(try_register(&mut client, named("fay")).await, "accepted_terms");
    assert_eq!(count_rows(&db, "users").await, 0);
    let fay = try_register(
        &mut client,
        pb::RegisterRequest {
            accepted_terms: true,
            ..named("fay")
        },
    )
    .await
    .unwrap();
    let me = client
        .get_me(authed(pb::GetMeRequest {}, &fay.access_token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(me.terms_accepted_at.is_some());
    server.stop().await;

    // Without terms, none is asked for or recorded.
    let (server, _dir) = start_with_rules(&db_url, SignupPolicy::Open, None).await;
    let mut client = server.client().await;
    assert_eq!(signup_info(&mut client).await.terms_url, "");
    let gus = try_register(&mut client, named("gus")).await.unwrap();
    assert!(gus.user.unwrap().terms_accepted_at.is_none());
    server.stop().await;
});
