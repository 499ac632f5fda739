//! The egress policy through the real server: internal addresses are refused unless private
//! networks are allowed, in every form (IPv4, IPv6, IPv4-mapped, a host name resolving to
//! loopback), for every RPC, before any byte reaches them; redirects are not followed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use llm_service::Config;
use parley_proto::llm::v1 as pb;
use tonic::Code;

fn strict() -> Config {
    Config {
        allow_private_networks: false,
        ..test_config()
    }
}

fn with_base_url(fake: &FakeOpenAi, base_url: String) -> pb::Provider {
    pb::Provider {
        base_url,
        ..provider(fake)
    }
}

/// The internal URLs of the issue, pointing at the fake where a port matters.
fn internal_urls(fake: &FakeOpenAi) -> Vec<(String, &'static str)> {
    let port = fake.address().port();
    vec![
        (format!("http://127.0.0.1:{port}/v1"), "loopback"),
        ("http://10.20.30.40/v1".to_string(), "private"),
        ("http://169.254.169.254/latest/v1".to_string(), "metadata"),
        (format!("http://[::1]:{port}/v1"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/v1"), "loopback"),
        (format!("http://localhost:{port}/v1"), "loopback"),
        ("http://100.64.1.1/v1".to_string(), "carrier-grade NAT"),
    ]
}

#[tokio::test]
async fn internal_addresses_are_refused_by_default() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start_with(strict()).await;
    let mut client = server.client().await;
    for (url, reason) in internal_urls(&fake) {
        let status = stream_error(&mut client, chat_request(with_base_url(&fake, url.clone()), "q")).await;
        assert_eq!(status.code(), Code::PermissionDenied, "{url}: {status:?}");
        assert!(status.message().contains(reason), "{url}: {}", status.message());
        // The operator can open private networks, never cloud metadata.
        let hint = if reason == "metadata" {
            "never"
        } else {
            "allow-private-networks"
        };
        assert!(status.message().contains(hint), "{}", status.message());

        let status = client
            .list_models(pb::ListModelsRequest {
                provider: Some(with_base_url(&fake, url.clone())),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{url}: {status:?}");

        let status = client
            .check_provider(pb::CheckProviderRequest {
                provider: Some(with_base_url(&fake, url.clone())),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{url}: {status:?}");
    }
    assert!(fake.requests().is_empty(), "a refused URL was reached");
}

#[tokio::test]
async fn only_http_and_https_are_allowed() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for url in ["ftp://example.com/v1", "file:///etc/passwd", "gopher://example.com/"] {
        let status = stream_error(&mut client, chat_request(with_base_url(&fake, url.to_string()), "q")).await;
        assert_eq!(status.code(), Code::PermissionDenied, "{url}");
        assert!(status.message().contains("only http and https"), "{}", status.message());
    }
}

#[tokio::test]
async fn internal_addresses_work_when_private_networks_are_allowed() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start_with(Config {
        allow_private_networks: true,
        connect_timeout: Duration::from_millis(300),
        ..no_retries()
    })
    .await;
    let mut client = server.client().await;
    let port = fake.address().port();
    for url in [
        format!("http://127.0.0.1:{port}/v1"),
        format!("http://localhost:{port}/v1"),
        format!("http://[::ffff:127.0.0.1]:{port}/v1"),
    ] {
        let streamed = stream(&mut client, chat_request(with_base_url(&fake, url.clone()), "hi")).await;
        assert!(streamed.error.is_none(), "{url}: {:?}", streamed.error);
        assert_eq!(streamed.content, default_reply_text("hi"), "{url}");
    }
    assert_eq!(fake.chat_requests().len(), 3);
    // Nothing listens there, but the policy no longer stands in the way…
    for (url, _) in internal_urls(&fake)
        .into_iter()
        .filter(|(_, reason)| *reason != "metadata")
    {
        if let Some(status) = stream(&mut client, chat_request(with_base_url(&fake, url.clone()), "hi"))
            .await
            .error
        {
            assert_ne!(status.code(), Code::PermissionDenied, "{url}: {status:?}");
        }
    }
}

#[tokio::test]
async fn cloud_metadata_is_refused_even_with_private_networks_allowed() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start().await; // private networks allowed
    let mut client = server.client().await;
    for url in [
        "http://169.254.169.254/latest/meta-data/v1",
        "http://169.254.170.2/v2/credentials",
        "http://100.100.100.200/latest/meta-data",
        "http://[fd00:ec2::254]/latest",
        // EKS Pod Identity, IPv4 and IPv6.
        "http://169.254.170.23/v1/credentials",
        "http://[fd00:ec2::23]/v1/credentials",
        // OCI over IPv6, Tencent, Azure's WireServer (a public address).
        "http://[fd00:c1::a9fe:a9fe]/opc/v2",
        "http://169.254.0.23/meta-data",
        "http://168.63.129.16/machine",
        "http://[::ffff:168.63.129.16]/machine",
        "http://[::ffff:169.254.169.254]/v1",
        "http://[64:ff9b::a9fe:a9fe]/v1",
        "http://[64:ff9b:1::a9fe:a9fe]/v1",
        "http://[2002:a9fe:a9fe::1]/v1",
    ] {
        let status = stream_error(&mut client, chat_request(with_base_url(&fake, url.to_string()), "q")).await;
        assert_eq!(status.code(), Code::PermissionDenied, "{url}: {status:?}");
        assert!(
            status.message().contains("cloud metadata"),
            "{url}: {}",
            status.message()
        );
        assert!(status.message().contains("never"), "{url}: {}", status.message());
        let status = client
            .list_models(pb::ListModelsRequest {
                provider: Some(with_base_url(&fake, url.to_string())),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{url}: {status:?}");
    }
    // A local provider on loopback still works on the same server.
    let streamed = stream(&mut client, chat_request(provider(&fake), "hi")).await;
    assert_eq!(streamed.content, default_reply_text("hi"), "{:?}", streamed.error);
}

#[tokio::test]
async fn a_host_name_is_refused_in_a_sentence_naming_its_address() {
    let fake = FakeOpenAi::start().await;
    let server = TestServer::start_with(strict()).await;
    let mut client = server.client().await;
    let url = format!("http://localhost:{}/v1", fake.address().port());
    let status = stream_error(&mut client, chat_request(with_base_url(&fake, url), "q")).await;
    assert_eq!(status.code(), Code::PermissionDenied);
    // "localhost resolves to 127.0.0.1, which is a loopback address; …" (or ::1).
    assert!(
        status.message().contains("localhost resolves to ")
            && status.message().contains(", which is a loopback address"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let fake = FakeOpenAi::start().await;
    let target = format!("{}/chat/completions", fake.base_url());
    let app = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (axum::http::StatusCode::TEMPORARY_REDIRECT, [("location", target)]) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = stream_error(
        &mut client,
        chat_request(with_base_url(&fake, format!("http://{address}/v1")), "q"),
    )
    .await;
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("redirect"), "{}", status.message());
    assert!(fake.requests().is_empty(), "the redirect was followed");
}
