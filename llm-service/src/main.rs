use std::net::SocketAddr;
use std::path::PathBuf;
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
    /// Seconds for a whole ListModels or CheckProvider call.
    #[arg(long, env = "PARLEY_LLM_REQUEST_TIMEOUT_SECS", default_value_t = 30.0)]
    request_timeout_secs: f64,
    /// Retries before the first token (429, 5xx, connect errors).
    #[arg(long, env = "PARLEY_LLM_MAX_RETRIES", default_value_t = 2)]
    max_retries: u32,
    /// Seconds before the first retry when the provider gives no Retry-After; doubles per retry.
    #[arg(long, env = "PARLEY_LLM_INITIAL_BACKOFF_SECS", default_value_t = 0.5)]
    initial_backoff_secs: f64,
    /// The longest wait before a retry, also the cap on a provider's Retry-After.
    #[arg(long, env = "PARLEY_LLM_MAX_RETRY_DELAY_SECS", default_value_t = 10.0)]
    max_retry_delay_secs: f64,
    /// A PEM file of CA certificates to trust besides the built-in (Mozilla) roots, for
    /// providers behind an internal CA.
    #[arg(long, env = "PARLEY_EXTRA_CA_CERTS")]
    extra_ca_certs: Option<PathBuf>,
}

/// A delay from a flag: zero or more seconds.
fn duration(flag: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("--{flag} must be a non-negative number of seconds"))
}

/// A timeout from a flag: more than zero seconds (zero would fail every call at once).
fn timeout(flag: &str, secs: f64) -> Result<Duration, String> {
    match duration(flag, secs)? {
        Duration::ZERO => Err(format!("--{flag} must be more than 0 seconds")),
        timeout => Ok(timeout),
    }
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("llm-service");
    entrypoint::run("llm-service", async move {
        let config = Config {
            allow_private_networks: cli.allow_private_networks,
            connect_timeout: timeout("connect-timeout-secs", cli.connect_timeout_secs)?,
            first_token_timeout: timeout("first-token-timeout-secs", cli.first_token_timeout_secs)?,
            idle_timeout: timeout("idle-timeout-secs", cli.idle_timeout_secs)?,
            request_timeout: timeout("request-timeout-secs", cli.request_timeout_secs)?,
            retry: RetrySettings {
                max_retries: cli.max_retries,
                initial_backoff: duration("initial-backoff-secs", cli.initial_backoff_secs)?,
                max_delay: duration("max-retry-delay-secs", cli.max_retry_delay_secs)?,
            },
            extra_ca_certs: cli.extra_ca_certs,
        };
        let listener = entrypoint::bind(cli.listen).await?;
        llm_service::serve(listener, config, shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}
