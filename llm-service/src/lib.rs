//! llm-service: the only part of Parley that talks to LLM providers, served as
//! `parley.llm.v1.LlmService`. Internal (the gateway never routes to it, so it has no auth
//! layer), stateless, horizontally scalable. chat-service calls it with the provider settings
//! (base URL, key, model) of the user's chosen API configuration.
//!
//! Layers: [`handlers`] (gRPC in and out) → [`service`] (validation, retries, timeouts,
//! stream reading, metrics) → [`provider`] (HTTP, error mapping) with [`egress`] (which
//! addresses may be reached), [`openai`] (the wire format, typed) and [`sse`] (the
//! event-stream parser).

pub mod egress;
mod error;
pub mod handlers;
pub mod openai;
pub mod provider;
mod provider_options;
pub mod service;
pub mod sse;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parley_proto::llm::v1::llm_service_server::LlmServiceServer;
use parley_service_kit::auth_layer::AuthLayer;
use parley_service_kit::grpc_server::GrpcServer;
use tokio::net::TcpListener;

pub use egress::EgressPolicy;
pub use error::Error;
pub use provider_options::ProviderOptions;

/// Retries before the first token (429, 5xx, connect errors only).
#[derive(Clone, Debug)]
pub struct RetrySettings {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// The first backoff when the provider gives no `Retry-After`; doubles per retry.
    pub initial_backoff: Duration,
    /// The longest wait between attempts. A `Retry-After` beyond it is not waited for: the
    /// caller gets the provider's error (RESOURCE_EXHAUSTED for a 429, UNAVAILABLE for a 5xx)
    /// with the delay as `google.rpc.RetryInfo` instead.
    pub max_delay: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Allow loopback, private, link-local and CGNAT addresses (on for an all-in-one listening
    /// on loopback, so Ollama on localhost works; off by default). Cloud metadata endpoints
    /// stay refused either way.
    pub allow_private_networks: bool,
    /// Establishing the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// From the request to the first content or reasoning token, retries included.
    pub first_token_timeout: Duration,
    /// The longest silence between chunks once the answer has started.
    pub idle_timeout: Duration,
    /// ListModels and CheckProvider, whole.
    pub request_timeout: Duration,
    pub retry: RetrySettings,
    /// A PEM file of CA certificates trusted besides Mozilla's roots, for self-hosted
    /// providers behind an internal CA.
    pub extra_ca_certs: Option<PathBuf>,
    /// The most an answer may grow to, reasoning and content together, in bytes of UTF-8.
    /// A provider that keeps talking past it (a model in a loop, a server that never stops) is
    /// cut off there: the stream ends as on `length` and the provider request is dropped.
    pub max_answer_bytes: usize,
    /// Pass on the error text of providers on loopback and private addresses (their message,
    /// a redirect's target) as it is passed on for public ones. Off by default: where private
    /// networks are allowed, any user could otherwise make Parley call a service on the
    /// operator's network and read its answers back as error messages; they get the HTTP
    /// status only, and the text is logged at DEBUG. The all-in-one turns it on when it
    /// listens on loopback only (its users are then on the machine already).
    pub echo_private_provider_errors: bool,
}

/// The default [`Config::max_answer_bytes`]: 1 MiB. The longest outputs models offer are
/// about 128k tokens, at most ~4 bytes each (CJK text), so ~512 KiB; twice that leaves every
/// real answer whole while bounding what a runaway stream can pile up downstream.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 1 << 20;

impl Default for Config {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            connect_timeout: Duration::from_secs(10),
            // Reasoning models can think for minutes before the first token, but they stream
            // reasoning meanwhile; a full minute of nothing means something is wrong.
            first_token_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            retry: RetrySettings::default(),
            extra_ca_certs: None,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            echo_private_provider_errors: false,
        }
    }
}

/// Serves llm-service on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let allow_private_networks = config.allow_private_networks;
    // Before announcing anything: a bad --extra-ca-certs file stops start-up here.
    let service = Arc::new(service::LlmService::new(config)?);
    tracing::info!(
        address = ?listener.local_addr().ok(),
        allow_private_networks,
        "llm-service listening"
    );
    // Internal service: reachable only inside the deployment, and its callers carry no user.
    GrpcServer::new(AuthLayer::disabled())
        .add_service(LlmServiceServer::new(handlers::LlmApi::new(service)))
        .serve(listener, shutdown)
        .await?;
    Ok(())
}
