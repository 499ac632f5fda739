//! Quotas: each one refuses the write past its limit (RESOURCE_EXHAUSTED naming it) and
//! changes nothing; administrators override them per account and see every account's usage;
//! nobody else can; concurrent writes cannot pass a limit together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::quota_service_client::QuotaServiceClient;
use parley_proto::user::v1 as user_pb;
use parley_testkit::{on_every_backend, wait};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Limits small enough to reach, every other quota unlimited.
fn limits(adjust: impl FnOnce(&mut chat_service::QuotaLimits)) -> impl FnOnce(&mut chat_service::Config) {
    move |config| {
        let mut quotas = chat_service::QuotaLimits {
            stored_bytes: 0,
            sessions: 0,
            personas: 0,
            api_configs: 0,
            messages_per_day: 0,
        };
        adjust(&mut quotas);
        config.quotas = quotas;
    }
}

async fn quotas(stack: &Stack) -> QuotaServiceClient<Channel> {
    QuotaServiceClient::new(wait::channel(stack.chat_address()).await)
}

/// The user's account id (the token's `aid`), as user-service shows it.
async fn account_id(stack: &Stack, user: &User) -> String {
    stack
        .users()
        .await
        .get_me(authed(user_pb::GetMeRequest {}, &user.token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .account_id
}

async fn my_quota(stack: &Stack, user: &User) -> pb::AccountQuota {
    quotas(stack)
        .await
        .get_my_quota(user.req(pb::GetMyQuotaRequest {}))
        .await
        .unwrap()
        .into_inner()
        .quota
        .unwrap()
}

/// Asserts RESOURCE_EXHAUSTED naming `quota` and `limit` (in the message and the ErrorInfo).
fn assert_quota_exceeded<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    quota: &str,
    limit: i64,
) -> tonic::Status {
    let status = result.expect_err("expected RESOURCE_EXHAUSTED");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(quota), "{status:?}");
    assert!(status.message().contains(&limit.to_string()), "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "QUOTA_EXCEEDED");
    assert_eq!(info.metadata.get("quota").map(String::as_str), Some(quota));
    assert_eq!(info.metadata.get("limit"), Some(&limit.to_string()));
    status
}

fn titled(title: &str) -> pb::CreateSessionRequest {
    pb::CreateSessionRequest {
        title: Some(title.into()),
        ..Default::default()
    }
}

async fn create_session(user: &User, request: pb::CreateSessionRequest) -> Result<pb::Session, tonic::Status> {
    user.sessions()
        .create_session(user.req(request))
        .await
        .map(|r| r.into_inner().session.unwrap())
}

async fn create_persona(user: &User, name: &str, prompt: &str) -> Result<pb::Persona, tonic::Status> {
    user.personas()
        .create_persona(user.req(pb::CreatePersonaRequest {
            name: name.into(),
            description: String::new(),
            system_prompt: prompt.into(),
            ..Default::default()
        }))
        .await
        .map(|r| r.into_inner().persona.unwrap())
}

async fn send(
    user: &User,
    session_id: i64,
    content: &str,
) -> Result<tonic::Streaming<pb::SendMessageResponse>, tonic::Status> {
    user.messages()
        .send_message(user.req(pb::SendMessageRequest {
            session_id,
            content: content.into(),
            api_config_id: None,
            version_of_id: None,
        }))
        .await
        .map(tonic::Response::into_inner)
}

on_every_backend!(counted_quotas_refuse_the_one_past_the_limit, |url: String| async move {
    let stack = Stack::start_with(
        &url,
        limits(|q| {
            q.sessions = 2;
            q.personas = 1;
            q.api_configs = 1;
        }),
    )
    .await;
    let ada = stack.user("ada").await;
    let db = stack.database().await;

    create_session(&ada, titled("one")).await.unwrap();
    create_session(&ada, titled("two")).await.unwrap();
    assert_quota_exceeded(create_session(&ada, titled("three")).await, "sessions", 2);
    assert_eq!(count_rows(&db, "chat_sessions").await, 2);

    create_persona(&ada, "first", "Be brief.").await.unwrap();
    assert_quota_exceeded(create_persona(&ada, "second", "Be long.").await, "personas", 1);
    assert_eq!(count_rows(&db, "personas WHERE user_id IS NOT NULL").await, 1);

    stack.fake_config(&ada, "first").await;
    let second = ada
        .configs()
        .create_api_config(ada.req(pb::CreateApiConfigRequest {
            name: "second".into(),
            base_url: stack.fake.base_url(),
            api_key: stack.fake.api_key(),
            model: "fake-model".into(),
        }))
        .await;
    assert_quota_exceeded(second, "api_configs", 1);
    assert_eq!(count_rows(&db, "api_configs").await, 1);

    // Deleting one makes room again.
    let sessions = ada
        .sessions()
        .list_sessions(ada.req(pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    ada.sessions()
        .delete_session(ada.req(pb::DeleteSessionRequest { id: sessions[0].id }))
        .await
        .unwrap();
    create_session(&ada, titled("three")).await.unwrap();

    let quota = my_quota(&stack, &ada).await;
    let usage = quota.usage.unwrap();
    assert_eq!((usage.sessions, usage.personas, usage.api_configs), (2, 1, 1));
    assert_eq!(quota.limits.unwrap().sessions, 2);
    stack.stop().await;
});

on_every_backend!(
    messages_per_day_refuse_sends_and_regenerations_until_midnight,
    |url: String| async move {
        let stack = Stack::start_with(&url, limits(|q| q.messages_per_day = 2)).await;
        let ada = stack.user("ada").await;
        stack.fake_config(&ada, "fake").await;
        let session = create_session(&ada, titled("daily")).await.unwrap();
        let db = stack.database().await;

        let first = collect_send(send(&ada, session.id, "one").await.unwrap()).await;
        ada.wait_finished(started_id(&first)).await;
        // A regeneration counts too.
        ada.messages()
            .regenerate_message(ada.req(pb::RegenerateMessageRequest {
                message_id: started_id(&first),
                api_config_id: None,
            }))
            .await
            .unwrap();
        let messages = wait::eventually(
            "the regeneration to finish",
            std::time::Duration::from_secs(10),
            || async {
                let messages = ada.list_messages(session.id).await;
                messages
                    .iter()
                    .all(|m| m.status != pb::MessageStatus::Streaming as i32)
                    .then_some(messages)
            },
        )
        .await;
        let stored = count_rows(&db, "chat_messages").await;

        let refused = assert_quota_exceeded(send(&ada, session.id, "three").await, "messages_per_day", 2);
        let info = refused.get_details_error_info().unwrap();
        let resets_at = info.metadata.get("resets_at").expect("resets_at");
        assert!(resets_at.ends_with("T00:00:00Z"), "{resets_at}");
        assert!(refused.message().contains(resets_at.as_str()), "{refused:?}");
        let retry = parley_service_kit::grpc_status::retry_delay(&refused).expect("a retry delay");
        assert!(retry <= std::time::Duration::from_secs(86_400), "{retry:?}");
        let again = ada
            .messages()
            .regenerate_message(ada.req(pb::RegenerateMessageRequest {
                message_id: messages.last().unwrap().id,
                api_config_id: None,
            }))
            .await;
        assert_quota_exceeded(again, "messages_per_day", 2);
        assert_eq!(count_rows(&db, "chat_messages").await, stored);

        // Deleting the chat does not give the day's messages back.
        ada.sessions()
            .delete_session(ada.req(pb::DeleteSessionRequest { id: session.id }))
            .await
            .unwrap();
        let other = create_session(&ada, titled("another")).await.unwrap();
        assert_quota_exceeded(send(&ada, other.id, "four").await, "messages_per_day", 2);
        let quota = my_quota(&stack, &ada).await;
        assert_eq!(quota.usage.unwrap().messages_today, 2);
        let reset = quota.messages_reset_at.unwrap();
        assert_eq!(reset.seconds % 86_400, 0);
        stack.stop().await;
    }
);

on_every_backend!(stored_bytes_count_prompts_and_messages, |url: String| async move {
    let stack = Stack::start_with(&url, limits(|q| q.stored_bytes = 300)).await;
    let ada = stack.user("ada").await;
    stack.fake_config(&ada, "fake").await;
    let db = stack.database().await;

    // 100 bytes of session prompt and 150 of persona prompt ("é" is two bytes).
    let session = create_session(
        &ada,
        pb::CreateSessionRequest {
            title: Some("bytes".into()),
            system_prompt: Some("é".repeat(50)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let persona = create_persona(&ada, "p", &"x".repeat(150)).await.unwrap();
    assert_eq!(my_quota(&stack, &ada).await.usage.unwrap().stored_bytes, 250);

    // 51 more bytes would make 301.
    assert_quota_exceeded(send(&ada, session.id, &"q".repeat(51)).await, "stored_bytes", 300);
    assert_eq!(count_rows(&db, "chat_messages").await, 0);
    // Growing a prompt past the limit is refused, and leaves it as it was.
    let grown = ada
        .personas()
        .update_persona(ada.req(pb::UpdatePersonaRequest {
            id: persona.id,
            system_prompt: Some("x".repeat(201)),
            ..Default::default()
        }))
        .await;
    assert_quota_exceeded(grown, "stored_bytes", 300);
    let listed = ada
        .personas()
        .list_personas(ada.req(pb::ListPersonasRequest {}))
        .await
        .unwrap()
        .into_inner()
        .personas;
    let kept = listed.iter().find(|p| p.id == persona.id).unwrap();
    assert_eq!(kept.system_prompt.len(), 150);
    assert_quota_exceeded(
        create_session(
            &ada,
            pb::CreateSessionRequest {
                system_prompt: Some("y".repeat(51)),
                ..Default::default()
            },
        )
        .await,
        "stored_bytes",
        300,
    );
    assert_eq!(count_rows(&db, "chat_sessions").await, 1);

    // Shrinking always works; then the question fits, and its answer is stored whatever its size.
    ada.personas()
        .update_persona(ada.req(pb::UpdatePersonaRequest {
            id: persona.id,
            system_prompt: Some("x".repeat(10)),
            ..Default::default()
        }))
        .await
        .unwrap();
    let events = collect_send(send(&ada, session.id, "hello").await.unwrap()).await;
    let answer = ada.wait_finished(started_id(&events)).await;
    let usage = my_quota(&stack, &ada).await.usage.unwrap();
    assert_eq!(usage.stored_bytes, 100 + 10 + 5 + answer.content.len() as i64);
    stack.stop().await;
});

on_every_backend!(
    overrides_apply_and_clearing_one_returns_to_the_default,
    |url: String| async move {
        let stack = Stack::start_with(&url, limits(|q| q.sessions = 1)).await;
        // The first account administers the instance.
        let admin = stack.user("admin").await;
        let bob = stack.user("bob").await;
        let bob_account = account_id(&stack, &bob).await;
        let mut quotas = quotas(&stack).await;

        create_session(&bob, titled("one")).await.unwrap();
        assert_quota_exceeded(create_session(&bob, titled("two")).await, "sessions", 1);

        let updated = quotas
            .update_account_quota(admin.req(pb::UpdateAccountQuotaRequest {
                account_id: bob_account.clone(),
                sessions: Some(3),
                messages_per_day: Some(7),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .quota
            .unwrap();
        assert_eq!(updated.limits.unwrap().sessions, 3);
        assert_eq!(updated.overrides.unwrap().sessions, Some(3));
        assert_eq!(updated.defaults.unwrap().sessions, 1);

        create_session(&bob, titled("two")).await.unwrap();
        create_session(&bob, titled("three")).await.unwrap();
        assert_quota_exceeded(create_session(&bob, titled("four")).await, "sessions", 3);
        // The admin's own limit did not change.
        create_session(&admin, titled("mine")).await.unwrap();
        assert_quota_exceeded(create_session(&admin, titled("mine too")).await, "sessions", 1);

        let seen = my_quota(&stack, &bob).await;
        assert_eq!(seen.limits.unwrap().sessions, 3);
        assert_eq!(seen.usage.unwrap().sessions, 3);

        // Masked and unset: the override goes, the default is back; the other one stays.
        let cleared = quotas
            .update_account_quota(admin.req(pb::UpdateAccountQuotaRequest {
                account_id: bob_account.clone(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["sessions".into()],
                }),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .quota
            .unwrap();
        assert_eq!(cleared.overrides.unwrap().sessions, None);
        assert_eq!(cleared.limits.unwrap().sessions, 1);
        assert_eq!(cleared.limits.unwrap().messages_per_day, 7);

        // 0: unlimited for this account.
        quotas
            .update_account_quota(admin.req(pb::UpdateAccountQuotaRequest {
                account_id: bob_account.clone(),
                sessions: Some(0),
                ..Default::default()
            }))
            .await
            .unwrap();
        create_session(&bob, titled("four")).await.unwrap();

        // Bad input changes nothing.
        let before = quotas
            .get_account_quota(admin.req(pb::GetAccountQuotaRequest {
                account_id: bob_account.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .quota
            .unwrap();
        assert_invalid(
            quotas
                .update_account_quota(admin.req(pb::UpdateAccountQuotaRequest {
                    account_id: bob_account.clone(),
                    personas: Some(-1),
                    ..Default::default()
                }))
                .await,
            "personas",
        );
        assert_invalid(
            quotas
                .update_account_quota(admin.req(pb::UpdateAccountQuotaRequest {
                    account_id: "not-a-uuid".into(),
                    personas: Some(1),
                    ..Default::default()
                }))
                .await,
            "account_id",
        );
        let after = quotas
            .get_account_quota(admin.req(pb::GetAccountQuotaRequest {
                account_id: bob_account.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .quota
            .unwrap();
        assert_eq!(before.overrides, after.overrides);

        // An override set before the account's first chat holds from its first request.
        let carol = stack.user("carol").await;
        let carol_account = account_id(&stack, &carol).await;
        quotas
            .update_account_quota(admin.req(pb::UpdateAccountQuotaRequest {
                account_id: carol_account,
                sessions: Some(2),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert_eq!(my_quota(&stack, &carol).await.limits.unwrap().sessions, 2);
        stack.stop().await;
    }
);

on_every_backend!(only_administrators_see_and_change_quotas, |url: String| async move {
    let stack = Stack::start(&url).await;
    let admin = stack.user("admin").await;
    let bob = stack.user("bob").await;
    let admin_account = account_id(&stack, &admin).await;
    let mut quotas = quotas(&stack).await;
    let db = stack.database().await;

    assert_code(
        quotas
            .list_account_usage(bob.req(pb::ListAccountUsageRequest::default()))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        quotas
            .get_account_quota(bob.req(pb::GetAccountQuotaRequest {
                account_id: admin_account.clone(),
            }))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        quotas
            .update_account_quota(bob.req(pb::UpdateAccountQuotaRequest {
                account_id: account_id(&stack, &bob).await,
                sessions: Some(0),
                ..Default::default()
            }))
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(count_rows(&db, "chat_quota_overrides").await, 0);
    // Without a token: UNAUTHENTICATED, like every other method.
    assert_code(
        quotas.get_my_quota(pb::GetMyQuotaRequest {}).await,
        Code::Unauthenticated,
    );
    stack.stop().await;
});

on_every_backend!(
    usage_is_each_accounts_own_and_listed_for_administrators,
    |url: String| async move {
        let stack = Stack::start(&url).await;
        let admin = stack.user("admin").await;
        let bob = stack.user("bob").await;
        let (admin_account, bob_account) = (account_id(&stack, &admin).await, account_id(&stack, &bob).await);

        stack.fake_config(&bob, "fake").await;
        let session = create_session(&bob, titled("bob's")).await.unwrap();
        let events = collect_send(send(&bob, session.id, "hello").await.unwrap()).await;
        let answer = bob.wait_finished(started_id(&events)).await;
        let tokens = answer.usage.unwrap();
        create_persona(&admin, "mine", "Admin's prompt.").await.unwrap();

        let bob_sees = my_quota(&stack, &bob).await;
        assert_eq!(bob_sees.account_id, bob_account);
        let usage = bob_sees.usage.unwrap();
        assert_eq!(
            (usage.sessions, usage.messages, usage.personas, usage.api_configs),
            (1, 2, 0, 1)
        );
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens),
            (tokens.prompt_tokens, tokens.completion_tokens)
        );
        assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0, "{usage:?}");
        assert_eq!(usage.stored_bytes, 5 + answer.content.len() as i64);
        assert_eq!(usage.messages_today, 1);
        let admin_sees = my_quota(&stack, &admin).await.usage.unwrap();
        assert_eq!(
            (admin_sees.sessions, admin_sees.personas, admin_sees.messages),
            (0, 1, 0)
        );
        assert_eq!(admin_sees.stored_bytes, "Admin's prompt.".len() as i64);

        // Paged, oldest account first.
        let mut quotas = quotas(&stack).await;
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = quotas
                .list_account_usage(admin.req(pb::ListAccountUsageRequest {
                    page_size: 1,
                    page_token: token.clone(),
                    account_ids: Vec::new(),
                }))
                .await
                .unwrap()
                .into_inner();
            assert!(page.accounts.len() <= 1);
            seen.extend(page.accounts);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let listed: Vec<&str> = seen.iter().map(|a| a.account_id.as_str()).collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.contains(&admin_account.as_str()) && listed.contains(&bob_account.as_str()));
        let bob_listed = seen.iter().find(|a| a.account_id == bob_account).unwrap();
        assert_eq!(bob_listed.usage, Some(usage));

        // By account ids, in the order asked; an account never seen has nothing.
        let unseen = "00000000-0000-4000-8000-000000000000".to_owned();
        let asked = quotas
            .list_account_usage(admin.req(pb::ListAccountUsageRequest {
                account_ids: vec![bob_account.clone(), unseen.clone()],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = asked.accounts.iter().map(|a| a.account_id.as_str()).collect();
        assert_eq!(ids, [bob_account.as_str(), unseen.as_str()]);
        assert_eq!(asked.accounts[1].usage, Some(pb::AccountUsage::default()));
        assert_invalid(
            quotas
                .list_account_usage(admin.req(pb::ListAccountUsageRequest {
                    page_token: "garbage".into(),
                    ..Default::default()
                }))
                .await,
            "page_token",
        );
        stack.stop().await;
    }
);

on_every_backend!(
    concurrent_writes_cannot_pass_a_limit_together,
    |url: String| async move {
        let stack = Stack::start_with(&url, limits(|q| q.sessions = 5)).await;
        let ada = stack.user("ada").await;
        let attempts = (0..20).map(|i| {
            let ada = ada.clone();
            tokio::spawn(async move { create_session(&ada, titled(&format!("s{i}"))).await })
        });
        let mut created = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await.unwrap() {
                Ok(_) => created += 1,
                Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
            }
        }
        assert_eq!(created, 5);
        assert_eq!(count_rows(&stack.database().await, "chat_sessions").await, 5);
        stack.stop().await;
    }
);
