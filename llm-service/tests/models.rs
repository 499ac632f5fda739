//! ListModels and CheckProvider ("test API connection") against the fake provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::llm::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn lists_the_providers_models() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut provider = provider(&fake);
    provider.model = String::new(); // not needed to list
    let models = client
        .list_models(pb::ListModelsRequest {
            provider: Some(provider.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(models.model_ids, fake.models());
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/v1/models");
    assert!(request.has_bearer(&fake.api_key()));

    provider.api_key = "sk-not-the-key".to_string();
    let status = client
        .list_models(pb::ListModelsRequest {
            provider: Some(provider),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = client
        .list_models(pb::ListModelsRequest { provider: None })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

async fn check(client: &mut Client, provider: pb::Provider) -> pb::CheckProviderResponse {
    client
        .check_provider(pb::CheckProviderRequest {
            provider: Some(provider),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn check_provider_says_what_to_fix() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let good = check(&mut client, provider(&fake)).await;
    assert!(good.ok && good.model_available, "{good:?}");
    assert!(good.latency_ms >= 0);
    assert!(good.message.contains("fake-model"), "{}", good.message);
    // A listing proves no key: say only what was seen.
    assert!(!good.message.contains("key works"), "{}", good.message);

    let mut missing_model = provider(&fake);
    missing_model.model = "gpt-imaginary".to_string();
    let answer = check(&mut client, missing_model).await;
    assert!(!answer.ok && !answer.model_available, "{answer:?}");
    assert!(
        answer.message.contains("gpt-imaginary") && answer.message.contains("fake-model"),
        "{}",
        answer.message
    );

    let mut wrong_key = provider(&fake);
    wrong_key.api_key = "sk-not-the-key".to_string();
    let answer = check(&mut client, wrong_key).await;
    assert!(!answer.ok, "{answer:?}");
    assert!(answer.message.contains("API key"), "{}", answer.message);
    assert!(!answer.message.contains("sk-not-the-key"));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut down = provider(&fake);
    down.base_url = format!("http://127.0.0.1:{port}/v1");
    let answer = check(&mut client, down).await;
    assert!(!answer.ok, "{answer:?}");
    assert!(answer.message.contains("Cannot reach"), "{}", answer.message);

    let mut no_model = provider(&fake);
    no_model.model = String::new();
    let status = client
        .check_provider(pb::CheckProviderRequest {
            provider: Some(no_model),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn ollama_models_are_found_without_their_implicit_latest_tag() {
    let fake = FakeOpenAi::start_with(parley_testkit::fake_openai::FakeOpenAiConfig {
        models: vec![
            "llama3.2:latest".to_string(),
            "qwen2.5:7b".to_string(),
            "phi4".to_string(),
        ],
        ..Default::default()
    })
    .await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for (model, available) in [
        ("llama3.2", true),
        ("llama3.2:latest", true),
        ("phi4:latest", true),
        ("qwen2.5", false),
        ("llama3", false),
    ] {
        let answer = check(
            &mut client,
            pb::Provider {
                model: model.to_string(),
                ..provider(&fake)
            },
        )
        .await;
        assert_eq!(answer.model_available, available, "{model}: {answer:?}");
        assert_eq!(answer.ok, available, "{model}: {answer:?}");
    }
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out() {
    let app = axum::Router::new().route(
        "/v1/models",
        axum::routing::get(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            "too late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = TestServer::start_with(llm_service::Config {
        request_timeout: std::time::Duration::from_millis(300),
        ..test_config()
    })
    .await;
    let mut client = server.client().await;
    let silent = pb::Provider {
        base_url: format!("http://{address}/v1"),
        api_key: String::new(),
        model: "m".to_string(),
    };
    let status = client
        .list_models(pb::ListModelsRequest {
            provider: Some(silent.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let answer = check(&mut client, silent).await;
    assert!(!answer.ok, "{answer:?}");
    assert!(answer.message.contains("did not answer"), "{}", answer.message);
}
