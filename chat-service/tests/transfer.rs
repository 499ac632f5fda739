//! Export and import over gRPC on both backends: a chat as Parley JSON and Markdown, an
//! account's files, and imports of Parley and ChatGPT exports, all or nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Stack, User};
use futures::StreamExt;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::transfer_service_client::TransferServiceClient;
use parley_testkit::{on_every_backend, wait};
use tonic::Code;

const CHATGPT_SAMPLE: &str = include_str!("fixtures/chatgpt_conversations.json");

async fn transfer(stack: &Stack) -> TransferServiceClient<tonic::transport::Channel> {
    TransferServiceClient::new(wait::channel(stack.chat_address()).await)
}

/// A chat with one answered question per entry of `questions`.
async fn chat_with(stack: &Stack, user: &User, title: &str, questions: &[&str]) -> pb::Session {
    let config = stack.fake_config(user, &format!("config for {title}")).await;
    let session = user
        .create_session(pb::CreateSessionRequest {
            title: Some(title.into()),
            system_prompt: Some(format!("System prompt of {title}")),
            api_config_id: Some(config.id),
            temperature: Some(0.5),
            ..Default::default()
        })
        .await;
    for question in questions {
        let mut events = user.send(session.id, question).await;
        while events.message().await.unwrap().is_some() {}
    }
    session
}

async fn export(
    client: &mut TransferServiceClient<tonic::transport::Channel>,
    user: &User,
    session_id: i64,
    format: pb::ExportFormat,
) -> Result<pb::ExportedFile, tonic::Status> {
    Ok(client
        .export_session(user.req(pb::ExportSessionRequest {
            session_id,
            format: format as i32,
        }))
        .await?
        .into_inner()
        .file
        .unwrap())
}

async fn import(
    client: &mut TransferServiceClient<tonic::transport::Channel>,
    user: &User,
    content: &[u8],
    format: pb::ImportFormat,
) -> Result<Vec<pb::Session>, tonic::Status> {
    Ok(client
        .import_sessions(user.req(pb::ImportSessionsRequest {
            content: content.to_vec(),
            format: format as i32,
        }))
        .await?
        .into_inner()
        .sessions)
}

async fn session_count(stack: &Stack) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_sessions")
        .fetch_one(&stack.database().await)
        .await
        .unwrap();
    n
}

on_every_backend!(
    a_chat_exports_as_json_and_markdown_only_to_its_owner,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = stack.user("alice").await;
        let bob = stack.user("bob").await;
        let session = chat_with(&stack, &alice, "Trip plans", &["Where to go in May?", "And in June?"]).await;
        let bobs = chat_with(&stack, &bob, "Bob's secret plans", &["bob's private question"]).await;
        let mut client = transfer(&stack).await;
        let messages = alice.list_messages(session.id).await;
        assert_eq!(messages.len(), 4);

        let file = export(&mut client, &alice, session.id, pb::ExportFormat::Json)
            .await
            .unwrap();
        assert_eq!(file.media_type, "application/json");
        assert_eq!(file.name, format!("{}-trip-plans.json", session.id));
        let json: serde_json::Value = serde_json::from_str(&file.content).unwrap();
        assert_eq!(json["format"], "parley.chat");
        assert_eq!(json["version"], 2);
        assert_eq!(json["chat"]["title"], "Trip plans");
        assert_eq!(json["chat"]["system_prompt"], "System prompt of Trip plans");
        assert_eq!(json["chat"]["api_config"], "config for Trip plans");
        let exported = json["chat"]["messages"].as_array().unwrap();
        assert_eq!(exported.len(), messages.len());
        for (exported, stored) in exported.iter().zip(&messages) {
            assert_eq!(exported["id"], stored.id);
            assert_eq!(exported["content"], stored.content.as_str());
            assert_eq!(exported["status"], "complete");
            let role = if stored.role == pb::MessageRole::User as i32 {
                "user"
            } else {
                "assistant"
            };
            assert_eq!(exported["role"], role);
            if role == "assistant" {
                assert_eq!(exported["model"], "fake-model");
                assert_eq!(exported["reply_to"], stored.reply_to_id.unwrap());
            }
        }
        assert!(!file.content.contains("bob"), "{}", file.content);
        assert!(!file.content.contains(&stack.fake.api_key()));

        let markdown = export(&mut client, &alice, session.id, pb::ExportFormat::Markdown)
            .await
            .unwrap();
        assert_eq!(markdown.media_type, "text/markdown");
        assert!(markdown.content.starts_with("# Trip plans\n"), "{}", markdown.content);
        assert!(markdown.content.contains("> System prompt of Trip plans"));
        assert!(markdown.content.contains("### User · "));
        assert!(markdown.content.contains("Where to go in May?"));
        assert!(markdown.content.contains("### Assistant (fake-model) · "));
        assert!(markdown.content.contains(&messages[3].content));

        // Someone else's chat, or none, is NOT_FOUND; a missing format says so.
        for (user, id) in [(&bob, session.id), (&alice, bobs.id), (&alice, 999_999)] {
            let status = export(&mut client, user, id, pb::ExportFormat::Json).await.unwrap_err();
            assert_eq!(status.code(), Code::NotFound, "{status:?}");
        }
        let status = export(&mut client, &alice, session.id, pb::ExportFormat::Unspecified)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("format"), "{status:?}");
        stack.stop().await;
    }
);

