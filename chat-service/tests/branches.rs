//! Versions and branches over gRPC on both backends: a regenerated answer is a new version
//! beside the old one, an edited question forks a branch, SwitchBranch shows another version
//! (and the model is shown only the branch being shown), deleting a version removes what
//! followed it, and the tree survives export and import.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    Reply, Stack, User, assert_code, assert_invalid, collect, collect_send, question_id, role_and_content, started_id,
};
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::chat::v1::share_service_client::ShareServiceClient;
use parley_proto::chat::v1::shared_chat_service_client::SharedChatServiceClient;
use parley_proto::chat::v1::transfer_service_client::TransferServiceClient;
use parley_testkit::{on_every_backend, wait};
use tonic::Code;

async fn alice_chatting(stack: &Stack) -> (User, pb::Session) {
    let alice = stack.user("alice").await;
    stack.fake_config(&alice, "fake").await;
    let session = alice
        .create_session(pb::CreateSessionRequest {
            title: Some("branches".into()),
            ..Default::default()
        })
        .await;
    (alice, session)
}

/// Sends `content` (as a new version of `version_of`, if given) and waits for its answer,
/// which the fake writes as `answer`. Answers (question id, answer id).
async fn ask(
    stack: &Stack,
    user: &User,
    session_id: i64,
    content: &str,
    version_of: Option<i64>,
    answer: &str,
) -> (i64, i64) {
    stack.fake.push_reply(Reply::text(answer));
    let stream = user
        .messages()
        .send_message(user.req(pb::SendMessageRequest {
            session_id,
            content: content.into(),
            api_config_id: None,
            version_of_id: version_of,
        }))
        .await
        .unwrap()
        .into_inner();
    let events = collect_send(stream).await;
    let question = question_id(&events);
    let answer_id = started_id(&events);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Completed(m) if m.content == answer)),
        "{events:?}"
    );
    (question, answer_id)
}

/// Regenerates `message_id`; the fake writes `answer`. Answers the new answer's id.
async fn regenerate(stack: &Stack, user: &User, message_id: i64, answer: &str) -> i64 {
    stack.fake.push_reply(Reply::text(answer));
    let stream = user
        .messages()
        .regenerate_message(user.req(pb::RegenerateMessageRequest {
            message_id,
            api_config_id: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let events = collect(stream, |r: pb::RegenerateMessageResponse| r.event).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Completed(m) if m.content == answer)),
        "{events:?}"
    );
    started_id(&events)
}

