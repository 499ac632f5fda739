//! Providers over HTTPS: Mozilla's roots by default, plus the operator's extra CA certificates
//! (`--extra-ca-certs`) for self-hosted providers behind an internal CA. The fixtures are a
//! test CA and a certificate it issued for localhost and 127.0.0.1 (valid for a century).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use llm_service::Config;
use parley_proto::llm::v1 as pb;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::Code;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Accepts TLS connections with the fixture certificate; failed handshakes are skipped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An HTTPS provider on 127.0.0.1 listing one model; its base URL names it `localhost`.
async fn https_provider() -> pb::Provider {
    let certificates = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let app = axum::Router::new().route(
        "/v1/models",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"data": [{"id": "internal-model"}]})) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    pb::Provider {
        base_url: format!("https://localhost:{port}/v1"),
        api_key: String::new(),
        model: "internal-model".to_string(),
    }
}

async fn list_models(client: &mut Client, provider: &pb::Provider) -> Result<Vec<String>, tonic::Status> {
    client
        .list_models(pb::ListModelsRequest {
            provider: Some(provider.clone()),
        })
        .await
        .map(|r| r.into_inner().model_ids)
}

#[tokio::test]
async fn an_internal_ca_is_trusted_only_when_the_operator_adds_it() {
    let provider = https_provider().await;

    let default_roots = TestServer::start().await;
    let status = list_models(&mut default_roots.client().await, &provider)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().to_lowercase().contains("certificate"),
        "{}",
        status.message()
    );

    let with_extra_ca = TestServer::start_with(Config {
        extra_ca_certs: Some(fixture("ca.pem")),
        ..test_config()
    })
    .await;
    let models = list_models(&mut with_extra_ca.client().await, &provider).await;
    assert_eq!(models.unwrap(), vec!["internal-model".to_string()]);
}

#[tokio::test]
async fn an_unusable_extra_ca_file_stops_start_up() {
    let not_pem = tempfile_with(b"this is not a certificate\n");
    for (path, problem) in [
        (fixture("missing.pem"), "cannot be read"),
        (not_pem.clone(), "holds no certificate"),
        // A private key is PEM, but not a certificate.
        (fixture("server.key"), "holds no certificate"),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = Config {
            extra_ca_certs: Some(path.clone()),
            ..test_config()
        };
        let error = llm_service::serve(listener, config, std::future::pending())
            .await
            .expect_err("started with an unusable CA file");
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains(problem),
            "{message}"
        );
    }
    let _ = std::fs::remove_file(not_pem);
}

fn tempfile_with(contents: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("parley-not-a-ca-{}.pem", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}
