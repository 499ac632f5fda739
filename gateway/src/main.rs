//! The gateway on its own, for the distributed deployment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use parley_service_kit::access_token::VerifierOptions;
use parley_service_kit::{entrypoint, shutdown};

#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    about = "Parley's gateway: gRPC-web and gRPC for every client, and the web UI"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "PARLEY_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// user-service's gRPC address.
    #[arg(long, env = "PARLEY_USER_SERVICE_URL", default_value = "http://127.0.0.1:50051")]
    user_service_url: String,
    /// chat-service's gRPC address.
    #[arg(long, env = "PARLEY_CHAT_SERVICE_URL", default_value = "http://127.0.0.1:50052")]
    chat_service_url: String,
    /// The built web UI (web/dist); without it a page says the UI is not built.
    #[arg(long, env = "PARLEY_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Where to serve Prometheus metrics (`/metrics`), e.g. 127.0.0.1:9464; none by default.
    /// Keep it off the public network.
    #[arg(long, env = "PARLEY_GATEWAY_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    edge: gateway::EdgeOptions,
    #[command(flatten)]
    verifier: VerifierOptions,
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("gateway");
    entrypoint::run("gateway", async move {
        let mut config = gateway::Config::new(cli.user_service_url, cli.chat_service_url);
        config.web_dir = cli.web_dir;
        cli.edge.apply_to(&mut config);
        config.access_token_refresh = cli.verifier.refresh_interval();
        let listener = entrypoint::bind(cli.listen).await?;
        tracing::info!(addr = %cli.listen, "gateway listening");
        let metrics_listener = match cli.metrics_listen {
            Some(addr) => {
                let listener = entrypoint::bind(addr).await?;
                tracing::info!(%addr, "gateway metrics at /metrics");
                Some(listener)
            }
            None => None,
        };
        gateway::serve_with_metrics(listener, metrics_listener, config, shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}