async fn list(user: &User, session_id: i64) -> pb::ListMessagesResponse {
    user.messages()
        .list_messages(user.req(pb::ListMessagesRequest {
            session_id,
            page_size: 100,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn switch(user: &User, message_id: i64) -> Result<pb::SwitchBranchResponse, tonic::Status> {
    Ok(user
        .messages()
        .switch_branch(user.req(pb::SwitchBranchRequest {
            message_id,
            page_size: 0,
        }))
        .await?
        .into_inner())
}

fn texts(messages: &[pb::Message]) -> Vec<&str> {
    messages.iter().map(|m| m.content.as_str()).collect()
}

/// What the model was shown with the last request: (role, content) pairs.
fn last_context(stack: &Stack) -> Vec<(String, String)> {
    role_and_content(&stack.fake.chat_requests().pop().unwrap().body)
}

fn contents(context: &[(String, String)]) -> Vec<&str> {
    context.iter().map(|(_, c)| c.as_str()).collect()
}

on_every_backend!(
    regenerating_keeps_every_answer_as_a_version_and_switching_shows_its_branch,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack).await;
        let (q1, a1) = ask(&stack, &alice, session.id, "Where to?", None, "Kyoto").await;
        let a2 = regenerate(&stack, &alice, a1, "Osaka").await;

        // The new answer is shown; the old one is its other version, still stored.
        let page = list(&alice, session.id).await;
        assert_eq!(texts(&page.messages), ["Where to?", "Osaka"]);
        assert_eq!(page.current_message_id, a2);
        assert!(page.messages[0].sibling_ids.is_empty(), "the only version");
        assert_eq!(page.messages[0].parent_id, None);
        assert_eq!(page.messages[1].sibling_ids, [a1, a2]);
        assert_eq!(page.messages[1].parent_id, Some(q1));
        assert_eq!(alice.message(a1).await.content, "Kyoto");

        // The next question follows the shown version, and only it reaches the model.
        let (q2, a3) = ask(&stack, &alice, session.id, "When?", None, "In May").await;
        assert_eq!(contents(&last_context(&stack)), ["Where to?", "Osaka", "When?"]);
        assert_eq!(alice.message(q2).await.parent_id, Some(a2));

        // Switching to the first version shows its branch (which ends there) ...
        let switched = switch(&alice, a1).await.unwrap();
        assert_eq!(texts(&switched.messages), ["Where to?", "Kyoto"]);
        assert_eq!(switched.current_message_id, a1);
        assert_eq!(switched.messages[1].sibling_ids, [a1, a2]);
        // ... and stays switched: it is the server's state.
        assert_eq!(texts(&list(&alice, session.id).await.messages), ["Where to?", "Kyoto"]);
        let (_, a4) = ask(&stack, &alice, session.id, "Why?", None, "Temples").await;
        assert_eq!(contents(&last_context(&stack)), ["Where to?", "Kyoto", "Why?"]);

        // Back to the second version: down to where that branch ended, not its first message.
        let back = switch(&alice, a2).await.unwrap();
        assert_eq!(texts(&back.messages), ["Where to?", "Osaka", "When?", "In May"]);
        assert_eq!(back.current_message_id, a3);
        // And to the first again: to "Temples", the end of the branch shown last there.
        let again = switch(&alice, a1).await.unwrap();
        assert_eq!(again.current_message_id, a4);

        // Every branch at once, oldest first, for clients that draw the whole tree.
        let all = alice
            .messages()
            .list_messages(alice.req(pb::ListMessagesRequest {
                session_id: session.id,
                all_branches: true,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.messages.len(), 7);
        assert_eq!(all.current_message_id, a4);

        // The branch pages like the whole chat did: the same messages, one at a time.
        let mut paged = Vec::new();
        let mut token = String::new();
        loop {
            let page = alice
                .messages()
                .list_messages(alice.req(pb::ListMessagesRequest {
                    session_id: session.id,
                    page_size: 1,
                    page_token: token.clone(),
                    all_branches: false,
                }))
                .await
                .unwrap()
                .into_inner();
            paged.extend(page.messages);
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(texts(&paged), ["Where to?", "Kyoto", "Why?", "Temples"]);
        stack.stop().await;
    }
);

on_every_backend!(
    editing_a_question_forks_a_branch_and_never_rewrites_the_old_one,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack).await;
        let (q1, _) = ask(&stack, &alice, session.id, "Where to?", None, "Kyoto").await;
        let (q2, a2) = ask(&stack, &alice, session.id, "When?", None, "In May").await;

        // A question with replies is not edited in place; nothing changes.
        assert_code(
            alice
                .messages()
                .update_message(alice.req(pb::UpdateMessageRequest {
                    id: q1,
                    content: "Where to in winter?".into(),
                }))
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(alice.message(q1).await.content, "Where to?");

        // Sent as a new version of the first question: a branch from the start.
        let (q1b, _) = ask(&stack, &alice, session.id, "Where to in winter?", Some(q1), "Sapporo").await;
        assert_eq!(contents(&last_context(&stack)), ["Where to in winter?"]);
        let page = list(&alice, session.id).await;
        assert_eq!(texts(&page.messages), ["Where to in winter?", "Sapporo"]);
        assert_eq!(page.messages[0].sibling_ids, [q1, q1b]);
        assert_eq!(page.messages[0].parent_id, None);

        // A later question edited on the old branch forks there, keeping the start.
        switch(&alice, q1).await.unwrap();
        let (q2b, _) = ask(&stack, &alice, session.id, "When is it cheap?", Some(q2), "In June").await;
        assert_eq!(
            contents(&last_context(&stack)),
            ["Where to?", "Kyoto", "When is it cheap?"]
        );
        let page = list(&alice, session.id).await;
        assert_eq!(
            texts(&page.messages),
            ["Where to?", "Kyoto", "When is it cheap?", "In June"]
        );
        assert_eq!(page.messages[2].sibling_ids, [q2, q2b]);
        // The old branch is untouched.
        let old = switch(&alice, q2).await.unwrap();
        assert_eq!(texts(&old.messages), ["Where to?", "Kyoto", "When?", "In May"]);

        // An answer is still edited in place (the user's correction of what it says).
        alice
            .messages()
            .update_message(alice.req(pb::UpdateMessageRequest {
                id: a2,
                content: "In May, for the green".into(),
            }))
            .await
            .unwrap();
        assert_eq!(alice.message(a2).await.content, "In May, for the green");

        // Bad versions: an answer, a message of another chat, someone else's.
        let send = |version_of_id: i64, session_id: i64, user: &User| {
            let request = user.req(pb::SendMessageRequest {
                session_id,
                content: "again".into(),
                api_config_id: None,
                version_of_id: Some(version_of_id),
            });
            let mut client = user.messages();
            async move { client.send_message(request).await.map(|_| ()) }
        };
        assert_invalid(send(a2, session.id, &alice).await, "version_of_id");
        let other = alice.create_session(pb::CreateSessionRequest::default()).await;
        assert_invalid(send(q1, other.id, &alice).await, "version_of_id");
        let bob = stack.user("bob").await;
        stack.fake_config(&bob, "bob's").await;
        let bobs = bob.create_session(pb::CreateSessionRequest::default()).await;
        assert_invalid(send(q1, bobs.id, &bob).await, "version_of_id");
        assert_eq!(list(&alice, other.id).await.messages.len(), 0);
        assert_eq!(list(&bob, bobs.id).await.messages.len(), 0);
        stack.stop().await;
    }
);

on_every_backend!(
    deleting_a_version_removes_what_followed_it_and_shows_another,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack).await;
        let (q1, a1) = ask(&stack, &alice, session.id, "Where to?", None, "Kyoto").await;
        let a2 = regenerate(&stack, &alice, a1, "Osaka").await;
        let (q2, a3) = ask(&stack, &alice, session.id, "When?", None, "In May").await;

        // Others can neither switch nor delete (NOT_FOUND, as for a missing message).
        let bob = stack.user("bob").await;
        assert_code(switch(&bob, a1).await, Code::NotFound);
        assert_code(
            bob.messages()
                .delete_message(bob.req(pb::DeleteMessageRequest { id: a2 }))
                .await,
            Code::NotFound,
        );
        assert_code(switch(&alice, 999_999).await, Code::NotFound);

        // Not while an answer is being written: neither switching nor deleting above it.
        stack.fake.push_reply(
            Reply::text("slow ".repeat(200))
                .chunk_size(5)
                .chunk_delay(std::time::Duration::from_millis(20)),
        );
        let mut streaming = alice.send(session.id, "Tell me more").await;
        let streaming_id = loop {
            if let Some(Event::AssistantStarted(m)) = common::next_event(&mut streaming).await {
                break m.id;
            }
        };
        let refused = switch(&alice, a1).await;
        assert_code(refused, Code::FailedPrecondition);
        assert_code(
            alice
                .messages()
                .delete_message(alice.req(pb::DeleteMessageRequest { id: a2 }))
                .await,
            Code::FailedPrecondition,
        );
        alice
            .messages()
            .stop_generation(alice.req(pb::StopGenerationRequest {
                message_id: streaming_id,
            }))
            .await
            .unwrap();
        alice.wait_finished(streaming_id).await;

        // Deleting the shown version takes its branch with it; the other version shows.
        alice
            .messages()
            .delete_message(alice.req(pb::DeleteMessageRequest { id: a2 }))
            .await
            .unwrap();
        for gone in [a2, q2, a3, streaming_id] {
            assert_code(
                alice
                    .messages()
                    .get_message(alice.req(pb::GetMessageRequest { id: gone }))
                    .await,
                Code::NotFound,
            );
        }
        let page = list(&alice, session.id).await;
        assert_eq!(texts(&page.messages), ["Where to?", "Kyoto"]);
        assert!(page.messages[1].sibling_ids.is_empty(), "the only version left");
        assert_eq!(page.current_message_id, a1);

        // The last answer gone, the question ends the branch and is answered again beside it.
        alice
            .messages()
            .delete_message(alice.req(pb::DeleteMessageRequest { id: a1 }))
            .await
            .unwrap();
        let page = list(&alice, session.id).await;
        assert_eq!(page.current_message_id, q1);
        let a4 = regenerate(&stack, &alice, q1, "Nara").await;
        let page = list(&alice, session.id).await;
        assert_eq!(texts(&page.messages), ["Where to?", "Nara"]);
        assert_eq!(page.current_message_id, a4);

        // The first question deleted: the chat is empty.
        alice
            .messages()
            .delete_message(alice.req(pb::DeleteMessageRequest { id: q1 }))
            .await
            .unwrap();
        let page = list(&alice, session.id).await;
        assert!(page.messages.is_empty());
        assert_eq!(page.current_message_id, 0);
        stack.stop().await;
    }
);

on_every_backend!(
    the_tree_survives_export_and_import_and_shares_show_the_shown_branch,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let (alice, session) = alice_chatting(&stack).await;
        alice
            .sessions()
            .update_session(alice.req(pb::UpdateSessionRequest {
                id: session.id,
                top_p: Some(0.5),
                max_tokens: Some(256),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["top_p".into(), "max_tokens".into()],
                }),
                ..Default::default()
            }))
            .await
            .unwrap();
        let (q1, a1) = ask(&stack, &alice, session.id, "Where to?", None, "Kyoto").await;
        regenerate(&stack, &alice, a1, "Osaka").await;
        ask(&stack, &alice, session.id, "When?", None, "In May").await;
        ask(&stack, &alice, session.id, "Where in winter?", Some(q1), "Sapporo").await;
        switch(&alice, a1).await.unwrap();

        let mut transfer = TransferServiceClient::new(wait::channel(stack.chat_address()).await);
        let export = |format: pb::ExportFormat| {
            let request = alice.req(pb::ExportSessionRequest {
                session_id: session.id,
                format: format as i32,
            });
            let mut client = transfer.clone();
            async move { client.export_session(request).await.unwrap().into_inner().file.unwrap() }
        };
        let json = export(pb::ExportFormat::Json).await;
        let value: serde_json::Value = serde_json::from_str(&json.content).unwrap();
        assert_eq!(value["version"], 2);
        assert_eq!(value["chat"]["top_p"], 0.5);
        assert_eq!(value["chat"]["max_tokens"], 256);
        assert_eq!(value["chat"]["current"], a1);
        let messages = value["chat"]["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 7, "every version and branch");
        let by_text = |text: &str| messages.iter().find(|m| m["content"] == text).unwrap();
        assert_eq!(by_text("Kyoto")["parent"], q1);
        assert_eq!(by_text("Osaka")["parent"], q1);
        assert_eq!(by_text("When?")["parent"], by_text("Osaka")["id"]);
        assert!(by_text("Where in winter?").get("parent").is_none());
        assert!(
            messages
                .iter()
                .all(|m| m["role"] == "user" || m["api_config_name"] == "fake")
        );

        // Markdown reads as one conversation: the shown branch.
        let markdown = export(pb::ExportFormat::Markdown).await.content;
        assert!(
            markdown.contains("Kyoto") && !markdown.contains("Osaka") && !markdown.contains("Sapporo"),
            "{markdown}"
        );

        // Imported back: the same tree, the same branch shown, the same settings.
        let imported = transfer
            .import_sessions(alice.req(pb::ImportSessionsRequest {
                content: json.content.into_bytes(),
                format: pb::ImportFormat::Unspecified as i32,
            }))
            .await
            .unwrap()
            .into_inner()
            .sessions;
        let copy = &imported[0];
        assert_eq!((copy.top_p, copy.max_tokens), (Some(0.5), Some(256)));
        let page = list(&alice, copy.id).await;
        assert_eq!(texts(&page.messages), ["Where to?", "Kyoto"]);
        assert_eq!(page.messages[0].sibling_ids.len(), 2);
        assert_eq!(page.messages[1].sibling_ids.len(), 2);
        let osaka = page.messages[1].sibling_ids[1];
        let other = switch(&alice, osaka).await.unwrap();
        assert_eq!(texts(&other.messages), ["Where to?", "Osaka", "When?", "In May"]);

        // A share link copies the branch being shown, not the versions beside it.
        let link = ShareServiceClient::new(wait::channel(stack.chat_address()).await)
            .create_share_link(alice.req(pb::CreateShareLinkRequest { session_id: session.id }))
            .await
            .unwrap()
            .into_inner()
            .link
            .unwrap();
        let shared = SharedChatServiceClient::new(wait::channel(stack.chat_address()).await)
            .get_shared_chat(pb::GetSharedChatRequest {
                share_token: link.share_token,
            })
            .await
            .unwrap()
            .into_inner();
        let shared_texts: Vec<String> = shared
            .chat
            .unwrap()
            .messages
            .iter()
            .map(|m| m.content.clone())
            .collect();
        assert_eq!(shared_texts, ["Where to?", "Kyoto"]);
        stack.stop().await;
    }
);

