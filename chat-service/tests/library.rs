//! The chat screen's library (issue 15): saved prompts, folders and the archive's own view,
//! and what deleting a persona or an API config does to the chats that use it. Every test
//! runs on SQLite and, when configured, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::chat::v1 as pb;
use parley_testkit::on_every_backend;
use tonic::Code;

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn create_prompt(user: &User, title: &str, command: &str, body: &str) -> Result<pb::Prompt, tonic::Status> {
    user.prompts()
        .create_prompt(user.req(pb::CreatePromptRequest {
            title: title.into(),
            command: command.into(),
            body: body.into(),
        }))
        .await
        .map(|r| r.into_inner().prompt.unwrap())
}

async fn list_prompts(user: &User) -> Vec<pb::Prompt> {
    user.prompts()
        .list_prompts(user.req(pb::ListPromptsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .prompts
}

on_every_backend!(prompts_are_owned_checked_and_limited, |db_url: String| async move {
    let stack = Stack::start_with(&db_url, |config| {
        config.library.max_prompts = 2;
        config.library.max_prompt_bytes = 64;
    })
    .await;
    let alice = stack.user("alice").await;
    let mallory = stack.user("mallory").await;
    let db = stack.database().await;

    let explain = create_prompt(
        &alice,
        " Explain ",
        "explain",
        "Explain {{topic}} to a {{ audience }}; {{topic}}!",
    )
    .await
    .unwrap();
    assert_eq!(explain.title, "Explain");
    assert_eq!(explain.command, "explain");
    assert_eq!(explain.variables, ["topic", "audience"]);

    // Every bad field names itself and stores nothing.
    assert_invalid(create_prompt(&alice, "", "x", "body").await, "title");
    assert_invalid(create_prompt(&alice, "T", "", "body").await, "command");
    assert_invalid(create_prompt(&alice, "T", "Has Space", "body").await, "command");
    assert_invalid(create_prompt(&alice, "T", "-dash", "body").await, "command");
    assert_invalid(create_prompt(&alice, "T", "ok", "  ").await, "body");
    assert_invalid(create_prompt(&alice, "T", "ok", &"x".repeat(65)).await, "body");
    assert_invalid(create_prompt(&alice, "T", "ok", "nul\0").await, "body");
    assert_code(
        create_prompt(&alice, "Again", "explain", "other").await,
        Code::AlreadyExists,
    );
    assert_eq!(count_rows(&db, "prompts").await, 1);

    // Commands are per user: Mallory may use the same one, and sees only his own.
    let mallorys = create_prompt(&mallory, "Mine", "explain", "mine").await.unwrap();
    assert_eq!(list_prompts(&mallory).await.len(), 1);

    // The limit counts per account.
    create_prompt(&alice, "Fix", "fix-code", "Fix this:").await.unwrap();
    assert_code(
        create_prompt(&alice, "Third", "third", "x").await,
        Code::ResourceExhausted,
    );
    assert_eq!(
        list_prompts(&alice)
            .await
            .iter()
            .map(|p| p.command.as_str())
            .collect::<Vec<_>>(),
        ["explain", "fix-code"]
    );

    // Updates by mask; a taken command or a bad field changes nothing.
    let updated = alice
        .prompts()
        .update_prompt(alice.req(pb::UpdatePromptRequest {
            id: explain.id,
            body: Some("Summarize {{text}}".into()),
            update_mask: mask(&["body"]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .prompt
        .unwrap();
    assert_eq!(updated.variables, ["text"]);
    assert_eq!(updated.title, "Explain");
    assert_code(
        alice
            .prompts()
            .update_prompt(alice.req(pb::UpdatePromptRequest {
                id: explain.id,
                command: Some("fix-code".into()),
                ..Default::default()
            }))
            .await,
        Code::AlreadyExists,
    );
    assert_invalid(
        alice
            .prompts()
            .update_prompt(alice.req(pb::UpdatePromptRequest {
                id: explain.id,
                update_mask: mask(&["title"]),
                ..Default::default()
            }))
            .await,
        "title",
    );
    assert_eq!(list_prompts(&alice).await[0].body, "Summarize {{text}}");

    // Another's prompt is NOT_FOUND, exactly as a missing one.
    for id in [mallorys.id, 999_999] {
        assert_code(
            alice
                .prompts()
                .update_prompt(alice.req(pb::UpdatePromptRequest {
                    id,
                    title: Some("taken over".into()),
                    ..Default::default()
                }))
                .await,
            Code::NotFound,
        );
        assert_code(
            alice
                .prompts()
                .delete_prompt(alice.req(pb::DeletePromptRequest { id }))
                .await,
            Code::NotFound,
        );
    }
    assert_eq!(list_prompts(&mallory).await[0].title, "Mine");

    alice
        .prompts()
        .delete_prompt(alice.req(pb::DeletePromptRequest { id: explain.id }))
        .await
        .unwrap();
    assert_eq!(list_prompts(&alice).await.len(), 1);
    create_prompt(&alice, "Third", "third", "x").await.unwrap();
    stack.stop().await;
});

async fn create_folder(user: &User, name: &str) -> Result<pb::Folder, tonic::Status> {
    user.folders()
        .create_folder(user.req(pb::CreateFolderRequest { name: name.into() }))
        .await
        .map(|r| r.into_inner().folder.unwrap())
}

async fn move_to_folder(user: &User, session_id: i64, folder_id: i64) -> Result<pb::Session, tonic::Status> {
    user.sessions()
        .update_session(user.req(pb::UpdateSessionRequest {
            id: session_id,
            folder_id: Some(folder_id),
            update_mask: mask(&["folder_id"]),
            ..Default::default()
        }))
        .await
        .map(|r| r.into_inner().session.unwrap())
}

async fn titles(user: &User, include_archived: bool, only_archived: bool) -> Vec<String> {
    let mut titles: Vec<String> = user
        .sessions()
        .list_sessions(user.req(pb::ListSessionsRequest {
            page_size: 100,
            include_archived,
            only_archived,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .sessions
        .into_iter()
        .map(|s| s.title)
        .collect();
    titles.sort();
    titles
}

on_every_backend!(
    folders_hold_chats_and_the_archive_lists_alone,
    |db_url: String| async move {
        let stack = Stack::start_with(&db_url, |config| config.library.max_folders = 2).await;
        let alice = stack.user("alice").await;
        let mallory = stack.user("mallory").await;
        let work = create_folder(&alice, " Work ").await.unwrap();
        assert_eq!(work.name, "Work");
        assert_invalid(create_folder(&alice, " ").await, "name");
        assert_code(create_folder(&alice, "Work").await, Code::AlreadyExists);
        let chat = alice
            .create_session(pb::CreateSessionRequest {
                title: Some("Plan".into()),
                ..Default::default()
            })
            .await;
        let kept_out = alice
            .create_session(pb::CreateSessionRequest {
                title: Some("Loose".into()),
                ..Default::default()
            })
            .await;

        assert_eq!(
            move_to_folder(&alice, chat.id, work.id).await.unwrap().folder_id,
            Some(work.id)
        );
        assert_eq!(alice.session(chat.id).await.folder_id, Some(work.id));

        // Mallory's folder is NOT_FOUND to Alice: nothing moves; nor may he touch hers.
        let his = create_folder(&mallory, "Work").await.unwrap();
        assert_code(move_to_folder(&alice, kept_out.id, his.id).await, Code::NotFound);
        assert_eq!(alice.session(kept_out.id).await.folder_id, None);
        assert_code(move_to_folder(&mallory, chat.id, his.id).await, Code::NotFound);
        assert_code(
            mallory
                .folders()
                .update_folder(mallory.req(pb::UpdateFolderRequest {
                    id: work.id,
                    name: Some("mine".into()),
                    ..Default::default()
                }))
                .await,
            Code::NotFound,
        );
        assert_code(
            mallory
                .folders()
                .delete_folder(mallory.req(pb::DeleteFolderRequest { id: work.id }))
                .await,
            Code::NotFound,
        );
        let listed = |user: User| async move {
            user.folders()
                .list_folders(user.req(pb::ListFoldersRequest {}))
                .await
                .unwrap()
                .into_inner()
                .folders
                .into_iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(listed(alice.clone()).await, ["Work"]);

        // Renamed by mask; the per-account limit holds.
        let renamed = alice
            .folders()
            .update_folder(alice.req(pb::UpdateFolderRequest {
                id: work.id,
                name: Some("Projects".into()),
                update_mask: mask(&["name"]),
            }))
            .await
            .unwrap()
            .into_inner()
            .folder
            .unwrap();
        assert_eq!(renamed.name, "Projects");
        create_folder(&alice, "Home").await.unwrap();
        assert_code(create_folder(&alice, "Third").await, Code::ResourceExhausted);
        assert_eq!(listed(alice.clone()).await, ["Home", "Projects"]);

        // Archived chats: out of the default list, the only ones in the archive's view.
        alice
            .sessions()
            .update_session(alice.req(pb::UpdateSessionRequest {
                id: kept_out.id,
                archived: Some(true),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert_eq!(titles(&alice, false, false).await, ["Plan"]);
        assert_eq!(titles(&alice, true, false).await, ["Loose", "Plan"]);
        assert_eq!(titles(&alice, false, true).await, ["Loose"]);
        assert_eq!(titles(&alice, true, true).await, ["Loose"]);
        assert!(titles(&mallory, false, true).await.is_empty());

        // Deleting the folder moves its chats out; none is deleted.
        let deleted = alice
            .folders()
            .delete_folder(alice.req(pb::DeleteFolderRequest { id: work.id }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(deleted.sessions_moved, 1);
        assert_eq!(alice.session(chat.id).await.folder_id, None);
        assert_eq!(titles(&alice, true, false).await, ["Loose", "Plan"]);
        assert_code(move_to_folder(&alice, chat.id, work.id).await, Code::NotFound);
        assert_eq!(listed(mallory.clone()).await, ["Work"]);
        stack.stop().await;
    }
);

async fn personas(user: &User) -> Vec<pb::Persona> {
    user.personas()
        .list_personas(user.req(pb::ListPersonasRequest {}))
        .await
        .unwrap()
        .into_inner()
        .personas
}

async fn configs(user: &User) -> Vec<pb::ApiConfig> {
    user.configs()
        .list_api_configs(user.req(pb::ListApiConfigsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .api_configs
}

on_every_backend!(
    deleting_what_chats_use_says_so_and_answers_keep_their_author,
    |db_url: String| async move {
        let stack = Stack::start(&db_url).await;
        let alice = stack.user("alice").await;
        let bob = stack.user("bob").await;
        let first = stack.fake_config(&alice, "first").await;
        let second = stack.fake_config(&alice, "second").await;
        let tutor = alice
            .personas()
            .create_persona(alice.req(pb::CreatePersonaRequest {
                name: "Tutor".into(),
                system_prompt: "Teach.".into(),
                avatar: "🦉".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .persona
            .unwrap();
        assert_eq!((tutor.avatar.as_str(), tutor.session_count), ("🦉", 0));
        assert_invalid(
            alice
                .personas()
                .create_persona(alice.req(pb::CreatePersonaRequest {
                    name: "Spaced".into(),
                    system_prompt: "x".into(),
                    avatar: "a b".into(),
                    ..Default::default()
                }))
                .await,
            "avatar",
        );
        assert_invalid(
            alice
                .personas()
                .update_persona(alice.req(pb::UpdatePersonaRequest {
                    id: tutor.id,
                    avatar: Some("x".repeat(17)),
                    ..Default::default()
                }))
                .await,
            "avatar",
        );

        // One chat with the persona on the second config, one on the default (naming none).
        let taught = alice
            .create_session(pb::CreateSessionRequest {
                title: Some("Taught".into()),
                persona_id: Some(tutor.id),
                api_config_id: Some(second.id),
                ..Default::default()
            })
            .await;
        let plain = alice
            .create_session(pb::CreateSessionRequest {
                title: Some("Plain".into()),
                ..Default::default()
            })
            .await;
        assert_eq!(plain.api_config_id, None);
        collect_send(alice.send(taught.id, "Hello?").await).await;
        let answer = alice.list_messages(taught.id).await.pop().unwrap();
        assert_eq!(answer.role, pb::MessageRole::Assistant as i32);
        assert_eq!(
            (
                answer.persona_name.as_str(),
                answer.persona_avatar.as_str(),
                answer.api_config_name.as_str()
            ),
            ("Tutor", "🦉", "second")
        );
        collect_send(alice.send(plain.id, "Hi").await).await;
        let plain_answer = alice.list_messages(plain.id).await.pop().unwrap();
        assert_eq!(
            (
                plain_answer.persona_name.as_str(),
                plain_answer.api_config_name.as_str()
            ),
            ("", "first")
        );

        // Counts are the caller's own chats.
        let count_of = |list: &[pb::Persona], id: i64| list.iter().find(|p| p.id == id).unwrap().session_count;
        assert_eq!(count_of(&personas(&alice).await, tutor.id), 1);
        let counts: Vec<(String, i32)> = configs(&alice)
            .await
            .into_iter()
            .map(|c| (c.name, c.session_count))
            .collect();
        assert_eq!(counts, [("first".to_owned(), 1), ("second".to_owned(), 1)]);
        let built_in = personas(&alice).await[0].id;
        alice
            .create_session(pb::CreateSessionRequest {
                persona_id: Some(built_in),
                ..Default::default()
            })
            .await;
        assert_eq!(count_of(&personas(&alice).await, built_in), 1);
        assert_eq!(count_of(&personas(&bob).await, built_in), 0);

        // Renaming the persona does not rewrite old answers; deleting it says how many chats
        // used it, which keep their prompt and lose the persona. Bob cannot delete it.
        alice
            .personas()
            .update_persona(alice.req(pb::UpdatePersonaRequest {
                id: tutor.id,
                name: Some("Coach".into()),
                avatar: Some("🏋".into()),
                update_mask: mask(&["name", "avatar"]),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert_code(
            bob.personas()
                .delete_persona(bob.req(pb::DeletePersonaRequest { id: tutor.id }))
                .await,
            Code::NotFound,
        );
        let deleted = alice
            .personas()
            .delete_persona(alice.req(pb::DeletePersonaRequest { id: tutor.id }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(deleted.sessions_changed, 1);
        let after = alice.session(taught.id).await;
        assert_eq!((after.persona_id, after.system_prompt.as_str()), (None, "Teach."));
        let kept = alice.message(answer.id).await;
        assert_eq!(
            (kept.persona_name.as_str(), kept.persona_avatar.as_str()),
            ("Tutor", "🦉")
        );

        // Deleting the default config moves the chats naming none (and those naming it) to the
        // next oldest, which says so; the answers keep the old name.
        assert_code(
            bob.configs()
                .delete_api_config(bob.req(pb::DeleteApiConfigRequest { id: first.id }))
                .await,
            Code::NotFound,
        );
        let moved = alice
            .configs()
            .delete_api_config(alice.req(pb::DeleteApiConfigRequest { id: first.id }))
            .await
            .unwrap()
            .into_inner();
        // "Plain" and the chat with the built-in persona named no config.
        assert_eq!(
            (
                moved.sessions_moved,
                moved.replacement_id,
                moved.replacement_name.as_str()
            ),
            (2, Some(second.id), "second")
        );
        let counts: Vec<(String, i32)> = configs(&alice)
            .await
            .into_iter()
            .map(|c| (c.name, c.session_count))
            .collect();
        assert_eq!(counts, [("second".to_owned(), 3)]);
        assert_eq!(alice.message(plain_answer.id).await.api_config_name, "first");
        let last = alice
            .configs()
            .delete_api_config(alice.req(pb::DeleteApiConfigRequest { id: second.id }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((last.sessions_moved, last.replacement_id), (3, None));
        assert_eq!(alice.session(taught.id).await.api_config_id, None);
        stack.stop().await;
    }
);
