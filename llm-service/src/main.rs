use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use llm_service::{Config, ProviderOptions};
use parley_service_kit::{entrypoint, shutdown};

/// Parley llm-service: streams chat completions from OpenAI-compatible providers over gRPC.
/// Internal: expose it only to chat-service.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[arg(long, env = "PARLEY_LLM_LISTEN", default_value = "127.0.0.1:50053")]
    listen: SocketAddr,
    /// Allow provider URLs on loopback, private, link-local and CGNAT addresses (e.g. Ollama on
    /// localhost). Off by default: user-supplied URLs could otherwise reach internal services.
    /// Cloud metadata endpoints are refused either way.
    #[arg(long, env = "PARLEY_ALLOW_PRIVATE_NETWORKS")]
    allow_private_networks: bool,
    #[command(flatten)]
    provider: ProviderOptions,
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("llm-service");
    entrypoint::run("llm-service", async move {
        let mut config = Config {
            allow_private_networks: cli.allow_private_networks,
            ..Config::default()
        };
        cli.provider.apply_to(&mut config).map_err(|e| e.to_string())?;
        let listener = entrypoint::bind(cli.listen).await?;
        llm_service::serve(listener, config, shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}
