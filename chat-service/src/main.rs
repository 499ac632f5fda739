use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chat_service::{Config, master_keys};
use clap::Parser;
use parley_service_kit::access_token::VerifierOptions;
use parley_service_kit::{entrypoint, shutdown};

/// Parley chat-service: API configs, personas, sessions, messages and generations over gRPC.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[arg(long, env = "PARLEY_CHAT_LISTEN", default_value = "127.0.0.1:50052")]
    listen: SocketAddr,
    /// Holds the generated master key and, by default, the SQLite database.
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (default: a SQLite file in the data directory).
    #[arg(long, env = "PARLEY_CHAT_DATABASE_URL")]
    database_url: Option<String>,
    /// user-service, whose public keys verify access tokens.
    #[arg(long, env = "PARLEY_USER_SERVICE_URL", default_value = "http://127.0.0.1:50051")]
    user_service_url: String,
    /// llm-service, which calls the providers.
    #[arg(long, env = "PARLEY_LLM_SERVICE_URL", default_value = "http://127.0.0.1:50053")]
    llm_service_url: String,
    /// Master keys for API-key encryption as `version:base64` (32 bytes) entries, comma
    /// separated; the highest version encrypts, all decrypt, and keys under older versions
    /// are re-encrypted on start. Default: a key generated into the data directory.
    #[arg(long, env = "PARLEY_CHAT_MASTER_KEYS", hide_env_values = true)]
    master_keys: Option<String>,
    /// Estimated tokens of history sent with each question.
    #[arg(long, env = "PARLEY_CHAT_CONTEXT_BUDGET", default_value_t = 8_000)]
    context_budget_tokens: usize,
    /// Longest an answer may take, in seconds.
    #[arg(long, env = "PARLEY_CHAT_MAX_GENERATION_SECS", default_value_t = 600)]
    max_generation_secs: u64,
    /// At shutdown (a rollout), seconds running answers may take to finish while new ones go
    /// to other replicas; the rest are then stopped, kept as far as they got. 0 stops them at
    /// once. Keep it below the orchestrator's grace period (Kubernetes:
    /// terminationGracePeriodSeconds) minus the drain deadline.
    #[arg(long, env = "PARLEY_CHAT_GENERATION_GRACE_SECS", default_value_t = 30)]
    generation_grace_secs: u64,
    /// Seconds after which an answer whose row stopped being written is taken for one whose
    /// instance died, and marked FAILED (its text so far kept). Running answers write their
    /// row at least every sixth of it (at most every 5 s).
    #[arg(long, env = "PARLEY_CHAT_ABANDONED_AFTER_SECS", default_value_t = 30)]
    abandoned_after_secs: u64,
    /// What this deployment's subjects on NATS (answers, room events) start with: give
    /// deployments that share a NATS server different prefixes.
    #[arg(long, env = "PARLEY_NATS_SUBJECT_PREFIX", default_value = "parley")]
    nats_subject_prefix: String,
    /// Answers one user may have generating at once.
    #[arg(long, env = "PARLEY_CHAT_MAX_GENERATIONS_PER_USER", default_value_t = 4)]
    max_generations_per_user: usize,
    /// Largest answer (text and reasoning together) in bytes; a longer one is cut off there
    /// and ends as at the model's length limit.
    #[arg(long, env = "PARLEY_MAX_ANSWER_BYTES", default_value_t = chat_service::DEFAULT_MAX_ANSWER_BYTES)]
    max_answer_bytes: usize,
    /// Give chats stored before they were keyed by account (by the integer user id) to the
    /// first account that signs in with that user id. Only while the user database is the one
    /// they were written with: after a reset a new account may get an old id. Default off.
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
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("chat-service");
    entrypoint::run("chat-service", async move {
        let database_url = cli
            .database_url
            .unwrap_or_else(|| Config::default_database_url(&cli.data_dir));
        let mut config = Config::new(database_url, &cli.data_dir, cli.user_service_url, cli.llm_service_url);
        if let Some(keys) = cli.master_keys {
            config.master_keys = master_keys::parse(&keys).map_err(|e| format!("--master-keys: {e}"))?;
        }
        config.generation.context_budget_tokens = cli.context_budget_tokens;
        config.generation.max_duration = std::time::Duration::from_secs(cli.max_generation_secs.max(1));
        config.generation.max_per_user = cli.max_generations_per_user.max(1);
        config.generation.max_answer_bytes = cli.max_answer_bytes.max(1);
        config.generation.stale_after = std::time::Duration::from_secs(cli.abandoned_after_secs.max(1));
        config.generation.heartbeat_interval =
            (config.generation.stale_after / 6).min(std::time::Duration::from_secs(5));
        config.adopt_legacy_chats = cli.adopt_legacy_chats;
        config.nats_subject_prefix = cli.nats_subject_prefix;
        config.generation_grace = std::time::Duration::from_secs(cli.generation_grace_secs);
        config.quotas = cli.quotas;
        cli.rooms.apply(&mut config);
        cli.transfer.apply(&mut config);
        cli.library.apply(&mut config);
        config.access_token_refresh = cli.verifier.refresh_interval();
        let listener = entrypoint::bind(cli.listen).await?;
        chat_service::serve(listener, config, shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}
