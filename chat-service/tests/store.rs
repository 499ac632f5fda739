//! The store against a real SQLite file and, when configured, a real PostgreSQL database:
//! what the schema itself guarantees (one streaming answer per session), writes that must not
//! clobber a concurrent change (key rotation), owner checks in the statements themselves, and
//! deleting a session while other answers are being written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chat_service::ids::{ApiConfigId, OwnerId, SessionId};
use chat_service::key_cipher::{KeyCipher, SealedKey};
use chat_service::store::{ChatStore, ConfigFields, FinishedAnswer, MessageStatus, NewExchange, NewSession, SavedText};
use parley_service_kit::database::{self, Database, is_unique_violation};
use parley_testkit::on_every_backend;

async fn open(db_url: &str) -> (Database, ChatStore) {
    let database = database::connect(db_url, &chat_service::MIGRATIONS).await.unwrap();
    let store = ChatStore::new(&database);
    (database, store)
}

async fn session(store: &ChatStore, user_id: i64) -> SessionId {
    store
        .insert_session(&NewSession {
            user_id: OwnerId(user_id),
            title: "t",
            system_prompt: "",
            persona_id: None,
            api_config_id: None,
            model: "",
            params: Default::default(),
            now: 1,
        })
        .await
        .unwrap()
}

fn exchange(session_id: SessionId, content: &str) -> NewExchange<'_> {
    NewExchange {
        session_id,
        parent_id: None,
        user_content: content,
        model: "m",
        config_name: "c",
        persona: None,
        now: 2,
    }
}

fn finished(content: &str) -> FinishedAnswer<'_> {
    FinishedAnswer {
        content,
        reasoning: "",
        status: MessageStatus::Complete,
        prompt_tokens: None,
        completion_tokens: None,
        error: "",
        error_code: 0,
        error_reason: "",
        now: 3,
    }
}

async fn messages_in(database: &Database, session_id: SessionId) -> i64 {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_messages WHERE session_id = $1")
        .bind(session_id.0)
        .fetch_one(&database.pool)
        .await
        .unwrap();
    count
}

on_every_backend!(
    the_database_allows_one_streaming_answer_per_session,
    |db_url: String| async move {
        let (database, store) = open(&db_url).await;
        let session_id = session(&store, 1).await;
        let (_, answer_id) = store.insert_exchange(&exchange(session_id, "first")).await.unwrap();
        // What a second instance that checked at the same moment would do: refused, and its
        // question is not stored either.
        let second = store.insert_exchange(&exchange(session_id, "second")).await;
        assert!(second.as_ref().is_err_and(is_unique_violation), "{second:?}");
        assert_eq!(messages_in(&database, session_id).await, 2);
        let old = store.message_by_id(answer_id).await.unwrap().unwrap();
        let regenerated = store
            .insert_regenerated_answer(&old, old.reply_to_id.unwrap(), "m", "c", None, 3)
            .await;
        assert!(regenerated.as_ref().is_err_and(is_unique_violation), "{regenerated:?}");
        // Other sessions are not affected; once the answer is finished the session is free.
        let other = session(&store, 1).await;
        store.insert_exchange(&exchange(other, "elsewhere")).await.unwrap();
        store.finish_answer(answer_id, &finished("done"), None).await.unwrap();
        store.insert_exchange(&exchange(session_id, "second")).await.unwrap();
        assert_eq!(messages_in(&database, session_id).await, 4);
        assert_eq!(store.streaming_counts(session_id, OwnerId(1)).await.unwrap(), (1, 2));
        assert_eq!(store.streaming_counts(session_id, OwnerId(2)).await.unwrap(), (0, 0));
    }
);

on_every_backend!(
    answers_start_streaming_in_place_and_mark_the_session_active,
    |db_url: String| async move {
        let (_database, store) = open(&db_url).await;
        let session_id = session(&store, 1).await;
        let active_at = |store: ChatStore| async move {
            store
                .session(OwnerId(1), session_id)
                .await
                .unwrap()
                .unwrap()
                .last_active_at
        };
        let (question_id, answer_id) = store.insert_exchange(&exchange(session_id, "q")).await.unwrap();
        let answer = store.message_by_id(answer_id).await.unwrap().unwrap();
        assert_eq!(
            (answer.role.as_str(), answer.status.as_str(), answer.reply_to_id),
            ("assistant", "streaming", Some(question_id))
        );
        assert_eq!(
            (answer.created_at, answer.updated_at, answer.model.as_str()),
            (2, 2, "m")
        );
        assert_eq!(active_at(store.clone()).await, 2);

        store.finish_answer(answer_id, &finished("a"), None).await.unwrap();
        let old = store.message_by_id(answer_id).await.unwrap().unwrap();
        let new_id = store
            .insert_regenerated_answer(&old, question_id, "m2", "c2", None, 7)
            .await
            .unwrap();
        let new = store.message_by_id(new_id).await.unwrap().unwrap();
        // At the old answer's place (its created_at, a larger id), empty and streaming.
        assert!(new_id > answer_id);
        assert_eq!(
            (
                new.role.as_str(),
                new.status.as_str(),
                new.reply_to_id,
                new.content.as_str()
            ),
            ("assistant", "streaming", Some(question_id), "")
        );
        assert_eq!((new.created_at, new.updated_at, new.model.as_str()), (2, 7, "m2"));
        assert_eq!(active_at(store.clone()).await, 7);
    }
);

