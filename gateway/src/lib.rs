//! The gateway: the one port every client talks to.
//!
//! - gRPC-web (binary and text, HTTP/1.1 and HTTP/2) through tonic-web, and native gRPC (h2c).
//! - A generic proxy: `/<package>.<Service>/<Method>` is routed by service name to the upstream
//!   that owns the package (`parley.user.v1` → user-service, `parley.chat.v1` → chat-service);
//!   bodies and trailers stream through undecoded. Anything else (including `parley.llm.v1`)
//!   answers UNIMPLEMENTED.
//! - `grpc.health.v1` (SERVING only while the upstreams are; Watch answers once and ends) and
//!   server reflection for the public services.
//! - Edge auth, rate limits, load shedding, request limits, CORS, an access log line per call.
//! - The built web UI on the same port: a directory (`web/dist`), or a build compiled into the
//!   binary ([`EmbeddedUi`]; the directory wins when both are given).

mod admission;
mod call_log;
mod client_addr;
mod config;
mod connection_watchdog;
mod edge_health;
mod edge_options;
mod error;
mod http_server;
mod load_shedding;
mod metrics;
mod rate_limit;
mod routing;
mod upstream_health;
mod upstream_proxy;
mod web_ui;

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use tokio::net::TcpListener;
use tower::util::BoxCloneService;
use tower::{Layer, ServiceBuilder};

pub use client_addr::{IpNetwork, NetworkList};
pub use config::Config;
pub use edge_options::EdgeOptions;
pub use error::Error;
pub use rate_limit::RateLimit;
pub use web_ui::{EmbeddedFile, EmbeddedUi};

use admission::AdmissionLayer;
use parley_service_kit::access_token::{TokenVerifier, UserServiceKeySource};
use parley_service_kit::auth_layer::AuthLayer;
use routing::{CHAT_PACKAGE, GrpcService, USER_PACKAGE};

/// The methods anyone may call without an access token: user-service's list and
/// chat-service's (health and reflection are always public too).
pub(crate) fn public_methods() -> Vec<&'static str> {
    parley_proto::user::v1::PUBLIC_METHODS
        .iter()
        .chain(parley_proto::chat::v1::PUBLIC_METHODS)
        .copied()
        .collect()
}

/// Serves on an already-bound listener until `shutdown` resolves, then lets open calls finish
/// for up to `config.drain_deadline`.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_with_metrics(listener, None, config, shutdown).await
}

/// [`serve`], and Prometheus metrics at `/metrics` on `metrics_listener` (a port of its own,
/// not the public one) when given.
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.validate()?;
    let user = upstream_proxy::Upstream::connect("user-service", &config.user_service_url, &config)?;
    let chat = upstream_proxy::Upstream::connect("chat-service", &config.chat_service_url, &config)?;
    let descriptors = routing::Descriptors::decode(parley_proto::FILE_DESCRIPTOR_SET)?;
    let routes = routing::RouteTable::new(&descriptors, &[(USER_PACKAGE, &user), (CHAT_PACKAGE, &chat)]);

    let health = tonic_health::server::HealthReporter::new();
    let health_service = edge_health::edge_health_server(&health);
    let checker = upstream_health::UpstreamHealth::new(health.clone(), routes.services_by_upstream());
    checker.mark_all_not_serving().await;

    let grpc_routes = routing::add_reflection(tonic::service::Routes::new(health_service), &descriptors, &routes)?;

    let verifier = Arc::new(TokenVerifier::with_source_refreshed_every(
        Arc::new(UserServiceKeySource::new(user.channel())),
        config.access_token_refresh,
    ));
    let known = routes.known_services();
    let streaming_methods = routes.streaming_methods();
    let unary_methods = routes.unary_methods();
    let edge_metrics = metrics::EdgeMetrics::new(
        streaming_methods
            .iter()
            .chain(&unary_methods)
            .cloned()
            .chain(routing::GATEWAY_METHODS.iter().map(|m| m.to_string()))
            .collect(),
    );
    let grpc_routes = routes.into_router(grpc_routes, &config);
    let resolve_client = client_addr::ResolveClient::new(&config.trusted_proxies);
    let public_methods = public_methods();
    let guarded: GrpcService = BoxCloneService::new(
        ServiceBuilder::new()
            .map_request(move |request| resolve_client.resolve(request))
            // Per address first, so one address over its share takes no global slot.
            .layer(AdmissionLayer::new(load_shedding::CallsPerAddress::new(
                &public_methods,
                config.max_calls_per_address,
                config.max_public_calls_per_address,
            )))
            // Before auth, which may have to ask user-service for keys.
            .layer(AdmissionLayer::new(load_shedding::CallsInFlight::new(
                config.max_concurrent_calls,
                config.max_reflection_streams,
            )))
            .layer(AuthLayer::new(verifier, public_methods.iter().copied()))
            .map_request(call_log::record_caller)
            // Before the rate limit, so a refused call does not spend a message's allowance.
            .layer(AdmissionLayer::new(load_shedding::CallsPerUser::streams(
                streaming_methods,
                config.max_streams_per_user,
            )))
            .layer(AdmissionLayer::new(load_shedding::CallsPerUser::unary(
                unary_methods,
                config.max_unary_calls_per_user,
            )))
            .layer(AdmissionLayer::new(rate_limit::Limits::new(&config)))
            .service(grpc_routes.clone()),
    );
    let call_log = call_log::CallLogLayer {
        metrics: Arc::clone(&edge_metrics),
    };
    let grpc = call_log.layer(routing::KnownServices::new(known, guarded, grpc_routes));
    let grpc: GrpcService = BoxCloneService::new(tonic_web::GrpcWebLayer::new().layer(grpc));

    let web = web_ui::WebUi::new(config.web_dir.clone(), config.embedded_ui.clone(), config.hsts);
    let front = http_server::FrontDoor::new(grpc, web);
    let cors = edge_options::cors_layer(&config.cors_origins)?;

    let shutdown = shutdown.boxed().shared();
    let health_task = tokio::spawn(checker.run(config.health_check_interval, shutdown.clone()));
    let metrics_task = metrics_listener
        .map(|listener| tokio::spawn(metrics::serve(listener, Arc::clone(&edge_metrics), shutdown.clone())));
    let limits = http_server::ConnectionLimits {
        max_connections: config.max_connections,
        max_connections_per_address: config.max_connections_per_address,
        trusted_proxies: config.trusted_proxies.clone(),
        max_streams_per_connection: config.max_streams_per_connection,
        drain_deadline: config.drain_deadline,
        timeouts: connection_watchdog::ConnectionTimeouts {
            header: config.header_timeout,
            idle: config.idle_connection_timeout,
        },
    };
    let result = http_server::run(listener, cors.layer(front), shutdown, limits, edge_metrics).await;
    health_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    result.map_err(Error::from)
}