on_every_backend!(
    migration_0013_makes_existing_chats_one_chain_and_leaves_rooms_alone,
    |db_url: String| async move {
        // The database as it was before the tree: migrations up to 0012, rows written then.
        sqlx::any::install_default_drivers();
        let migrator = if db_url.starts_with("sqlite") {
            chat_service::MIGRATIONS.sqlite
        } else {
            chat_service::MIGRATIONS.postgres
        };
        let pool = sqlx::AnyPool::connect(&db_url).await.unwrap();
        migrator.run_to(12, &pool).await.unwrap();
        let exec = |sql: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query(sql).execute(&pool).await.unwrap() }
        };
        exec("INSERT INTO chat_sessions (id, user_id, start_time, updated_at, last_active_at) VALUES (1, 1, 0, 0, 0)")
            .await;
        exec("INSERT INTO chat_sessions (id, user_id, start_time, updated_at, last_active_at) VALUES (2, 0, 0, 0, 0)")
            .await;
        // q1, its answer a2, a failed regeneration a3 placed beside it (the chain goes on from
        // the finished one), q4 and its answer a5;
        // and two room messages.
        exec(
            "INSERT INTO chat_messages (id, session_id, role, content, status, reply_to_id, created_at, updated_at) VALUES \
             (1, 1, 'user', 'q1', 'complete', NULL, 10, 10), \
             (2, 1, 'assistant', 'a2', 'complete', 1, 10, 10), \
             (3, 1, 'assistant', '', 'failed', 1, 10, 12), \
             (4, 1, 'user', 'q4', 'complete', NULL, 20, 20), \
             (5, 1, 'assistant', 'a5', 'complete', 4, 20, 20), \
             (6, 2, 'user', 'hello room', 'complete', NULL, 30, 30), \
             (7, 2, 'user', 'hi', 'complete', 6, 31, 31)",
        )
        .await;
        pool.close().await;

        let database = parley_service_kit::database::connect(&db_url, &chat_service::MIGRATIONS)
            .await
            .unwrap();
        let parents: Vec<(i64, Option<i64>)> = sqlx::query_as("SELECT id, parent_id FROM chat_messages ORDER BY id")
            .fetch_all(&database.pool)
            .await
            .unwrap();
        assert_eq!(
            parents,
            [
                (1, None),
                (2, Some(1)),
                (3, Some(1)),
                (4, Some(2)),
                (5, Some(4)),
                (6, None),
                (7, None)
            ]
        );
        let current: Vec<(i64, Option<i64>)> =
            sqlx::query_as("SELECT id, current_message_id FROM chat_sessions ORDER BY id")
                .fetch_all(&database.pool)
                .await
                .unwrap();
        assert_eq!(current, [(1, Some(5)), (2, None)]);
    }
);
