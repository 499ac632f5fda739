//! Shared connections: administrators add provider settings that granted users chat with
//! without ever seeing the key; every answer's tokens are recorded per account, connection,
//! model and day, with cost at the administrator's prices; token limits answer
//! RESOURCE_EXHAUSTED before the provider is called.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::shared_connection_service_client::SharedConnectionServiceClient;
use parley_proto::chat::v1::usage_service_client::UsageServiceClient;
use parley_testkit::{on_every_backend, wait};
use tonic::Code;
use tonic::transport::Channel;

/// The `aid` claim of an access token: the account id grants name.
fn account_of(user: &User) -> String {
    let payload = user.token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&json).unwrap();
    claims["aid"].as_str().unwrap().to_owned()
}

async fn shared(stack: &Stack) -> SharedConnectionServiceClient<Channel> {
    SharedConnectionServiceClient::new(wait::channel(stack.chat_address()).await)
}

async fn usage(stack: &Stack) -> UsageServiceClient<Channel> {
    UsageServiceClient::new(wait::channel(stack.chat_address()).await)
}

/// 1 micro-unit per prompt token and 2 per completion token on fake-model; fake-reasoner free.
fn priced_models() -> Vec<pb::SharedModel> {
    vec![
        pb::SharedModel {
            model: "fake-model".into(),
            prompt_price_micros: 1_000_000,
            completion_price_micros: 2_000_000,
        },
        pb::SharedModel {
            model: "fake-reasoner".into(),
            prompt_price_micros: 0,
            completion_price_micros: 0,
        },
    ]
}

fn new_connection(stack: &Stack, name: &str) -> pb::CreateSharedConnectionRequest {
    pb::CreateSharedConnectionRequest {
        name: name.into(),
        base_url: stack.fake.base_url(),
        api_key: stack.fake.api_key(),
        models: priced_models(),
        currency: "usd".into(),
        daily_token_limit: 0,
        monthly_token_limit: 0,
        everyone: false,
    }
}

async fn create(stack: &Stack, admin: &User, request: pb::CreateSharedConnectionRequest) -> pb::SharedConnection {
    shared(stack)
        .await
        .create_shared_connection(admin.req(request))
        .await
        .unwrap()
        .into_inner()
        .shared_connection
        .unwrap()
}

async fn grant(stack: &Stack, admin: &User, id: i64, grantee: pb::grant_shared_connection_request::Grantee) {
    shared(stack)
        .await
        .grant_shared_connection(admin.req(pb::GrantSharedConnectionRequest {
            id,
            grantee: Some(grantee),
        }))
        .await
        .unwrap();
}

async fn send_through(
    user: &User,
    session_id: i64,
    content: &str,
) -> Result<Vec<pb::chat_event::Event>, tonic::Status> {
    let stream = user
        .messages()
        .send_message(user.req(pb::SendMessageRequest {
            session_id,
            content: content.into(),
            api_config_id: None,
            version_of_id: None,
        }))
        .await?
        .into_inner();
    Ok(collect_send(stream).await)
}