on_every_backend!(
    key_rotation_never_overwrites_a_key_written_meanwhile,
    |db_url: String| async move {
        let (_database, store) = open(&db_url).await;
        let key = |version: i64, byte: u8| chat_service::MasterKey {
            version,
            key: [byte; 32],
        };
        // An instance that has only version 1 yet, and one that rotates to version 2.
        let old_instance = KeyCipher::new(vec![key(1, 1)]).unwrap();
        let rotating = KeyCipher::new(vec![key(1, 1), key(2, 2)]).unwrap();
        let fields = ConfigFields {
            name: "c",
            base_url: "https://example.com/v1",
            model: "m",
        };
        let id = store
            .insert_api_config(
                OwnerId(1),
                &fields,
                "…",
                |id: ApiConfigId| {
                    old_instance
                        .seal(id.0, "sk-first-key")
                        .map_err(chat_service::Error::from)
                },
                1,
            )
            .await
            .unwrap();
        let read: Vec<(ApiConfigId, SealedKey)> = store.keys_not_under(2).await.unwrap();
        let (_, sealed) = read.into_iter().find(|(row, _)| *row == id).unwrap();
        // Meanwhile the user sets a new key through the old instance (still version 1).
        let newer = old_instance.seal(id.0, "sk-second-key").unwrap();
        assert!(
            store
                .update_api_config(OwnerId(1), id, &fields, Some((newer, "…")), 2)
                .await
                .unwrap()
        );
        // The rotation's reseal of what it read must not bring the first key back.
        let resealed = rotating.seal(id.0, &rotating.open(id.0, &sealed).unwrap()).unwrap();
        assert!(!store.reseal_key(id, &sealed, &resealed).await.unwrap());
        let row = store.api_config(OwnerId(1), id).await.unwrap().unwrap();
        assert_eq!(
            rotating.open(id.0, &row.sealed_key().unwrap()).unwrap(),
            "sk-second-key"
        );
        // Read again, the reseal goes through.
        let (_, current) = store.keys_not_under(2).await.unwrap().into_iter().next().unwrap();
        let resealed = rotating.seal(id.0, &rotating.open(id.0, &current).unwrap()).unwrap();
        assert!(store.reseal_key(id, &current, &resealed).await.unwrap());
        let row = store.api_config(OwnerId(1), id).await.unwrap().unwrap();
        assert_eq!(row.api_key_key_version, 2);
        assert_eq!(
            rotating.open(id.0, &row.sealed_key().unwrap()).unwrap(),
            "sk-second-key"
        );
    }
);

on_every_backend!(
    progress_is_appended_only_onto_what_was_saved,
    |db_url: String| async move {
        let (_database, store) = open(&db_url).await;
        let session_id = session(&store, 1).await;
        let (_, answer_id) = store.insert_exchange(&exchange(session_id, "q")).await.unwrap();
        let saved = |content_chars, reasoning_chars| SavedText {
            content_chars,
            reasoning_chars,
        };
        let text = |store: ChatStore| async move {
            let row = store.message_by_id(answer_id).await.unwrap().unwrap();
            (row.content, row.reasoning)
        };
        assert_eq!(
            store
                .append_progress(answer_id, "Hé", "", saved(0, 0), 3)
                .await
                .unwrap(),
            Some(false)
        );
        assert_eq!(
            store
                .append_progress(answer_id, "llo", "r", saved(2, 0), 4)
                .await
                .unwrap(),
            Some(false)
        );
        assert_eq!(text(store.clone()).await, ("Héllo".to_owned(), "r".to_owned()));
        // A save repeated after its commit went unconfirmed does not append twice.
        assert_eq!(
            store
                .append_progress(answer_id, "llo", "r", saved(2, 0), 5)
                .await
                .unwrap(),
            None
        );
        assert_eq!(text(store.clone()).await, ("Héllo".to_owned(), "r".to_owned()));
        // An empty append is the heartbeat, and reads a stop asked for through the row.
        assert!(store.request_stop(answer_id).await.unwrap());
        assert_eq!(
            store.append_progress(answer_id, "", "", saved(5, 1), 6).await.unwrap(),
            Some(true)
        );
        // A finished answer takes no more.
        store.finish_answer(answer_id, &finished("Héllo"), None).await.unwrap();
        assert_eq!(
            store.append_progress(answer_id, "!", "", saved(5, 0), 7).await.unwrap(),
            None
        );
        assert_eq!(text(store.clone()).await.0, "Héllo");
    }
);