on_every_backend!(
    an_accounts_export_holds_its_own_data_and_no_keys,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = stack.user("alice").await;
        let bob = stack.user("bob").await;
        let first = chat_with(&stack, &alice, "First", &["one"]).await;
        let second = chat_with(&stack, &alice, "Second", &["two"]).await;
        chat_with(&stack, &bob, "Bob's", &["bob's private question"]).await;
        alice
            .personas()
            .create_persona(alice.req(pb::CreatePersonaRequest {
                name: "Pirate".into(),
                description: "Talks like one".into(),
                system_prompt: "Arr.".into(),
                ..Default::default()
            }))
            .await
            .unwrap();
        let mut client = transfer(&stack).await;
        let files: Vec<pb::ExportedFile> = client
            .export_account_data(alice.req(pb::ExportAccountDataRequest {}))
            .await
            .unwrap()
            .into_inner()
            .map(|r| r.unwrap().file.unwrap())
            .collect()
            .await;
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        let mut chats: Vec<String> = vec![
            format!("chats/{}-first.json", first.id),
            format!("chats/{}-second.json", second.id),
        ];
        chats.sort();
        let mut listed: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with("chats/"))
            .map(|n| n.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, chats);
        assert_eq!(&names[..3], ["settings.json", "personas.json", "api_configs.json"]);
        let everything: String = files.iter().map(|f| f.content.as_str()).collect();
        assert!(everything.contains("\"Pirate\""));
        assert!(everything.contains("config for First"));
        assert!(!everything.contains(&stack.fake.api_key()), "an API key was exported");
        assert!(!everything.contains("api_key"), "a key field was exported");
        assert!(!everything.contains("bob"), "another user's data was exported");
        stack.stop().await;
    }
);

on_every_backend!(a_parley_export_imports_back_as_it_was, |db_url: String| async move {
    let stack = Stack::start(&db_url).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let original = chat_with(&stack, &alice, "Round trip", &["first question", "second question"]).await;
    let mut client = transfer(&stack).await;
    let file = export(&mut client, &alice, original.id, pb::ExportFormat::Json)
        .await
        .unwrap();

    for user in [&alice, &bob] {
        let imported = import(
            &mut client,
            user,
            file.content.as_bytes(),
            pb::ImportFormat::Unspecified,
        )
        .await
        .unwrap();
        assert_eq!(imported.len(), 1);
        let copy = &imported[0];
        assert_ne!(copy.id, original.id);
        assert_eq!(copy.title, original.title);
        assert_eq!(copy.system_prompt, original.system_prompt);
        assert_eq!(copy.model, original.model);
        assert_eq!(copy.temperature, original.temperature);
        assert_eq!(copy.start_time, original.start_time);
        assert_eq!(copy.pinned, original.pinned);
        // The copy's config is the importer's default (keys never travel).
        assert_eq!(copy.api_config_id, None);
        let before = alice.list_messages(original.id).await;
        let after = user.list_messages(copy.id).await;
        assert_eq!(after.len(), before.len());
        let position =
            |messages: &[pb::Message], id: Option<i64>| id.map(|id| messages.iter().position(|m| m.id == id));
        for (a, b) in after.iter().zip(&before) {
            assert_eq!(a.session_id, copy.id);
            assert_eq!(
                (
                    a.role,
                    &a.content,
                    &a.reasoning,
                    a.status,
                    &a.model,
                    &a.usage,
                    a.created_at,
                    a.updated_at
                ),
                (
                    b.role,
                    &b.content,
                    &b.reasoning,
                    b.status,
                    &b.model,
                    &b.usage,
                    b.created_at,
                    b.updated_at
                )
            );
            assert_eq!(position(&after, a.reply_to_id), position(&before, b.reply_to_id));
        }
        // And it exports the same again.
        let again = export(&mut client, user, copy.id, pb::ExportFormat::Json)
            .await
            .unwrap();
        let strip = |content: &str| {
            let mut json: serde_json::Value = serde_json::from_str(content).unwrap();
            json["exported_at"] = serde_json::Value::Null;
            json["chat"]["api_config"] = serde_json::Value::Null;
            json["chat"]["current"] = serde_json::Value::Null;
            for m in json["chat"]["messages"].as_array_mut().unwrap() {
                m["id"] = serde_json::Value::Null;
                m["reply_to"] = serde_json::Value::Null;
                m["parent"] = serde_json::Value::Null;
            }
            json
        };
        assert_eq!(strip(&again.content), strip(&file.content));
    }
    // The copy can be continued like any chat.
    let copy = import(
        &mut client,
        &alice,
        file.content.as_bytes(),
        pb::ImportFormat::ParleyJson,
    )
    .await
    .unwrap()
    .remove(0);
    stack.fake_config(&alice, "default").await;
    let mut events = alice.send(copy.id, "third question").await;
    while events.message().await.unwrap().is_some() {}
    assert_eq!(alice.list_messages(copy.id).await.len(), 6);
    stack.stop().await;
});