fn completed(events: &[pb::chat_event::Event]) -> pb::Message {
    events
        .iter()
        .find_map(|e| match e {
            pb::chat_event::Event::Completed(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no completed event: {:?}", kinds(events)))
}

async fn my_usage(stack: &Stack, user: &User, grouping: pb::UsageGrouping) -> Vec<pb::UsageRow> {
    usage(stack)
        .await
        .get_my_usage(user.req(pb::GetMyUsageRequest {
            grouping: grouping as i32,
            start_date: String::new(),
            end_date: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .rows
}

on_every_backend!(
    only_administrators_manage_shared_connections,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        // The first account is the administrator.
        let admin = stack.user("admin").await;
        let alice = stack.user("alice").await;
        let db = stack.database().await;
        let mut client = shared(&stack).await;

        assert_code(
            client
                .create_shared_connection(alice.req(new_connection(&stack, "team")))
                .await,
            Code::PermissionDenied,
        );
        assert_code(
            client
                .list_shared_connections(alice.req(pb::ListSharedConnectionsRequest {}))
                .await,
            Code::PermissionDenied,
        );
        assert_code(
            usage(&stack)
                .await
                .list_usage(alice.req(pb::ListUsageRequest::default()))
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(count_rows(&db, "shared_connections").await, 0);

        // Bad input names its field and stores nothing.
        let mut no_models = new_connection(&stack, "team");
        no_models.models.clear();
        assert_invalid(client.create_shared_connection(admin.req(no_models)).await, "models");
        let mut no_currency = new_connection(&stack, "team");
        no_currency.currency.clear();
        assert_invalid(
            client.create_shared_connection(admin.req(no_currency)).await,
            "currency",
        );
        let mut negative = new_connection(&stack, "team");
        negative.daily_token_limit = -1;
        assert_invalid(
            client.create_shared_connection(admin.req(negative)).await,
            "daily_token_limit",
        );
        assert_eq!(count_rows(&db, "shared_connections").await, 0);
        assert_eq!(count_rows(&db, "api_configs").await, 0);

        let created = create(&stack, &admin, new_connection(&stack, "team")).await;
        assert_eq!(created.currency, "USD");
        assert_eq!(created.models, priced_models());
        assert_eq!(created.base_url, stack.fake.base_url());
        assert!(!created.api_key_hint.is_empty());
        assert!(!format!("{created:?}").contains(&stack.fake.api_key()));
        // A request's Debug never prints the key.
        let printed = format!("{:?}", new_connection(&stack, "team"));
        assert!(!printed.contains(&stack.fake.api_key()), "{printed}");
        assert_code(
            client
                .create_shared_connection(admin.req(new_connection(&stack, "team")))
                .await,
            Code::AlreadyExists,
        );
        // Not one of the administrator's own configs.
        let own = admin
            .configs()
            .list_api_configs(admin.req(pb::ListApiConfigsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .api_configs;
        assert!(own.is_empty(), "{own:?}");

        // Like UpdateApiConfig: a new base URL needs the key again.
        assert_invalid(
            client
                .update_shared_connection(admin.req(pb::UpdateSharedConnectionRequest {
                    id: created.id,
                    base_url: Some("https://collector.example.net/v1".into()),
                    ..Default::default()
                }))
                .await,
            "api_key",
        );
        let updated = client
            .update_shared_connection(admin.req(pb::UpdateSharedConnectionRequest {
                id: created.id,
                name: Some("ignored: not in the mask".into()),
                daily_token_limit: Some(1000),
                monthly_token_limit: Some(20_000),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["daily_token_limit".into(), "monthly_token_limit".into()],
                }),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .shared_connection
            .unwrap();
        assert_eq!(
            (
                updated.name.as_str(),
                updated.daily_token_limit,
                updated.monthly_token_limit
            ),
            ("team", 1000, 20_000)
        );
        assert_eq!(updated.models, priced_models());

        // Grants by account id, and to everyone.
        let alice_account = account_of(&alice);
        grant(
            &stack,
            &admin,
            created.id,
            pb::grant_shared_connection_request::Grantee::AccountId(alice_account.clone()),
        )
        .await;
        grant(
            &stack,
            &admin,
            created.id,
            pb::grant_shared_connection_request::Grantee::Everyone(true),
        )
        .await;
        let listed = client
            .list_shared_connections(admin.req(pb::ListSharedConnectionsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .shared_connections;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].granted_account_ids, vec![alice_account]);
        assert!(listed[0].everyone);
        assert_code(
            client
                .grant_shared_connection(admin.req(pb::GrantSharedConnectionRequest {
                    id: created.id + 100,
                    grantee: Some(pb::grant_shared_connection_request::Grantee::Everyone(true)),
                }))
                .await,
            Code::NotFound,
        );
        assert_invalid(
            client
                .grant_shared_connection(admin.req(pb::GrantSharedConnectionRequest {
                    id: created.id,
                    grantee: None,
                }))
                .await,
            "grantee",
        );

        client
            .delete_shared_connection(admin.req(pb::DeleteSharedConnectionRequest { id: created.id }))
            .await
            .unwrap();
        assert_eq!(count_rows(&db, "shared_connections").await, 0);
        assert_eq!(count_rows(&db, "shared_connection_grants").await, 0);
        assert_eq!(count_rows(&db, "shared_connection_models").await, 0);
        assert_code(
            client
                .get_shared_connection(admin.req(pb::GetSharedConnectionRequest { id: created.id }))
                .await,
            Code::NotFound,
        );
        stack.stop().await;
    }
);

on_every_backend!(
    granted_users_chat_through_it_and_usage_is_recorded,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let admin = stack.user("admin").await;
        let alice = stack.user("alice").await;
        let bob = stack.user("bob").await;
        let connection = create(&stack, &admin, new_connection(&stack, "team")).await;
        grant(
            &stack,
            &admin,
            connection.id,
            pb::grant_shared_connection_request::Grantee::AccountId(account_of(&alice)),
        )
        .await;

        // Bob has no grant: the connection does not exist for him.
        let available = |user: User| {
            let stack = &stack;
            async move {
                shared(stack)
                    .await
                    .list_available_shared_connections(user.req(pb::ListAvailableSharedConnectionsRequest {}))
                    .await
                    .unwrap()
                    .into_inner()
                    .shared_connections
            }
        };
        assert!(available(bob.clone()).await.is_empty());
        assert_code(
            bob.sessions()
                .create_session(bob.req(pb::CreateSessionRequest {
                    api_config_id: Some(connection.id),
                    ..Default::default()
                }))
                .await,
            Code::NotFound,
        );
        assert_code(
            bob.configs()
                .get_api_config(bob.req(pb::GetApiConfigRequest { id: connection.id }))
                .await,
            Code::NotFound,
        );
        stack.fake_config(&bob, "own").await;
        let bobs_session = bob.create_session(pb::CreateSessionRequest::default()).await;
        assert_code(
            bob.messages()
                .send_message(bob.req(pb::SendMessageRequest {
                    session_id: bobs_session.id,
                    content: "through the shared one".into(),
                    api_config_id: Some(connection.id),
                    version_of_id: None,
                }))
                .await,
            Code::NotFound,
        );

        // Alice sees it without key or base URL, and chats through it.
        let offered = available(alice.clone()).await;
        assert_eq!(offered.len(), 1);
        assert_eq!((offered[0].id, offered[0].name.as_str()), (connection.id, "team"));
        assert_eq!(offered[0].models, priced_models());
        let shown = format!("{offered:?}");
        assert!(
            !shown.contains(&stack.fake.api_key()) && !shown.contains(&stack.fake.base_url()),
            "{shown}"
        );
        // Her own lookups do not reach it (its key is never hers to test or list models with).
        assert_code(
            alice
                .configs()
                .test_api_config(alice.req(pb::TestApiConfigRequest {
                    target: Some(pb::test_api_config_request::Target::Id(connection.id)),
                }))
                .await,
            Code::NotFound,
        );

        // Titled, so that the only model call is the answer's.
        let session = alice
            .create_session(pb::CreateSessionRequest {
                title: Some("through the team's connection".into()),
                api_config_id: Some(connection.id),
                ..Default::default()
            })
            .await;
        assert_eq!(session.api_config_id, Some(connection.id));
        let chats_before = stack.fake.chat_requests().len();
        stack.fake.push_reply(Reply::text("shared answer in five words"));
        let answer = completed(&send_through(&alice, session.id, "hello there").await.unwrap());
        let requests = stack.fake.chat_requests();
        assert_eq!(requests.len(), chats_before + 1);
        assert!(requests.last().unwrap().has_bearer(&stack.fake.api_key()));
        let tokens = answer.usage.expect("the fake reports usage");
        assert!(tokens.prompt_tokens > 0 && tokens.completion_tokens == 5, "{tokens:?}");

        // A model the administrator did not share is refused before anything is stored.
        let other_model = alice
            .create_session(pb::CreateSessionRequest {
                api_config_id: Some(connection.id),
                model: Some("unshared-model".into()),
                ..Default::default()
            })
            .await;
        assert_code(
            send_through(&alice, other_model.id, "hi").await,
            Code::FailedPrecondition,
        );
        assert!(alice.list_messages(other_model.id).await.is_empty());

        // Her own config's answers are recorded too, without cost.
        stack.fake_config(&alice, "mine").await;
        let own_session = alice.create_session(pb::CreateSessionRequest::default()).await;
        stack.fake.push_reply(Reply::text("own answer"));
        let own_answer = completed(&send_through(&alice, own_session.id, "hi").await.unwrap());
        let own_tokens = own_answer.usage.unwrap();

        let rows = my_usage(&stack, &alice, pb::UsageGrouping::Unspecified).await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        let through_shared = rows.iter().find(|r| r.shared).unwrap();
        assert_eq!(through_shared.connection_id, connection.id);
        assert_eq!(through_shared.connection_name, "team");
        assert_eq!(through_shared.model, "fake-model");
        assert_eq!(
            (
                through_shared.prompt_tokens,
                through_shared.completion_tokens,
                through_shared.answers
            ),
            (tokens.prompt_tokens, tokens.completion_tokens, 1)
        );
        // 1 micro per prompt token, 2 per completion token.
        assert_eq!(
            through_shared.cost_micros,
            tokens.prompt_tokens + 2 * tokens.completion_tokens
        );
        assert_eq!(through_shared.currency, "USD");
        let own = rows.iter().find(|r| !r.shared).unwrap();
        assert_eq!(
            (
                own.prompt_tokens,
                own.completion_tokens,
                own.cost_micros,
                own.currency.as_str()
            ),
            (own_tokens.prompt_tokens, own_tokens.completion_tokens, 0, "")
        );
        let by_day = my_usage(&stack, &alice, pb::UsageGrouping::Day).await;
        assert_eq!(by_day.len(), 2);
        assert_eq!(by_day[0].period.len(), "2026-12-03".len(), "{by_day:?}");
        // Available connections show what she used today.
        let used = available(alice.clone()).await[0].tokens_used_today;
        assert_eq!(used, tokens.prompt_tokens + tokens.completion_tokens);
        // Bob's usage is his own: his refused requests recorded nothing.
        assert!(my_usage(&stack, &bob, pb::UsageGrouping::Unspecified).await.is_empty());

        // The administrator sees usage per account and model.
        let all = usage(&stack)
            .await
            .list_usage(admin.req(pb::ListUsageRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .rows;
        let alices: Vec<&pb::UsageRow> = all.iter().filter(|r| r.account_id == account_of(&alice)).collect();
        assert_eq!(alices.len(), 2, "{all:?}");
        assert!(
            alices
                .iter()
                .any(|r| r.shared && r.cost_micros == through_shared.cost_micros)
        );
        assert_invalid(
            usage(&stack)
                .await
                .list_usage(admin.req(pb::ListUsageRequest {
                    start_date: "2026-02-30".into(),
                    ..Default::default()
                }))
                .await,
            "start_date",
        );

        // Revoked: NOT_FOUND again, and nothing reaches the provider.
        shared(&stack)
            .await
            .revoke_shared_connection(admin.req(pb::RevokeSharedConnectionRequest {
                id: connection.id,
                grantee: Some(pb::revoke_shared_connection_request::Grantee::AccountId(account_of(
                    &alice,
                ))),
            }))
            .await
            .unwrap();
        let chats_before = stack.fake.chat_requests().len();
        assert_code(send_through(&alice, session.id, "still there?").await, Code::NotFound);
        assert_eq!(stack.fake.chat_requests().len(), chats_before);

        // Deleting it sends its sessions back to their owner's default config.
        shared(&stack)
            .await
            .delete_shared_connection(admin.req(pb::DeleteSharedConnectionRequest { id: connection.id }))
            .await
            .unwrap();
        assert_eq!(alice.session(session.id).await.api_config_id, None);
        stack.stop().await;
    }
);

on_every_backend!(
    token_limits_stop_answers_before_the_provider_is_called,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let admin = stack.user("admin").await;
        let alice = stack.user("alice").await;
        let mut request = new_connection(&stack, "limited");
        request.everyone = true;
        request.daily_token_limit = 5;
        let connection = create(&stack, &admin, request).await;
        // Titled: no title request runs after the first answer.
        let session = alice
            .create_session(pb::CreateSessionRequest {
                title: Some("limited".into()),
                api_config_id: Some(connection.id),
                ..Default::default()
            })
            .await;
        // Under the limit when asked: answered, and its tokens take the day over it.
        let first = send_through(&alice, session.id, "one two three").await.unwrap();
        let answer = completed(&first);
        let messages_before = alice.list_messages(session.id).await.len();
        let chats_before = stack.fake.chat_requests().len();

        let status = send_through(&alice, session.id, "again").await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let tomorrow = {
            let day = parley_service_kit::database::now_millis().div_euclid(86_400_000) + 1;
            let date = chrono_free_date(day);
            format!("{date}T00:00:00Z")
        };
        assert!(status.message().contains("daily token limit of 5 tokens"), "{status:?}");
        assert!(status.message().contains("\"limited\""), "{status:?}");
        assert!(status.message().contains(&tomorrow), "{status:?} vs {tomorrow}");
        assert!(parley_service_kit::grpc_status::retry_delay(&status).is_some());
        let regenerated = alice
            .messages()
            .regenerate_message(alice.req(pb::RegenerateMessageRequest {
                message_id: answer.id,
                api_config_id: None,
            }))
            .await;
        assert_code(regenerated, Code::ResourceExhausted);
        assert_eq!(stack.fake.chat_requests().len(), chats_before);
        assert_eq!(alice.list_messages(session.id).await.len(), messages_before);

        // A monthly limit is named as such.
        shared(&stack)
            .await
            .update_shared_connection(admin.req(pb::UpdateSharedConnectionRequest {
                id: connection.id,
                daily_token_limit: Some(0),
                monthly_token_limit: Some(3),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["daily_token_limit".into(), "monthly_token_limit".into()],
                }),
                ..Default::default()
            }))
            .await
            .unwrap();
        let status = send_through(&alice, session.id, "again").await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("monthly token limit of 3 tokens"),
            "{status:?}"
        );
        assert!(status.message().contains("-01T00:00:00Z"), "{status:?}");

        // Raised: answers again.
        shared(&stack)
            .await
            .update_shared_connection(admin.req(pb::UpdateSharedConnectionRequest {
                id: connection.id,
                monthly_token_limit: Some(0),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["monthly_token_limit".into()],
                }),
                ..Default::default()
            }))
            .await
            .unwrap();
        completed(&send_through(&alice, session.id, "again").await.unwrap());
        stack.stop().await;
    }
);

/// "YYYY-MM-DD" of a day number (days since 1970-01-01), computed independently of the
/// service's calendar code (Howard Hinnant's algorithm written out once more would prove
/// nothing): by counting through the years and months.
fn chrono_free_date(mut day: i64) -> String {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut year = 1970;
    loop {
        let days = if leap(year) { 366 } else { 365 };
        if day < days {
            break;
        }
        day -= days;
        year += 1;
    }
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while day >= lengths[month] {
        day -= lengths[month];
        month += 1;
    }
    format!("{year:04}-{:02}-{:02}", month + 1, day + 1)
}