on_every_backend!(message_edits_and_deletes_name_the_owner, |db_url: String| async move {
    let (_database, store) = open(&db_url).await;
    let session_id = session(&store, 1).await;
    let (question_id, answer_id) = store.insert_exchange(&exchange(session_id, "mine")).await.unwrap();
    store.finish_answer(answer_id, &finished("answer"), None).await.unwrap();
    assert!(
        !store
            .update_message_content(OwnerId(2), question_id, "theirs", 4)
            .await
            .unwrap()
    );
    assert!(!store.delete_message_subtree(OwnerId(2), answer_id, None).await.unwrap());
    let question = store.message(OwnerId(1), question_id).await.unwrap().unwrap();
    assert_eq!(question.content, "mine");
    assert!(store.message(OwnerId(1), answer_id).await.unwrap().is_some());
    assert!(
        store
            .update_message_content(OwnerId(1), question_id, "edited", 4)
            .await
            .unwrap()
    );
    assert!(store.delete_message_subtree(OwnerId(1), answer_id, None).await.unwrap());
    assert_eq!(
        store.message(OwnerId(1), question_id).await.unwrap().unwrap().content,
        "edited"
    );
});

/// SQLite: a transaction that reads before it writes cannot become a writer once another
/// connection committed after its read (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits
/// out). Running answers commit every 250 ms, so a DeleteSession that read first failed now
/// and then; here another connection commits without pause while sessions are deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_sessions_while_answers_are_written() {
    let db = parley_testkit::test_database::TestDatabase::sqlite();
    let (database, store) = open(&db.url).await;
    let busy_session = session(&store, 1).await;
    let (_, busy_answer) = store.insert_exchange(&exchange(busy_session, "long")).await.unwrap();
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = tokio::spawn({
        let store = store.clone();
        let writing = std::sync::Arc::clone(&writing);
        async move {
            let mut text = String::new();
            let mut writes = 0u64;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                text.push('x');
                store.save_progress(busy_answer, &text, "", 5).await.unwrap();
                writes += 1;
            }
            writes
        }
    });
    const SESSIONS: usize = 40;
    let mut ids = Vec::new();
    for _ in 0..SESSIONS {
        let id = session(&store, 1).await;
        let (_, answer) = store.insert_exchange(&exchange(id, "q")).await.unwrap();
        store.finish_answer(answer, &finished("a"), None).await.unwrap();
        ids.push(id);
    }
    let mut failures = Vec::new();
    for id in &ids {
        match store.delete_session(OwnerId(1), *id).await {
            Ok(true) => {}
            other => failures.push(format!("{other:?}")),
        }
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {SESSIONS} deletes failed: {failures:?}",
        failures.len()
    );
    assert!(writes > 0);
    for id in ids {
        assert_eq!(messages_in(&database, id).await, 0);
        assert!(store.session(OwnerId(1), id).await.unwrap().is_none());
    }
    // Someone else's session is not deleted, and says so.
    assert!(!store.delete_session(OwnerId(2), busy_session).await.unwrap());
    assert_eq!(messages_in(&database, busy_session).await, 2);
}

/// A room of a new owner with `old` messages at time 100 and `recent` at time 10 000.
async fn room_with_messages(store: &ChatStore, account: &str, old: usize, recent: usize) -> SessionId {
    use chat_service::store::{AuthorKind, NewRoomMessage, RoomFields, RoomMessageType, Visibility};
    let owner = store.insert_owner(account, 1).await.unwrap().id;
    let fields = RoomFields {
        name: "r",
        topic: "",
        visibility: Visibility::Private,
        retention_days: None,
    };
    let room = store.insert_room(owner, &fields, 1).await.unwrap();
    let session = store.room(room).await.unwrap().unwrap().session_id;
    for now in std::iter::repeat_n(100, old).chain(std::iter::repeat_n(10_000, recent)) {
        store
            .insert_room_message(&NewRoomMessage {
                room_id: room,
                session_id: session,
                author_id: Some(owner),
                author_kind: AuthorKind::User,
                message_type: RoomMessageType::Text,
                content: "m",
                reply_to_id: None,
                now,
            })
            .await
            .unwrap();
    }
    session
}

on_every_backend!(expired_room_messages_go_batch_by_batch, |db_url: String| async move {
    let (database, store) = open(&db_url).await;
    let expiring = room_with_messages(&store, "00000000-0000-0000-0000-000000000001", 10, 2).await;
    let other = room_with_messages(&store, "00000000-0000-0000-0000-000000000002", 3, 0).await;
    let mut batches = Vec::new();
    loop {
        let gone = store.delete_room_messages_before(expiring, 1_000, 3).await.unwrap();
        batches.push(gone);
        if gone < 3 {
            break;
        }
    }
    assert_eq!(batches, [3, 3, 3, 1]);
    assert_eq!(messages_in(&database, expiring).await, 2, "the recent ones stay");
    assert_eq!(messages_in(&database, other).await, 3, "other rooms are untouched");
});
