//! API configs, personas, sessions and messages as resources: CRUD, validation, pagination,
//! key encryption at rest, and that nobody sees or changes another user's rows. Every test
//! runs on SQLite and, when configured, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;

use common::*;
use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use parley_proto::chat::v1 as pb;
use parley_testkit::on_every_backend;
use tonic::Code;

/// A call Mallory makes with an id of Alice's, answering only its status.
type OwnedCall = Box<dyn FnOnce(User, i64) -> BoxFuture<'static, Result<(), tonic::Status>>>;

fn call<T, Fut>(f: impl FnOnce(User, i64) -> Fut + 'static) -> OwnedCall
where
    Fut: Future<Output = Result<T, tonic::Status>> + Send + 'static,
{
    Box::new(move |user, id| f(user, id).map_ok(|_| ()).boxed())
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

on_every_backend!(api_config_crud_and_validation, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    let mut configs = alice.configs();
    let db = stack.database().await;

    assert_code(
        configs
            .get_default_api_config(alice.req(pb::GetDefaultApiConfigRequest {}))
            .await,
        Code::NotFound,
    );
    let first = stack.fake_config(&alice, "fake").await;
    assert!(first.is_default);
    assert_eq!(first.model, "fake-model");
    let key = stack.fake.api_key();
    assert_eq!(first.api_key_hint, format!("sk-…{}", &key[key.len() - 4..]));

    let second = configs
        .create_api_config(alice.req(pb::CreateApiConfigRequest {
            name: "second".into(),
            base_url: "https://api.example.com/v1".into(),
            api_key: "ollama-local-secret".into(),
            model: "llama3".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert!(!second.is_default);

    // Name unique per user.
    let duplicate = configs
        .create_api_config(alice.req(pb::CreateApiConfigRequest {
            name: "fake".into(),
            base_url: "https://api.example.com/v1".into(),
            api_key: "k-12345678".into(),
            model: "m".into(),
        }))
        .await;
    assert_code(duplicate, Code::AlreadyExists);

    // Every bad field names itself and changes nothing.
    let good = pb::CreateApiConfigRequest {
        name: "third".into(),
        base_url: "https://api.example.com/v1".into(),
        api_key: "sk-abcdefgh".into(),
        model: "m".into(),
    };
    let cases: Vec<(&str, pb::CreateApiConfigRequest)> = vec![
        (
            "name",
            pb::CreateApiConfigRequest {
                name: " ".into(),
                ..good.clone()
            },
        ),
        (
            "name",
            pb::CreateApiConfigRequest {
                name: "n".repeat(101),
                ..good.clone()
            },
        ),
        (
            "base_url",
            pb::CreateApiConfigRequest {
                base_url: "ftp://x".into(),
                ..good.clone()
            },
        ),
        (
            "base_url",
            pb::CreateApiConfigRequest {
                base_url: "not a url".into(),
                ..good.clone()
            },
        ),
        (
            "base_url",
            pb::CreateApiConfigRequest {
                base_url: format!("https://e.com/{}", "a".repeat(500)),
                ..good.clone()
            },
        ),
        (
            "api_key",
            pb::CreateApiConfigRequest {
                api_key: String::new(),
                ..good.clone()
            },
        ),
        (
            "api_key",
            pb::CreateApiConfigRequest {
                api_key: "k".repeat(501),
                ..good.clone()
            },
        ),
        (
            "model",
            pb::CreateApiConfigRequest {
                model: String::new(),
                ..good.clone()
            },
        ),
        (
            "model",
            pb::CreateApiConfigRequest {
                model: "m".repeat(101),
                ..good.clone()
            },
        ),
    ];
    for (field, request) in cases {
        assert_invalid(configs.create_api_config(alice.req(request)).await, field);
    }
    assert_eq!(count_rows(&db, "api_configs").await, 2);

    // Read back every way.
    let listed = configs
        .list_api_configs(alice.req(pb::ListApiConfigsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .api_configs;
    assert_eq!(
        listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["fake", "second"]
    );
    let got = configs
        .get_api_config(alice.req(pb::GetApiConfigRequest { id: second.id }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!(got, second);
    let by_name = configs
        .get_api_config_by_name(alice.req(pb::GetApiConfigByNameRequest { name: "second".into() }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!(by_name.id, second.id);
    assert_code(
        configs
            .get_api_config_by_name(alice.req(pb::GetApiConfigByNameRequest { name: "nope".into() }))
            .await,
        Code::NotFound,
    );
    // A name no config can have is bad input, not a missing config.
    for bad in ["".to_owned(), "   ".to_owned(), "n".repeat(101), "a\0b".to_owned()] {
        assert_invalid(
            configs
                .get_api_config_by_name(alice.req(pb::GetApiConfigByNameRequest { name: bad }))
                .await,
            "name",
        );
    }
    let default = configs
        .get_default_api_config(alice.req(pb::GetDefaultApiConfigRequest {}))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!(default.id, first.id);

    // Update: without a mask the set fields; with a mask exactly its paths.
    let renamed = configs
        .update_api_config(alice.req(pb::UpdateApiConfigRequest {
            id: second.id,
            name: Some("renamed".into()),
            api_key: Some("sk-newkey-9876".into()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.model, "llama3");
    assert_eq!(renamed.api_key_hint, "sk-…9876");
    let masked = configs
        .update_api_config(alice.req(pb::UpdateApiConfigRequest {
            id: second.id,
            name: Some("ignored, not in the mask".into()),
            model: Some("llama3.1".into()),
            update_mask: mask(&["model"]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!((masked.name.as_str(), masked.model.as_str()), ("renamed", "llama3.1"));
    assert_invalid(
        configs
            .update_api_config(alice.req(pb::UpdateApiConfigRequest {
                id: second.id,
                update_mask: mask(&["name"]),
                ..Default::default()
            }))
            .await,
        "name",
    );
    assert_invalid(
        configs
            .update_api_config(alice.req(pb::UpdateApiConfigRequest {
                id: second.id,
                update_mask: mask(&["api_key_hint"]),
                ..Default::default()
            }))
            .await,
        "update_mask",
    );
    assert_invalid(
        configs
            .update_api_config(alice.req(pb::UpdateApiConfigRequest {
                id: second.id,
                base_url: Some("javascript:alert(1)".into()),
                ..Default::default()
            }))
            .await,
        "base_url",
    );
    assert_code(
        configs
            .update_api_config(alice.req(pb::UpdateApiConfigRequest {
                id: second.id,
                name: Some("fake".into()),
                ..Default::default()
            }))
            .await,
        Code::AlreadyExists,
    );
    let unchanged = configs
        .get_api_config(alice.req(pb::GetApiConfigRequest { id: second.id }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!(unchanged.name, "renamed");

    // TestApiConfig and ListModels go through llm-service to the provider.
    let tested = configs
        .test_api_config(alice.req(pb::TestApiConfigRequest {
            target: Some(pb::test_api_config_request::Target::Id(first.id)),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(tested.ok, "{tested:?}");
    assert!(tested.model_available, "{tested:?}");
    let inline = configs
        .test_api_config(alice.req(pb::TestApiConfigRequest {
            target: Some(pb::test_api_config_request::Target::Settings(pb::ProviderSettings {
                base_url: stack.fake.base_url(),
                api_key: "sk-wrong-key-0000".into(),
                model: "fake-model".into(),
            })),
        }))
        .await;
    match inline {
        Ok(reply) => assert!(!reply.into_inner().ok),
        Err(status) => assert_ne!(status.code(), Code::Ok),
    }
    let models = configs
        .list_models(alice.req(pb::ListModelsRequest {
            target: Some(pb::list_models_request::Target::Id(first.id)),
        }))
        .await
        .unwrap()
        .into_inner()
        .model_ids;
    assert_eq!(models, stack.fake.models());
    assert_invalid(
        configs
            .list_models(alice.req(pb::ListModelsRequest {
                target: Some(pb::list_models_request::Target::Settings(pb::ProviderSettings {
                    base_url: "nope".into(),
                    api_key: "k".into(),
                    model: String::new(),
                })),
            }))
            .await,
        "settings.base_url",
    );
    assert_invalid(
        configs
            .list_models(alice.req(pb::ListModelsRequest { target: None }))
            .await,
        "target",
    );

    // Deleting the first makes the next one the default; sessions naming it forget it.
    let session = alice
        .create_session(pb::CreateSessionRequest {
            api_config_id: Some(first.id),
            ..Default::default()
        })
        .await;
    configs
        .delete_api_config(alice.req(pb::DeleteApiConfigRequest { id: first.id }))
        .await
        .unwrap();
    assert_code(
        configs
            .delete_api_config(alice.req(pb::DeleteApiConfigRequest { id: first.id }))
            .await,
        Code::NotFound,
    );
    let default = configs
        .get_default_api_config(alice.req(pb::GetDefaultApiConfigRequest {}))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!(default.id, second.id);
    assert!(default.is_default);
    assert_eq!(alice.session(session.id).await.api_config_id, None);
    stack.stop().await;
});

// A stolen access token must not be enough to send the stored key elsewhere: TestApiConfig,
// ListModels and chats send it to the config's base URL, so changing that needs the key again.
on_every_backend!(changing_the_base_url_needs_the_key_again, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    let config = stack.fake_config(&alice, "fake").await;
    let mut configs = alice.configs();
    let elsewhere = "https://collector.example.net/v1".to_owned();
    for (what, request) in [
        (
            "without a mask",
            pb::UpdateApiConfigRequest {
                id: config.id,
                base_url: Some(elsewhere.clone()),
                ..Default::default()
            },
        ),
        (
            "with a mask",
            pb::UpdateApiConfigRequest {
                id: config.id,
                base_url: Some(elsewhere.clone()),
                name: Some("renamed".into()),
                update_mask: mask(&["base_url", "name"]),
                ..Default::default()
            },
        ),
        (
            "with the key masked out",
            pb::UpdateApiConfigRequest {
                id: config.id,
                base_url: Some(elsewhere.clone()),
                api_key: Some("sk-ignored-0000".into()),
                update_mask: mask(&["base_url"]),
                ..Default::default()
            },
        ),
    ] {
        let refused = configs.update_api_config(alice.req(request)).await;
        assert_invalid(refused, "api_key");
        let stored = configs
            .get_api_config(alice.req(pb::GetApiConfigRequest { id: config.id }))
            .await
            .unwrap()
            .into_inner()
            .api_config
            .unwrap();
        assert_eq!(stored, config, "{what}: nothing changed");
    }
    // The same URL again (a form sends every field) needs no key.
    let renamed = configs
        .update_api_config(alice.req(pb::UpdateApiConfigRequest {
            id: config.id,
            name: Some("renamed".into()),
            base_url: Some(config.base_url.clone()),
            update_mask: mask(&["name", "base_url"]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.base_url.as_str()),
        ("renamed", config.base_url.as_str())
    );
    assert_eq!(renamed.api_key_hint, config.api_key_hint);
    // With the key, the URL changes.
    let moved = configs
        .update_api_config(alice.req(pb::UpdateApiConfigRequest {
            id: config.id,
            base_url: Some(elsewhere.clone()),
            api_key: Some("sk-for-the-new-host-4321".into()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .api_config
        .unwrap();
    assert_eq!(
        (moved.base_url.as_str(), moved.api_key_hint.as_str()),
        (elsewhere.as_str(), "sk-…4321")
    );
    stack.stop().await;
});

on_every_backend!(api_keys_are_encrypted_at_rest_and_rotate, |db_url: String| async move {
    use chat_service::key_cipher::{KeyCipher, SealedKey};
    let mut stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    let config = stack.fake_config(&alice, "fake").await;
    let key = stack.fake.api_key();

    // The raw row holds no plaintext key, only ciphertext, nonce and version.
    let db = stack.database().await;
    let (ciphertext, nonce, version, hint): (Vec<u8>, Vec<u8>, i64, String) = sqlx::query_as(
        "SELECT api_key_ciphertext, api_key_nonce, api_key_key_version, api_key_hint FROM api_configs WHERE id = $1",
    )
    .bind(config.id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(!ciphertext.windows(key.len()).any(|w| w == key.as_bytes()));
    assert_eq!(version, 1);
    assert!(!hint.contains(&key));
    // Not in the database file either (SQLite; PostgreSQL is checked through the row above).
    if let Some(path) = db_url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap().to_owned())
    {
        db.close().await;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));
    }

    // It decrypts back with the generated master key (file mode 0600), bound to its row.
    let key_file = chat_service::master_keys::key_path(&stack.data_dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let master = chat_service::master_keys::load_or_create(&key_file).unwrap();
    let cipher = KeyCipher::new(master.clone()).unwrap();
    let sealed = SealedKey {
        ciphertext,
        nonce,
        key_version: version,
    };
    assert_eq!(cipher.open(config.id, &sealed).unwrap(), key);
    assert!(cipher.open(config.id + 1, &sealed).is_err());

    // A wrong master key fails loudly: chat-service refuses to start.
    stack.stop_chat().await.unwrap();
    let mut wrong = stack.chat_config.clone();
    wrong.master_keys = vec![chat_service::MasterKey {
        version: 1,
        key: [7; 32],
    }];
    stack.restart_chat(wrong).await;
    let refused = stack.stop_chat().await.expect_err("started with a wrong master key");
    assert!(refused.to_string().contains("does not decrypt"), "{refused}");

    // Rotation: a new version 2 plus the old key re-encrypts on start, and chats still work.
    let mut rotated = stack.chat_config.clone();
    rotated.master_keys = vec![
        master[0].clone(),
        chat_service::MasterKey {
            version: 2,
            key: [9; 32],
        },
    ];
    stack.restart_chat(rotated).await;
    let alice = stack.user("alice2").await;
    let config2 = stack.fake_config(&alice, "fake").await;
    let session = alice
        .create_session(pb::CreateSessionRequest {
            api_config_id: Some(config2.id),
            ..Default::default()
        })
        .await;
    let events = collect_send(alice.send(session.id, "hello").await).await;
    assert!(kinds(&events).contains(&"completed"), "{events:?}");
    assert!(stack.fake.chat_requests().iter().all(|r| r.has_bearer(&key)));
    let db = stack.database().await;
    let versions: Vec<(i64,)> = sqlx::query_as("SELECT api_key_key_version FROM api_configs ORDER BY id")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(versions, [(2,), (2,)]);
    stack.stop().await;
});

on_every_backend!(personas_built_in_and_own, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    let mut personas = alice.personas();
    let list = |personas: &mut parley_proto::chat::v1::persona_service_client::PersonaServiceClient<_>| {
        let request = alice.req(pb::ListPersonasRequest {});
        let mut personas = personas.clone();
        async move { personas.list_personas(request).await.unwrap().into_inner().personas }
    };
    let built_in = list(&mut personas).await;
    assert!(built_in.len() >= 3);
    assert!(built_in.iter().all(|p| p.built_in && !p.system_prompt.is_empty()));
    // Dated when they were installed, not 1970.
    let year_2020 = 1_577_836_800;
    assert!(
        built_in
            .iter()
            .all(|p| p.created_at.as_ref().is_some_and(|t| t.seconds > year_2020)),
        "{built_in:?}"
    );
    assert!(built_in.iter().any(|p| p.name.contains("翻译")));

    let mine = personas
        .create_persona(alice.req(pb::CreatePersonaRequest {
            name: "Pirate".into(),
            description: "Talks like a pirate".into(),
            system_prompt: "Answer like a pirate.".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();
    assert!(!mine.built_in);
    let all = list(&mut personas).await;
    assert_eq!(all.len(), built_in.len() + 1);
    assert_eq!(all.last().unwrap().id, mine.id, "own personas come after the built-ins");

    for (field, request) in [
        (
            "name",
            pb::CreatePersonaRequest {
                name: "".into(),
                system_prompt: "p".into(),
                ..Default::default()
            },
        ),
        (
            "system_prompt",
            pb::CreatePersonaRequest {
                name: "x".into(),
                system_prompt: "p".repeat(20_001),
                ..Default::default()
            },
        ),
        (
            "description",
            pb::CreatePersonaRequest {
                name: "x".into(),
                description: "d".repeat(1_001),
                system_prompt: "p".into(),
                ..Default::default()
            },
        ),
    ] {
        assert_invalid(personas.create_persona(alice.req(request)).await, field);
    }

    let updated = personas
        .update_persona(alice.req(pb::UpdatePersonaRequest {
            id: mine.id,
            system_prompt: Some("Answer like a polite pirate.".into()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();
    assert_eq!(updated.name, "Pirate");
    assert_eq!(updated.system_prompt, "Answer like a polite pirate.");

    // Built-ins are read-only.
    let builtin_id = built_in[0].id;
    assert_code(
        personas
            .update_persona(alice.req(pb::UpdatePersonaRequest {
                id: builtin_id,
                name: Some("mine now".into()),
                ..Default::default()
            }))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        personas
            .delete_persona(alice.req(pb::DeletePersonaRequest { id: builtin_id }))
            .await,
        Code::PermissionDenied,
    );

    // A session started from a persona copies its prompt; deleting the persona keeps it.
    let session = alice
        .create_session(pb::CreateSessionRequest {
            persona_id: Some(mine.id),
            ..Default::default()
        })
        .await;
    assert_eq!(session.system_prompt, "Answer like a polite pirate.");
    assert_eq!(session.persona_id, Some(mine.id));
    personas
        .delete_persona(alice.req(pb::DeletePersonaRequest { id: mine.id }))
        .await
        .unwrap();
    let after = alice.session(session.id).await;
    assert_eq!(after.system_prompt, "Answer like a polite pirate.");
    assert_eq!(after.persona_id, None);
    assert_eq!(list(&mut personas).await.len(), built_in.len());
    stack.stop().await;
});

on_every_backend!(sessions_crud_order_and_pages, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    let mut sessions = alice.sessions();
    let config = stack.fake_config(&alice, "fake").await;

    let created = alice
        .create_session(pb::CreateSessionRequest {
            title: Some("Plans".into()),
            system_prompt: Some("Be brief.".into()),
            api_config_id: Some(config.id),
            model: Some("fake-reasoner".into()),
            temperature: Some(0.7),
            ..Default::default()
        })
        .await;
    assert_eq!(created.title, "Plans");
    assert_eq!(created.system_prompt, "Be brief.");
    assert_eq!(created.api_config_id, Some(config.id));
    assert_eq!(created.temperature, Some(0.7));
    assert!(created.start_time.is_some() && created.end_time.is_none());

    let db = stack.database().await;
    for (field, request) in [
        (
            "title",
            pb::CreateSessionRequest {
                title: Some("t".repeat(101)),
                ..Default::default()
            },
        ),
        (
            "system_prompt",
            pb::CreateSessionRequest {
                system_prompt: Some("s".repeat(20_001)),
                ..Default::default()
            },
        ),
        (
            "model",
            pb::CreateSessionRequest {
                model: Some("m".repeat(101)),
                ..Default::default()
            },
        ),
        (
            "temperature",
            pb::CreateSessionRequest {
                temperature: Some(3.0),
                ..Default::default()
            },
        ),
    ] {
        assert_invalid(sessions.create_session(alice.req(request)).await, field);
    }
    assert_code(
        sessions
            .create_session(alice.req(pb::CreateSessionRequest {
                api_config_id: Some(config.id + 1000),
                ..Default::default()
            }))
            .await,
        Code::NotFound,
    );
    assert_eq!(count_rows(&db, "chat_sessions").await, 1);

    // Five more; the third gets pinned, the first is archived.
    let mut ids = vec![created.id];
    for i in 0..5 {
        let s = alice
            .create_session(pb::CreateSessionRequest {
                title: Some(format!("s{i}")),
                ..Default::default()
            })
            .await;
        ids.push(s.id);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let pinned = sessions
        .update_session(alice.req(pb::UpdateSessionRequest {
            id: ids[2],
            pinned: Some(true),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert!(pinned.pinned);
    sessions
        .update_session(alice.req(pb::UpdateSessionRequest {
            id: ids[0],
            archived: Some(true),
            ended: Some(true),
            ..Default::default()
        }))
        .await
        .unwrap();
    let archived = alice.session(ids[0]).await;
    assert!(archived.archived && archived.end_time.is_some());

    // Activity moves a session up: a message in ids[1] makes it the most recent.
    let events = collect_send(alice.send(ids[1], "bump").await).await;
    assert!(kinds(&events).contains(&"completed"));

    // Pages of 2: pinned first, then most recently active.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = sessions
            .list_sessions(alice.req(pb::ListSessionsRequest {
                page_size: 2,
                page_token: token.clone(),
                include_archived: false,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(page.sessions.len() <= 2);
        seen.extend(page.sessions.iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, [ids[2], ids[1], ids[5], ids[4], ids[3]]);
    let with_archived = sessions
        .list_sessions(alice.req(pb::ListSessionsRequest {
            page_size: 100,
            page_token: String::new(),
            include_archived: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(with_archived.sessions.len(), 6);
    assert!(with_archived.next_page_token.is_empty());
    assert_invalid(
        sessions
            .list_sessions(alice.req(pb::ListSessionsRequest {
                page_size: 101,
                ..Default::default()
            }))
            .await,
        "page_size",
    );
    assert_invalid(
        sessions
            .list_sessions(alice.req(pb::ListSessionsRequest {
                page_token: "forged".into(),
                ..Default::default()
            }))
            .await,
        "page_token",
    );

    // Masked update clears temperature and the config; unknown paths are refused.
    let cleared = sessions
        .update_session(alice.req(pb::UpdateSessionRequest {
            id: created.id,
            api_config_id: Some(0),
            title: Some("Renamed".into()),
            update_mask: mask(&["temperature", "api_config_id", "title"]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(cleared.temperature, None);
    assert_eq!(cleared.api_config_id, None);
    assert_eq!(cleared.title, "Renamed");
    assert_eq!(cleared.system_prompt, "Be brief.");
    assert_invalid(
        sessions
            .update_session(alice.req(pb::UpdateSessionRequest {
                id: created.id,
                update_mask: mask(&["user_id"]),
                ..Default::default()
            }))
            .await,
        "update_mask",
    );
    assert_invalid(
        sessions
            .update_session(alice.req(pb::UpdateSessionRequest {
                id: created.id,
                temperature: Some(-1.0),
                ..Default::default()
            }))
            .await,
        "temperature",
    );
    // Clearing and setting the temperature in turn (PostgreSQL once refused a number after a
    // NULL in the same prepared statement).
    for temperature in [None, Some(1.5), None, Some(0.2)] {
        let updated = sessions
            .update_session(alice.req(pb::UpdateSessionRequest {
                id: created.id,
                temperature,
                update_mask: mask(&["temperature"]),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap();
        assert_eq!(updated.temperature, temperature);
    }
    let reopened = sessions
        .update_session(alice.req(pb::UpdateSessionRequest {
            id: ids[0],
            ended: Some(false),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert!(reopened.end_time.is_none());

    // Deleting a session takes its messages with it.
    assert_eq!(count_rows(&db, "chat_messages").await, 2);
    sessions
        .delete_session(alice.req(pb::DeleteSessionRequest { id: ids[1] }))
        .await
        .unwrap();
    assert_eq!(count_rows(&db, "chat_messages").await, 0);
    assert_code(
        sessions
            .get_session(alice.req(pb::GetSessionRequest { id: ids[1] }))
            .await,
        Code::NotFound,
    );
    stack.stop().await;
});

on_every_backend!(messages_pages_edits_and_deletes, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    stack.fake_config(&alice, "fake").await;
    let session = alice.create_session(pb::CreateSessionRequest::default()).await;
    for i in 0..3 {
        let events = collect_send(alice.send(session.id, &format!("question {i}")).await).await;
        assert!(kinds(&events).contains(&"completed"), "{events:?}");
    }
    let mut messages = alice.messages();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = messages
            .list_messages(alice.req(pb::ListMessagesRequest {
                session_id: session.id,
                page_size: 4,
                page_token: token.clone(),
                all_branches: false,
            }))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.messages);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let roles: Vec<i32> = seen.iter().map(|m| m.role).collect();
    let (user, assistant) = (pb::MessageRole::User as i32, pb::MessageRole::Assistant as i32);
    assert_eq!(roles, [user, assistant, user, assistant, user, assistant]);
    assert_eq!(seen[2].content, "question 1");
    assert_eq!(
        seen[3].content,
        parley_testkit::fake_openai::default_reply_text("question 1")
    );

    let edited = messages
        .update_message(alice.req(pb::UpdateMessageRequest {
            id: seen[1].id,
            content: "answer zero, edited".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(edited.content, "answer zero, edited");
    assert_invalid(
        messages
            .update_message(alice.req(pb::UpdateMessageRequest {
                id: seen[1].id,
                content: "  ".into(),
            }))
            .await,
        "content",
    );
    assert_invalid(
        messages
            .update_message(alice.req(pb::UpdateMessageRequest {
                id: seen[1].id,
                content: "c".repeat(100_001),
            }))
            .await,
        "content",
    );
    assert_eq!(alice.message(seen[1].id).await.content, "answer zero, edited");
    messages
        .delete_message(alice.req(pb::DeleteMessageRequest { id: seen[5].id }))
        .await
        .unwrap();
    assert_code(
        messages
            .get_message(alice.req(pb::GetMessageRequest { id: seen[5].id }))
            .await,
        Code::NotFound,
    );
    assert_eq!(alice.list_messages(session.id).await.len(), 5);
    assert_invalid(
        messages
            .send_message(alice.req(pb::SendMessageRequest {
                session_id: session.id,
                content: String::new(),
                api_config_id: None,
                version_of_id: None,
            }))
            .await,
        "content",
    );
    assert_invalid(
        messages
            .list_messages(alice.req(pb::ListMessagesRequest {
                session_id: session.id,
                page_size: -1,
                page_token: String::new(),
                all_branches: false,
            }))
            .await,
        "page_size",
    );
    assert_eq!(alice.list_messages(session.id).await.len(), 5);
    stack.stop().await;
});

on_every_backend!(another_users_rows_are_not_found, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    let mallory = stack.user("mallory").await;
    let config = stack.fake_config(&alice, "fake").await;
    let persona = alice
        .personas()
        .create_persona(alice.req(pb::CreatePersonaRequest {
            name: "Mine".into(),
            description: String::new(),
            system_prompt: "Be mine.".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();
    let session = alice
        .create_session(pb::CreateSessionRequest {
            persona_id: Some(persona.id),
            ..Default::default()
        })
        .await;
    let events = collect_send(alice.send(session.id, "private question").await).await;
    let answer_id = started_id(&events);
    let question_id = question_id(&events);
    let db = stack.database().await;
    let before = (
        count_rows(&db, "api_configs").await,
        count_rows(&db, "personas").await,
        count_rows(&db, "chat_sessions").await,
        count_rows(&db, "chat_messages").await,
    );

    // Mallory's own session, to try borrowing Alice's config with.
    let own_session = mallory.create_session(pb::CreateSessionRequest::default()).await.id;

    // Every call that names a row, made by Mallory with Alice's id: NOT_FOUND, as if missing.
    let cases: Vec<(&str, i64, OwnedCall)> = vec![
        (
            "GetApiConfig",
            config.id,
            call(|u, id| async move { u.configs().get_api_config(u.req(pb::GetApiConfigRequest { id })).await }),
        ),
        (
            "GetApiConfigByName",
            config.id,
            call(|u, _| async move {
                u.configs()
                    .get_api_config_by_name(u.req(pb::GetApiConfigByNameRequest { name: "fake".into() }))
                    .await
            }),
        ),
        (
            "GetDefaultApiConfig",
            config.id,
            call(|u, _| async move {
                u.configs()
                    .get_default_api_config(u.req(pb::GetDefaultApiConfigRequest {}))
                    .await
            }),
        ),
        (
            "UpdateApiConfig",
            config.id,
            call(|u, id| async move {
                let request = pb::UpdateApiConfigRequest {
                    id,
                    name: Some("stolen".into()),
                    ..Default::default()
                };
                u.configs().update_api_config(u.req(request)).await
            }),
        ),
        (
            "DeleteApiConfig",
            config.id,
            call(|u, id| async move {
                u.configs()
                    .delete_api_config(u.req(pb::DeleteApiConfigRequest { id }))
                    .await
            }),
        ),
        (
            "TestApiConfig",
            config.id,
            call(|u, id| async move {
                let target = Some(pb::test_api_config_request::Target::Id(id));
                u.configs()
                    .test_api_config(u.req(pb::TestApiConfigRequest { target }))
                    .await
            }),
        ),
        (
            "ListModels",
            config.id,
            call(|u, id| async move {
                let target = Some(pb::list_models_request::Target::Id(id));
                u.configs().list_models(u.req(pb::ListModelsRequest { target })).await
            }),
        ),
        (
            "UpdatePersona",
            persona.id,
            call(|u, id| async move {
                let request = pb::UpdatePersonaRequest {
                    id,
                    name: Some("stolen".into()),
                    ..Default::default()
                };
                u.personas().update_persona(u.req(request)).await
            }),
        ),
        (
            "DeletePersona",
            persona.id,
            call(|u, id| async move {
                u.personas()
                    .delete_persona(u.req(pb::DeletePersonaRequest { id }))
                    .await
            }),
        ),
        (
            "CreateSession with a persona",
            persona.id,
            call(|u, id| async move {
                let request = pb::CreateSessionRequest {
                    persona_id: Some(id),
                    ..Default::default()
                };
                u.sessions().create_session(u.req(request)).await
            }),
        ),
        (
            "CreateSession with a config",
            config.id,
            call(|u, id| async move {
                let request = pb::CreateSessionRequest {
                    api_config_id: Some(id),
                    ..Default::default()
                };
                u.sessions().create_session(u.req(request)).await
            }),
        ),
        (
            "GetSession",
            session.id,
            call(|u, id| async move { u.sessions().get_session(u.req(pb::GetSessionRequest { id })).await }),
        ),
        (
            "UpdateSession",
            session.id,
            call(|u, id| async move {
                let request = pb::UpdateSessionRequest {
                    id,
                    title: Some("stolen".into()),
                    ..Default::default()
                };
                u.sessions().update_session(u.req(request)).await
            }),
        ),
        (
            "DeleteSession",
            session.id,
            call(|u, id| async move {
                u.sessions()
                    .delete_session(u.req(pb::DeleteSessionRequest { id }))
                    .await
            }),
        ),
        (
            "SendMessage",
            session.id,
            call(|u, session_id| async move {
                let request = pb::SendMessageRequest {
                    session_id,
                    content: "hi".into(),
                    api_config_id: None,
                    version_of_id: None,
                };
                u.messages().send_message(u.req(request)).await
            }),
        ),
        (
            "SendMessage in one's own session with a config",
            config.id,
            call(move |u, id| async move {
                let request = pb::SendMessageRequest {
                    session_id: own_session,
                    content: "hi".into(),
                    api_config_id: Some(id),
                    version_of_id: None,
                };
                u.messages().send_message(u.req(request)).await
            }),
        ),
        (
            "ListMessages",
            session.id,
            call(|u, session_id| async move {
                let request = pb::ListMessagesRequest {
                    session_id,
                    ..Default::default()
                };
                u.messages().list_messages(u.req(request)).await
            }),
        ),
        (
            "WatchGeneration",
            answer_id,
            call(|u, message_id| async move {
                u.messages()
                    .watch_generation(u.req(pb::WatchGenerationRequest { message_id }))
                    .await
            }),
        ),
        (
            "StopGeneration",
            answer_id,
            call(|u, message_id| async move {
                u.messages()
                    .stop_generation(u.req(pb::StopGenerationRequest { message_id }))
                    .await
            }),
        ),
        (
            "RegenerateMessage",
            answer_id,
            call(|u, message_id| async move {
                let request = pb::RegenerateMessageRequest {
                    message_id,
                    api_config_id: None,
                };
                u.messages().regenerate_message(u.req(request)).await
            }),
        ),
    ]
    .into_iter()
    .chain(
        [question_id, answer_id]
            .into_iter()
            .flat_map(|message| -> [(&str, i64, OwnedCall); 3] {
                [
                    (
                        "GetMessage",
                        message,
                        call(
                            |u, id| async move { u.messages().get_message(u.req(pb::GetMessageRequest { id })).await },
                        ),
                    ),
                    (
                        "UpdateMessage",
                        message,
                        call(|u, id| async move {
                            let request = pb::UpdateMessageRequest {
                                id,
                                content: "stolen".into(),
                            };
                            u.messages().update_message(u.req(request)).await
                        }),
                    ),
                    (
                        "DeleteMessage",
                        message,
                        call(|u, id| async move {
                            u.messages()
                                .delete_message(u.req(pb::DeleteMessageRequest { id }))
                                .await
                        }),
                    ),
                ]
            }),
    )
    .collect();
    for (name, id, call) in cases {
        let code = call(mallory.clone(), id).await.err().map(|status| status.code());
        assert_eq!(code, Some(Code::NotFound), "{name} with another user's id {id}");
    }

    // What Mallory lists holds nothing of Alice's.
    let m = &mallory;
    let mallory_configs = m
        .configs()
        .list_api_configs(m.req(pb::ListApiConfigsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .api_configs;
    assert!(mallory_configs.is_empty());
    let visible = m
        .personas()
        .list_personas(m.req(pb::ListPersonasRequest {}))
        .await
        .unwrap()
        .into_inner()
        .personas;
    assert!(visible.iter().all(|p| p.built_in));
    let listed = m
        .sessions()
        .list_sessions(m.req(pb::ListSessionsRequest {
            include_archived: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [own_session]);

    let after = (
        count_rows(&db, "api_configs").await,
        count_rows(&db, "personas").await,
        count_rows(&db, "chat_sessions").await - 1,
        count_rows(&db, "chat_messages").await,
    );
    assert_eq!(before, after, "mallory changed nothing");
    assert_ne!(alice.session(session.id).await.title, "stolen");
    stack.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_needs_an_access_token() {
    let db = parley_testkit::test_database::TestDatabase::sqlite();
    let stack = Stack::start(&db.url).await;
    let alice = stack.user("alice").await;
    let mut sessions = alice.sessions();
    assert_code(
        sessions.list_sessions(pb::ListSessionsRequest::default()).await,
        Code::Unauthenticated,
    );
    assert_code(
        sessions
            .list_sessions(authed(pb::ListSessionsRequest::default(), "not-a-token"))
            .await,
        Code::Unauthenticated,
    );
    let mut messages = alice.messages();
    assert_code(
        messages
            .send_message(pb::SendMessageRequest {
                session_id: 1,
                content: "hi".into(),
                api_config_id: None,
                version_of_id: None,
            })
            .await,
        Code::Unauthenticated,
    );
    // With the token it works (the keys were fetched from user-service).
    sessions
        .list_sessions(alice.req(pb::ListSessionsRequest::default()))
        .await
        .unwrap();
    stack.stop().await;
}
