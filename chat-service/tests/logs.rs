//! API keys never reach a log line or a reply. In a file of its own: it captures the logs of
//! the whole process (every service in it, at every level).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::chat::v1 as pb;
use parley_testkit::captured_logs::CapturedLogs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_never_logged_or_returned() {
    let logs = CapturedLogs::global();
    let db = parley_testkit::test_database::TestDatabase::sqlite();
    let stack = Stack::start(&db.url).await;
    let alice = stack.user("alice").await;
    let fake_key = stack.fake.api_key();
    let other_key = "sk-other-secret-key-7f3e9a";
    let inline_key = "sk-inline-secret-key-1b2c";
    let mut configs = alice.configs();
    let mut replies: Vec<String> = Vec::new();

    let created = configs
        .create_api_config(alice.req(pb::CreateApiConfigRequest {
            name: "fake".into(),
            base_url: stack.fake.base_url(),
            api_key: other_key.into(),
            model: "fake-model".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    replies.push(format!("{created:?}"));
    let id = created.api_config.unwrap().id;
    // A rejected key, then the right one.
    let session = alice.create_session(pb::CreateSessionRequest::default()).await;
    let failed = collect_send(alice.send(session.id, "hello?").await).await;
    // The answer fails (then the untitled chat is named by its question).
    assert!(
        failed
            .iter()
            .any(|e| matches!(e, parley_proto::chat::v1::chat_event::Event::Error(_))),
        "{failed:?}"
    );
    replies.push(format!("{failed:?}"));
    let updated = configs
        .update_api_config(alice.req(pb::UpdateApiConfigRequest {
            id,
            api_key: Some(fake_key.clone()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    replies.push(format!("{updated:?}"));
    let tested = configs
        .test_api_config(alice.req(pb::TestApiConfigRequest {
            target: Some(pb::test_api_config_request::Target::Settings(pb::ProviderSettings {
                base_url: stack.fake.base_url(),
                api_key: inline_key.into(),
                model: "fake-model".into(),
            })),
        }))
        .await;
    replies.push(format!("{tested:?}"));
    // The generation's log lines carry the caller's trace id.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = alice.req(pb::SendMessageRequest {
        session_id: session.id,
        content: "hello".into(),
        api_config_id: None,
        version_of_id: None,
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    let stream = alice.messages().send_message(request).await.unwrap().into_inner();
    let events = collect_send(stream).await;
    assert!(kinds(&events).contains(&"completed"));
    replies.push(format!("{events:?}"));
    let listed = configs
        .list_api_configs(alice.req(pb::ListApiConfigsRequest {}))
        .await
        .unwrap()
        .into_inner();
    replies.push(format!("{listed:?}"));
    stack.stop().await;

    let logged = logs.contents();
    assert!(logged.contains("generation ended"), "the services' logs were captured");
    assert!(
        logged
            .lines()
            .any(|l| l.contains("generation ended") && l.contains(trace_id)),
        "no generation log line with the trace id"
    );
    for key in [fake_key.as_str(), other_key, inline_key] {
        assert!(!logged.contains(key), "{key} was logged");
        for reply in &replies {
            assert!(!reply.contains(key), "{key} was returned: {reply}");
        }
    }
}
