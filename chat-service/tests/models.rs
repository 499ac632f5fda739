//! The model picker (every model of every usable config, cached; favourites per account),
//! per-chat settings and per-account defaults reaching the provider, which config and model
//! wrote each answer, and ended chats. Every test runs on SQLite and, when configured,
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_defaults_service_client::ChatDefaultsServiceClient;
use parley_proto::chat::v1::model_service_client::ModelServiceClient;
use parley_proto::chat::v1::shared_connection_service_client::SharedConnectionServiceClient;
use parley_service_kit::grpc_status::{self, Reason};
use parley_testkit::{on_every_backend, wait};
use tonic::Code;
use tonic::transport::Channel;

async fn models(stack: &Stack) -> ModelServiceClient<Channel> {
    ModelServiceClient::new(wait::channel(stack.chat_address()).await)
}

async fn defaults(stack: &Stack) -> ChatDefaultsServiceClient<Channel> {
    ChatDefaultsServiceClient::new(wait::channel(stack.chat_address()).await)
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn list_models(stack: &Stack, user: &User, refresh: bool) -> pb::ListChatModelsResponse {
    models(stack)
        .await
        .list_chat_models(user.req(pb::ListChatModelsRequest { refresh }))
        .await
        .unwrap()
        .into_inner()
}

/// How many model lists the fake provider was asked for so far.
fn model_list_calls(stack: &Stack) -> usize {
    stack
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/models"))
        .count()
}

/// Sends `content` and answers the final (completed) answer.
async fn ask(user: &User, session_id: i64, content: &str) -> pb::Message {
    let events = collect_send(user.send(session_id, content).await).await;
    events
        .iter()
        .find_map(|e| match e {
            pb::chat_event::Event::Completed(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no completed event: {:?}", kinds(&events)))
}

/// The JSON body of the last chat completion request the fake provider received.
fn last_chat_request(stack: &Stack) -> serde_json::Value {
    stack.fake.chat_requests().last().expect("a chat request").body.clone()
}

fn assert_reason<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, reason: Reason) {
    let status = result.expect_err("expected a refusal");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(grpc_status::reason(&status), Some(reason), "{status:?}");
}

on_every_backend!(
    model_picker_lists_every_usable_config_cached,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        // The first account is an administrator: it shares a connection with Alice.
        let admin = stack.user("admin").await;
        let alice = stack.user("alice").await;
        let first = stack.fake_config(&alice, "first").await;
        let second = stack.fake_config(&alice, "second").await;
        let broken = alice
            .configs()
            .create_api_config(alice.req(pb::CreateApiConfigRequest {
                name: "wrong key".into(),
                base_url: stack.fake.base_url(),
                api_key: "sk-not-the-right-key".into(),
                model: "fake-model".into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .api_config
            .unwrap();
        let mut sharing = SharedConnectionServiceClient::new(wait::channel(stack.chat_address()).await);
        let team = sharing
            .create_shared_connection(admin.req(pb::CreateSharedConnectionRequest {
                name: "team".into(),
                base_url: stack.fake.base_url(),
                api_key: stack.fake.api_key(),
                models: vec![pb::SharedModel {
                    model: "fake-reasoner".into(),
                    ..Default::default()
                }],
                everyone: true,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .shared_connection
            .unwrap();

        let listed = list_models(&stack, &alice, false).await;
        let names: Vec<&str> = listed.groups.iter().map(|g| g.api_config_name.as_str()).collect();
        assert_eq!(names, ["first", "second", "wrong key", "team"]);
        for (group, config) in listed.groups.iter().zip([&first, &second]) {
            assert_eq!(group.api_config_id, config.id);
            assert!(!group.shared);
            assert_eq!(group.default_model, "fake-model");
            assert_eq!(group.models, ["fake-model", "fake-reasoner"]);
            assert!(group.error.is_empty());
            assert!(group.fetched_at.is_some());
        }
        // A provider that refuses leaves its config's own model, and says why.
        let refused = &listed.groups[2];
        assert_eq!(refused.api_config_id, broken.id);
        assert_eq!(refused.models, ["fake-model"]);
        assert!(!refused.error.is_empty());
        assert_eq!(refused.error_reason, "PROVIDER_AUTH_FAILED");
        // A shared connection offers what its administrator listed, without asking the provider.
        let shared = &listed.groups[3];
        assert_eq!((shared.api_config_id, shared.shared), (team.id, true));
        assert_eq!(shared.models, ["fake-reasoner"]);
        assert_eq!(model_list_calls(&stack), 3);

        // Answered from the cache (failed reads are not cached), until asked to refresh.
        list_models(&stack, &alice, false).await;
        assert_eq!(model_list_calls(&stack), 4);
        list_models(&stack, &alice, true).await;
        assert_eq!(model_list_calls(&stack), 7);
        // An edited config is asked again.
        alice
            .configs()
            .update_api_config(alice.req(pb::UpdateApiConfigRequest {
                id: first.id,
                name: Some("first renamed".into()),
                ..Default::default()
            }))
            .await
            .unwrap();
        let renamed = list_models(&stack, &alice, false).await;
        assert_eq!(renamed.groups[0].api_config_name, "first renamed");
        assert_eq!(model_list_calls(&stack), 9);

        // Bob sees only the shared connection granted to everyone, none of Alice's configs.
        let bob = stack.user("bob").await;
        let bobs = list_models(&stack, &bob, false).await;
        let names: Vec<&str> = bobs.groups.iter().map(|g| g.api_config_name.as_str()).collect();
        assert_eq!(names, ["team"]);
        stack.stop().await;
    }
);

on_every_backend!(favourites_are_kept_per_account, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let first = stack.fake_config(&alice, "first").await;
    let second = stack.fake_config(&alice, "second").await;
    let mut client = models(&stack).await;
    let add = |user: &User, api_config_id: i64, model: &str| {
        user.req(pb::AddFavoriteModelRequest {
            api_config_id,
            model: model.into(),
        })
    };

    let added = client
        .add_favorite_model(add(&alice, second.id, "fake-reasoner"))
        .await
        .unwrap()
        .into_inner()
        .favorite
        .unwrap();
    assert_eq!(
        (added.api_config_id, added.model.as_str()),
        (second.id, "fake-reasoner")
    );
    // Twice is once.
    let again = client
        .add_favorite_model(add(&alice, second.id, "fake-reasoner"))
        .await
        .unwrap()
        .into_inner()
        .favorite
        .unwrap();
    assert_eq!(again, added);
    client
        .add_favorite_model(add(&alice, first.id, "fake-model"))
        .await
        .unwrap();
    let favorites = client
        .list_favorite_models(alice.req(pb::ListFavoriteModelsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .favorites;
    assert_eq!(favorites.len(), 2);
    assert_eq!(list_models(&stack, &alice, false).await.favorites, favorites);

    assert_invalid(client.add_favorite_model(add(&alice, first.id, " ")).await, "model");
    assert_invalid(
        client.add_favorite_model(add(&alice, first.id, &"m".repeat(101))).await,
        "model",
    );
    assert_code(
        client.add_favorite_model(add(&alice, 999_999, "fake-model")).await,
        Code::NotFound,
    );

    // Bob has none, cannot mark Alice's configs, and cannot remove hers.
    let bobs = client
        .list_favorite_models(bob.req(pb::ListFavoriteModelsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .favorites;
    assert!(bobs.is_empty());
    assert_code(
        client.add_favorite_model(add(&bob, second.id, "fake-model")).await,
        Code::NotFound,
    );
    client
        .remove_favorite_model(bob.req(pb::RemoveFavoriteModelRequest {
            api_config_id: second.id,
            model: "fake-reasoner".into(),
        }))
        .await
        .unwrap();
    let still = client
        .list_favorite_models(alice.req(pb::ListFavoriteModelsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .favorites;
    assert_eq!(still.len(), 2);

    client
        .remove_favorite_model(alice.req(pb::RemoveFavoriteModelRequest {
            api_config_id: first.id,
            model: "fake-model".into(),
        }))
        .await
        .unwrap();
    // Deleting a config takes its favourites with it.
    alice
        .configs()
        .delete_api_config(alice.req(pb::DeleteApiConfigRequest { id: second.id }))
        .await
        .unwrap();
    let left = client
        .list_favorite_models(alice.req(pb::ListFavoriteModelsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .favorites;
    assert!(left.is_empty(), "{left:?}");
    stack.stop().await;
});

/// Without generated titles, every chat request the fake provider records is an answer.
async fn start_without_titles(db_url: &str) -> Stack {
    Stack::start_with(db_url, |config| config.generation.generate_titles = false).await
}

on_every_backend!(chat_settings_reach_the_provider, |db_url: String| async move {
    let stack = start_without_titles(&db_url).await;
    let alice = stack.user("alice").await;
    let first = stack.fake_config(&alice, "first").await;
    let second = stack.fake_config(&alice, "second").await;
    let mut sessions = alice.sessions();

    // Out of range: refused, naming the field, nothing stored.
    for (request, field) in [
        (
            pb::CreateSessionRequest {
                temperature: Some(2.5),
                ..Default::default()
            },
            "temperature",
        ),
        (
            pb::CreateSessionRequest {
                top_p: Some(1.5),
                ..Default::default()
            },
            "top_p",
        ),
        (
            pb::CreateSessionRequest {
                max_tokens: Some(0),
                ..Default::default()
            },
            "max_tokens",
        ),
    ] {
        assert_invalid(sessions.create_session(alice.req(request)).await, field);
    }

    let session = alice
        .create_session(pb::CreateSessionRequest {
            system_prompt: Some("Be brief.".into()),
            api_config_id: Some(first.id),
            temperature: Some(0.3),
            top_p: Some(0.5),
            max_tokens: Some(64),
            ..Default::default()
        })
        .await;
    assert_eq!(
        (session.temperature, session.top_p, session.max_tokens),
        (Some(0.3), Some(0.5), Some(64))
    );
    let answer = ask(&alice, session.id, "hello").await;
    assert_eq!(answer.model, "fake-model");
    assert_eq!(answer.api_config_name, "first");
    let sent = last_chat_request(&stack);
    assert_eq!(sent["model"], "fake-model");
    assert!((sent["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6, "{sent}");
    assert!((sent["top_p"].as_f64().unwrap() - 0.5).abs() < 1e-6, "{sent}");
    assert_eq!(sent["max_tokens"], 64);
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][0]["content"], "Be brief.");

    // Mid-conversation: another config and model, a new system prompt, other sampling.
    let update = |request: pb::UpdateSessionRequest| alice.req(request);
    assert_invalid(
        sessions
            .update_session(update(pb::UpdateSessionRequest {
                id: session.id,
                top_p: Some(-0.1),
                update_mask: mask(&["top_p"]),
                ..Default::default()
            }))
            .await,
        "top_p",
    );
    assert_invalid(
        sessions
            .update_session(update(pb::UpdateSessionRequest {
                id: session.id,
                max_tokens: Some(1_000_001),
                update_mask: mask(&["max_tokens"]),
                ..Default::default()
            }))
            .await,
        "max_tokens",
    );
    assert_eq!(
        alice.session(session.id).await.top_p,
        Some(0.5),
        "a refused update changes nothing"
    );
    let updated = sessions
        .update_session(update(pb::UpdateSessionRequest {
            id: session.id,
            api_config_id: Some(second.id),
            model: Some("fake-reasoner".into()),
            system_prompt: Some("Answer in French.".into()),
            temperature: Some(1.2),
            update_mask: mask(&[
                "api_config_id",
                "model",
                "system_prompt",
                "temperature",
                "top_p",
                "max_tokens",
            ]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    // Masked and unset: cleared (the provider's defaults).
    assert_eq!((updated.top_p, updated.max_tokens), (None, None));
    let answer = ask(&alice, session.id, "again").await;
    assert_eq!(answer.model, "fake-reasoner");
    assert_eq!(answer.api_config_name, "second");
    let sent = last_chat_request(&stack);
    assert_eq!(sent["model"], "fake-reasoner");
    assert!((sent["temperature"].as_f64().unwrap() - 1.2).abs() < 1e-6, "{sent}");
    assert!(sent.get("top_p").is_none_or(|v| v.is_null()), "{sent}");
    assert!(sent.get("max_tokens").is_none_or(|v| v.is_null()), "{sent}");
    assert_eq!(sent["messages"][0]["content"], "Answer in French.");
    // Each answer keeps who wrote it, read back too.
    let stored = alice.list_messages(session.id).await;
    let writers: Vec<(&str, &str)> = stored
        .iter()
        .filter(|m| m.role == pb::MessageRole::Assistant as i32)
        .map(|m| (m.model.as_str(), m.api_config_name.as_str()))
        .collect();
    assert_eq!(writers, [("fake-model", "first"), ("fake-reasoner", "second")]);
    // Questions name no config.
    assert!(stored[0].api_config_name.is_empty());

    // The persona is recorded; someone else's or a missing one is NOT_FOUND.
    let personas = alice
        .personas()
        .list_personas(alice.req(pb::ListPersonasRequest {}))
        .await
        .unwrap()
        .into_inner()
        .personas;
    let with_persona = sessions
        .update_session(update(pb::UpdateSessionRequest {
            id: session.id,
            persona_id: Some(personas[0].id),
            update_mask: mask(&["persona_id"]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(with_persona.persona_id, Some(personas[0].id));
    assert_eq!(with_persona.system_prompt, "Answer in French.");
    assert_code(
        sessions
            .update_session(update(pb::UpdateSessionRequest {
                id: session.id,
                persona_id: Some(999_999),
                update_mask: mask(&["persona_id"]),
                ..Default::default()
            }))
            .await,
        Code::NotFound,
    );

    // Another user's chat is NOT_FOUND, settings untouched.
    let bob = stack.user("bob").await;
    assert_code(
        bob.sessions()
            .update_session(bob.req(pb::UpdateSessionRequest {
                id: session.id,
                temperature: Some(0.1),
                ..Default::default()
            }))
            .await,
        Code::NotFound,
    );
    assert_eq!(alice.session(session.id).await.temperature, Some(1.2));
    stack.stop().await;
});

on_every_backend!(
    new_chats_start_from_the_accounts_defaults,
    |db_url: String| async move {
        let stack = start_without_titles(&db_url).await;
        let alice = stack.user("alice").await;
        let bob = stack.user("bob").await;
        stack.fake_config(&alice, "first").await;
        let mut client = defaults(&stack).await;

        let empty = client
            .get_chat_defaults(alice.req(pb::GetChatDefaultsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .defaults
            .unwrap();
        assert_eq!(empty, pb::ChatDefaults::default());

        for (request, field) in [
            (
                pb::UpdateChatDefaultsRequest {
                    temperature: Some(-1.0),
                    ..Default::default()
                },
                "temperature",
            ),
            (
                pb::UpdateChatDefaultsRequest {
                    top_p: Some(2.0),
                    ..Default::default()
                },
                "top_p",
            ),
            (
                pb::UpdateChatDefaultsRequest {
                    max_tokens: Some(-5),
                    ..Default::default()
                },
                "max_tokens",
            ),
            (
                pb::UpdateChatDefaultsRequest {
                    system_prompt: Some("x".repeat(20_001)),
                    ..Default::default()
                },
                "system_prompt",
            ),
            (
                pb::UpdateChatDefaultsRequest {
                    update_mask: mask(&["model"]),
                    ..Default::default()
                },
                "update_mask",
            ),
        ] {
            assert_invalid(client.update_chat_defaults(alice.req(request)).await, field);
        }
        assert_code(
            client
                .update_chat_defaults(alice.req(pb::UpdateChatDefaultsRequest {
                    persona_id: Some(999_999),
                    ..Default::default()
                }))
                .await,
            Code::NotFound,
        );

        let personas = alice
            .personas()
            .list_personas(alice.req(pb::ListPersonasRequest {}))
            .await
            .unwrap()
            .into_inner()
            .personas;
        let persona = &personas[1];
        let set = client
            .update_chat_defaults(alice.req(pb::UpdateChatDefaultsRequest {
                persona_id: Some(persona.id),
                temperature: Some(0.7),
                top_p: Some(0.9),
                max_tokens: Some(256),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .defaults
            .unwrap();
        assert_eq!(
            (set.persona_id, set.temperature, set.top_p, set.max_tokens),
            (Some(persona.id), Some(0.7), Some(0.9), Some(256))
        );
        assert!(set.updated_at.is_some());

        // A chat that names nothing starts with the defaults (the persona's prompt with it).
        let plain = alice.create_session(pb::CreateSessionRequest::default()).await;
        assert_eq!(plain.persona_id, Some(persona.id));
        assert_eq!(plain.system_prompt, persona.system_prompt);
        assert_eq!(
            (plain.temperature, plain.top_p, plain.max_tokens),
            (Some(0.7), Some(0.9), Some(256))
        );
        ask(&alice, plain.id, "hi").await;
        let sent = last_chat_request(&stack);
        assert_eq!(sent["max_tokens"], 256);
        assert!((sent["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-6, "{sent}");

        // What the request names wins; a prompt of its own replaces the default persona.
        let own = alice
            .create_session(pb::CreateSessionRequest {
                system_prompt: Some("Mine.".into()),
                temperature: Some(0.1),
                ..Default::default()
            })
            .await;
        assert_eq!((own.persona_id, own.system_prompt.as_str()), (None, "Mine."));
        assert_eq!((own.temperature, own.top_p), (Some(0.1), Some(0.9)));

        // A default prompt of its own goes before the persona's; a mask clears what it names.
        client
            .update_chat_defaults(alice.req(pb::UpdateChatDefaultsRequest {
                system_prompt: Some("Default prompt.".into()),
                update_mask: mask(&["system_prompt", "temperature"]),
                ..Default::default()
            }))
            .await
            .unwrap();
        let next = alice.create_session(pb::CreateSessionRequest::default()).await;
        assert_eq!(next.system_prompt, "Default prompt.");
        assert_eq!((next.temperature, next.top_p), (None, Some(0.9)));

        // Bob's defaults are his own.
        let bobs = client
            .get_chat_defaults(bob.req(pb::GetChatDefaultsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .defaults
            .unwrap();
        assert_eq!(bobs, pb::ChatDefaults::default());
        let bob_chat = bob.create_session(pb::CreateSessionRequest::default()).await;
        assert_eq!((bob_chat.persona_id, bob_chat.temperature), (None, None));
        stack.stop().await;
    }
);

on_every_backend!(an_ended_chat_is_read_only_until_reopened, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    stack.fake_config(&alice, "first").await;
    let session = alice.create_session(pb::CreateSessionRequest::default()).await;
    let answer = ask(&alice, session.id, "before").await;
    let question_id = answer.reply_to_id.unwrap();
    let mut sessions = alice.sessions();
    let end = |ended: bool| {
        alice.req(pb::UpdateSessionRequest {
            id: session.id,
            ended: Some(ended),
            update_mask: mask(&["ended"]),
            ..Default::default()
        })
    };

    let ended = sessions
        .update_session(end(true))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert!(ended.end_time.is_some());
    let mut messages = alice.messages();
    assert_reason(
        messages
            .send_message(alice.req(pb::SendMessageRequest {
                session_id: session.id,
                content: "after".into(),
                api_config_id: None,
                version_of_id: None,
            }))
            .await,
        Code::FailedPrecondition,
        Reason::ChatEnded,
    );
    assert_reason(
        messages
            .regenerate_message(alice.req(pb::RegenerateMessageRequest {
                message_id: answer.id,
                api_config_id: None,
            }))
            .await,
        Code::FailedPrecondition,
        Reason::ChatEnded,
    );
    assert_reason(
        messages
            .update_message(alice.req(pb::UpdateMessageRequest {
                id: question_id,
                content: "edited".into(),
            }))
            .await,
        Code::FailedPrecondition,
        Reason::ChatEnded,
    );
    assert_reason(
        messages
            .delete_message(alice.req(pb::DeleteMessageRequest { id: answer.id }))
            .await,
        Code::FailedPrecondition,
        Reason::ChatEnded,
    );
    // Nothing was stored or changed.
    assert_eq!(alice.list_messages(session.id).await.len(), 2);
    // Its settings (title, pin, …) may still change.
    sessions
        .update_session(alice.req(pb::UpdateSessionRequest {
            id: session.id,
            title: Some("Done".into()),
            ..Default::default()
        }))
        .await
        .unwrap();

    // Bob's calls find no such chat, ended or not.
    let bob = stack.user("bob").await;
    assert_code(
        bob.messages()
            .send_message(bob.req(pb::SendMessageRequest {
                session_id: session.id,
                content: "hi".into(),
                api_config_id: None,
                version_of_id: None,
            }))
            .await,
        Code::NotFound,
    );
    assert_code(
        bob.sessions()
            .update_session(bob.req(pb::UpdateSessionRequest {
                id: session.id,
                ended: Some(false),
                ..Default::default()
            }))
            .await,
        Code::NotFound,
    );
    assert!(alice.session(session.id).await.end_time.is_some());

    let reopened = sessions
        .update_session(end(false))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert!(reopened.end_time.is_none());
    let after = ask(&alice, session.id, "after").await;
    assert_eq!(after.status, pb::MessageStatus::Complete as i32);
    stack.stop().await;
});
