use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use parley_service_kit::access_token::VerifierOptions;
use parley_service_kit::{entrypoint, shutdown};
use user_service::token_signer;
use user_service::{AccountOptions, Config};

/// Parley user-service: accounts, tokens and verification codes over gRPC.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[arg(long, env = "PARLEY_USER_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Holds the signing key and, by default, the SQLite database.
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (default: a SQLite file in the data directory).
    #[arg(long, env = "PARLEY_USER_DATABASE_URL")]
    database_url: Option<String>,
    /// The Ed25519 seed access tokens are signed with, created on first start (default:
    /// DATA_DIR/user-service/signing-key).
    #[arg(long, env = "PARLEY_USER_SIGNING_KEY_FILE")]
    signing_key_file: Option<PathBuf>,
    /// A directory of `*.pub` files (64 hex digits each): public keys whose tokens are still
    /// accepted and published, for key rotation (default:
    /// DATA_DIR/user-service/previous-public-keys).
    #[arg(long, env = "PARLEY_USER_PREVIOUS_PUBLIC_KEYS_DIR")]
    previous_public_keys_dir: Option<PathBuf>,
    /// How often user-service's own access-token check reads the revocations.
    #[command(flatten)]
    verifier: VerifierOptions,
    /// chat-service, where deleted accounts' chats are erased. Without it deletions stay
    /// queued (nothing lost) until it is set; a warning says so at start.
    #[arg(long, env = "PARLEY_CHAT_SERVICE_URL")]
    chat_service_url: Option<String>,
    #[command(flatten)]
    accounts: AccountOptions,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Retires the signing key (its public key joins the previous public keys, so tokens it
    /// signed keep working) and creates a new one. Run it with the service stopped.
    RotateSigningKey,
    /// Prints the signing key's public key as a `.pub` file holds it (creating the key if
    /// there is none), to accept it on other replicas before they sign with it.
    PublicKey,
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("user-service");
    entrypoint::run("user-service", async move {
        let database_url = cli
            .database_url
            .unwrap_or_else(|| Config::default_database_url(&cli.data_dir));
        let mut config = Config::new(database_url, cli.data_dir);
        if let Some(path) = cli.signing_key_file {
            config.signing_key_path = path;
        }
        if let Some(dir) = cli.previous_public_keys_dir {
            config.previous_public_keys_dir = dir;
        }
        config.chat_service_url = cli.chat_service_url;
        config.revocation_refresh_interval = cli.verifier.refresh_interval();
        match cli.command {
            Some(Command::RotateSigningKey) => {
                let rotation = token_signer::rotate(&config.signing_key_path, &config.previous_public_keys_dir)
                    .map_err(|e| e.to_string())?;
                println!(
                    "retired key {} (still accepted: {}); new signing key {}",
                    rotation.retired_key_id,
                    config.previous_public_keys_dir.display(),
                    rotation.new_key_id
                );
                return Ok(());
            }
            Some(Command::PublicKey) => {
                let signer =
                    token_signer::TokenSigner::load_or_create(&config.signing_key_path).map_err(|e| e.to_string())?;
                print!("{}", token_signer::public_key_file_contents(signer.public_key()));
                return Ok(());
            }
            None => {}
        }
        cli.accounts
            .apply_to(&mut config)
            .map_err(|e| format!("SMTP settings: {e}"))?;
        let listener = entrypoint::bind(cli.listen).await?;
        user_service::serve(listener, config, shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}
