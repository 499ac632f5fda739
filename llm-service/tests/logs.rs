//! API keys never reach a log line: not in spans, not in errors, not in Debug output. This
//! file captures logs process-wide, so it holds only this test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use parley_proto::llm::v1 as pb;
use parley_testkit::captured_logs::CapturedLogs;
use parley_testkit::wait::until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_the_logs() {
    let logs = CapturedLogs::global();
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let key = fake.api_key();

    // Success, retries, a provider that echoes the key it rejects, a rate limit, a cut stream,
    // cancellation, listing and checking.
    let streamed = stream(&mut client, chat_request(provider(&fake), "hi")).await;
    assert!(streamed.finish.is_some());
    fake.push_reply(Reply::status(500, format!("upstream failed for key {key}")));
    fake.push_reply(Reply::status(401, format!("Incorrect API key provided: {key}")));
    let status = stream_error(&mut client, chat_request(provider(&fake), "hi")).await;
    assert!(
        !status.message().contains(&key),
        "the key reached the caller: {}",
        status.message()
    );
    fake.push_reply(Reply::rate_limited(Duration::from_secs(60)));
    stream_error(&mut client, chat_request(provider(&fake), "hi")).await;
    fake.push_reply(Reply::text("a b c").cut_after(1));
    stream_error(&mut client, chat_request(provider(&fake), "hi")).await;
    fake.push_reply(Reply::text("a b c").chunk_delay(Duration::from_secs(5)));
    let mut cancelled = client
        .stream_chat(chat_request(provider(&fake), "hi"))
        .await
        .unwrap()
        .into_inner();
    cancelled.message().await.unwrap();
    drop(cancelled);
    assert!(fake.wait_for_disconnect(Duration::from_secs(5)).await);
    client
        .list_models(pb::ListModelsRequest {
            provider: Some(provider(&fake)),
        })
        .await
        .unwrap();
    let mut bad = provider(&fake);
    bad.api_key = format!("{key}-wrong");
    client
        .check_provider(pb::CheckProviderRequest { provider: Some(bad) })
        .await
        .unwrap();
    // The cancelled generation's task logs its end on its own time.
    until("the cancelled stream's end logged", Duration::from_secs(5), || async {
        logs.contents().contains("outcome=Cancelled")
    })
    .await;
    server.stop().await;

    let contents = logs.contents();
    assert!(
        contents.contains("llm.stream_chat"),
        "spans were not captured:\n{contents}"
    );
    assert!(
        contents.contains("retrying the provider"),
        "retries were not logged:\n{contents}"
    );
    assert!(
        contents.contains("generation failed"),
        "failures were not logged:\n{contents}"
    );
    assert!(
        contents.contains("added_latency_ms"),
        "metrics were not logged:\n{contents}"
    );
    assert!(!contents.contains(&key), "the API key reached the logs:\n{contents}");
    // Not even a recognisable part of it.
    assert!(!contents.contains(&key[8..]), "part of the API key reached the logs");
}
