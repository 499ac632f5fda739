//! `parley`: the whole stack in one process (`make run`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use parley_service_kit::access_token::VerifierOptions;
use parley_service_kit::{entrypoint, shutdown};

#[derive(Debug, Parser)]
#[command(
    name = "parley",
    about = "Parley: a self-hosted AI chat, all services in one process"
)]
struct Cli {
    /// Address of the web UI and the API (gRPC and gRPC-web).
    #[arg(long, env = "PARLEY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the SQLite databases and generated keys live.
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// A built web UI directory to serve instead of the one compiled into this binary (for
    /// working on the UI: `npm run build` and reload, no Rust rebuild).
    #[arg(long, env = "PARLEY_WEB_DIR")]
    web_dir: Option<PathBuf>,
    #[command(flatten)]
    edge: gateway::EdgeOptions,
    #[command(flatten)]
    accounts: user_service::AccountOptions,
    /// Let LLM calls reach loopback and private addresses, so a local Ollama or llama.cpp
    /// server works [default: only when --listen is a loopback address]. People who can sign
    /// up could otherwise make Parley call services on your network: allow it on a wider
    /// listener (`--allow-private-networks` or `=true`) only when you trust them. Cloud
    /// metadata endpoints are refused either way.
    #[arg(
        long,
        env = "PARLEY_ALLOW_PRIVATE_NETWORKS",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    allow_private_networks: Option<bool>,
    #[command(flatten)]
    provider: llm_service::ProviderOptions,
    /// After upgrading a data directory from before chats were keyed by account UUID: give
    /// each old chat to the account that signs in with its user id (once). Only while
    /// user-service.db is the one the chats were written with; after a reset a new account
    /// may get an old id. Default off: old chats stay stored but hidden.
    #[arg(long, env = "PARLEY_CHAT_ADOPT_LEGACY_CHATS", default_value_t = false)]
    adopt_legacy_chats: bool,
    #[command(flatten)]
    quotas: chat_service::QuotaLimits,
    #[command(flatten)]
    rooms: chat_service::RoomOptions,
    #[command(flatten)]
    transfer: chat_service::TransferOptions,
    #[command(flatten)]
    library: chat_service::LibraryOptions,
    #[command(flatten)]
    verifier: VerifierOptions,
    /// Where to serve the gateway's Prometheus metrics (`/metrics`), e.g. 127.0.0.1:9464;
    /// none by default. Keep it off the public network.
    #[arg(long, env = "PARLEY_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("parley");
    entrypoint::run("parley", async move {
        let listener = entrypoint::bind(cli.listen).await?;
        let config = parley::StackConfig {
            data_dir: cli.data_dir,
            web_dir: cli.web_dir,
            embedded_ui: Some(parley::embedded_ui()),
            edge: cli.edge,
            accounts: cli.accounts,
            allow_private_networks: cli.allow_private_networks,
            provider: cli.provider,
            adopt_legacy_chats: cli.adopt_legacy_chats,
            quotas: cli.quotas,
            rooms: cli.rooms,
            transfer: cli.transfer,
            library: cli.library,
            verifier: cli.verifier,
            metrics_listen: cli.metrics_listen,
        };
        let stack = match parley::start(listener, config, shutdown::signal()).await {
            Ok(stack) => stack,
            // Asked to stop before it was up, and stopped: nothing went wrong.
            Err(parley::Error::Interrupted) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        // Printed once every service is serving: scripts (and the UI's end-to-end tests) wait
        // for this line, and read the port from it.
        println!("Parley is running at {}", stack.url());
        stack.wait().await.map_err(|e| e.to_string())
    })
}