on_every_backend!(
    a_chatgpt_export_imports_its_current_branch,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = stack.user("alice").await;
        let mut client = transfer(&stack).await;
        let imported = import(
            &mut client,
            &alice,
            CHATGPT_SAMPLE.as_bytes(),
            pb::ImportFormat::Unspecified,
        )
        .await
        .unwrap();
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].title, "Japan trip");
        assert_eq!(imported[0].start_time.unwrap().seconds, 1_700_000_000);
        let messages = alice.list_messages(imported[0].id).await;
        let texts: Vec<(i32, &str, &str)> = messages
            .iter()
            .map(|m| (m.role, m.content.as_str(), m.model.as_str()))
            .collect();
        let (user, assistant) = (pb::MessageRole::User as i32, pb::MessageRole::Assistant as i32);
        assert_eq!(
            texts,
            [
                (user, "Plan a trip to Japan", ""),
                (assistant, "Which city first?", "gpt-4o"),
                (user, "Kyoto?", ""),
                (assistant, "Kyoto has temples.", "gpt-4o"),
            ]
        );
        assert_eq!(messages[3].reply_to_id, Some(messages[2].id));
        assert_eq!(messages[3].created_at.unwrap().seconds, 1_700_000_006);
        // Told as ChatGPT's, a Parley file is refused, and the other way round.
        let status = import(
            &mut client,
            &alice,
            CHATGPT_SAMPLE.as_bytes(),
            pb::ImportFormat::ParleyJson,
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        stack.stop().await;
    }
);

on_every_backend!(a_bad_import_changes_nothing, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.max_import_bytes = 20_000;
        config.quotas.sessions = 5;
    })
    .await;
    let alice = stack.user("alice").await;
    let original = chat_with(&stack, &alice, "Good", &["a question"]).await;
    let mut client = transfer(&stack).await;
    let good = export(&mut client, &alice, original.id, pb::ExportFormat::Json)
        .await
        .unwrap()
        .content;
    let chat: serde_json::Value = serde_json::from_str::<serde_json::Value>(&good).unwrap()["chat"].clone();
    let mut bad_chat = chat.clone();
    bad_chat["messages"][1]["role"] = "tool".into();
    let two_chats = |second: serde_json::Value| {
        serde_json::json!({"format": "parley.chats", "version": 1, "chats": [chat.clone(), second]}).to_string()
    };
    let mut nul = chat.clone();
    nul["messages"][0]["content"] = "a\u{0}b".into();
    let five: Vec<_> = (0..5).map(|_| chat.clone()).collect();
    let over_quota = serde_json::json!({"format": "parley.chats", "version": 1, "chats": five}).to_string();
    let before = session_count(&stack).await;
    for (content, code, says) in [
        (
            two_chats(bad_chat),
            Code::InvalidArgument,
            "chat 2, message 2: role \"tool\"",
        ),
        (
            two_chats(nul),
            Code::InvalidArgument,
            "chat 2 (\"Good\"), message 1: the text contains a NUL",
        ),
        (
            "{\"format\": \"parley.chat\", \"version\": 9}".to_owned(),
            Code::InvalidArgument,
            "version 9",
        ),
        ("not json".to_owned(), Code::InvalidArgument, "is not JSON"),
        (String::new(), Code::InvalidArgument, "is empty"),
        ("x".repeat(20_001), Code::InvalidArgument, "at most 20000 bytes"),
        // Five more sessions where five are allowed and one exists: none are stored.
        (over_quota, Code::ResourceExhausted, "sessions"),
    ] {
        let status = import(&mut client, &alice, content.as_bytes(), pb::ImportFormat::Unspecified)
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{says}: {status:?}");
        assert!(status.message().contains(says), "{status:?} should say {says}");
        if code == Code::InvalidArgument {
            assert!(status.message().starts_with("content: "), "{status:?}");
        }
        assert_eq!(session_count(&stack).await, before, "{says}: something was stored");
    }
    let status = import(&mut client, &alice, &[0xff, 0xfe, 0x00], pb::ImportFormat::Unspecified)
        .await
        .unwrap_err();
    assert!(status.message().contains("not UTF-8"), "{status:?}");
    assert_eq!(session_count(&stack).await, before);
    // Three fit.
    let three =
        serde_json::json!({"format": "parley.chats", "version": 1, "chats": [chat.clone(), chat.clone(), chat]});
    let imported = import(
        &mut client,
        &alice,
        three.to_string().as_bytes(),
        pb::ImportFormat::Unspecified,
    )
    .await
    .unwrap();
    assert_eq!(imported.len(), 3);
    stack.stop().await;
});
