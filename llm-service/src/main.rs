use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use llm_service::{Config, RetrySettings};
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
    /// Seconds to establish a connection to a provider.
    #[arg(long, env = "PARLEY_LLM_CONNECT_TIMEOUT_SECS", default_value_t = 10.0)]
    connect_timeout_secs: f64,
    /// Seconds from the request to the first token.
    #[arg(long, env = "PARLEY_LLM_FIRST_TOKEN_TIMEOUT_SECS", default_value_t = 120.0)]
    first_token_timeout_secs: f64,
    /// Seconds of silence allowed between chunks once the answer has started.
    #[arg(long, env = "PARLEY_LLM_IDLE_TIMEOUT_SECS", default_value_t = 60.0)]
    idle_timeout_secs: f64,
    /// Retries before the first token (429, 5xx, connect errors).
    #[arg(long, env = "PARLEY_LLM_MAX_RETRIES", default_value_t = 2)]
    max_retries: u32,
    /// The longest wait before a retry, also the cap on a provider's Retry-After.
    #[arg(long, env = "PARLEY_LLM_MAX_RETRY_DELAY_SECS", default_value_t = 10.0)]
    max_retry_delay_secs: f64,
}

fn duration(flag: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("--{flag} must be a non-negative number of seconds"))
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("llm-service");
    entrypoint::run("llm-service", async move {
        let defaults = Config::default();
        let config = Config {
            allow_private_networks: cli.allow_private_networks,
            connect_timeout: duration("connect-timeout-secs", cli.connect_timeout_secs)?,
            first_token_timeout: duration("first-token-timeout-secs", cli.first_token_timeout_secs)?,
            idle_timeout: duration("idle-timeout-secs", cli.idle_timeout_secs)?,
            retry: RetrySettings {
                max_retries: cli.max_retries,
                max_delay: duration("max-retry-delay-secs", cli.max_retry_delay_secs)?,
                ..defaults.retry.clone()
            },
            ..defaults
        };
        let listener = entrypoint::bind(cli.listen).await?;
        llm_service::serve(listener, config, shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}
