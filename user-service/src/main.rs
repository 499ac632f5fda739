use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use parley_service_kit::{entrypoint, shutdown};
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
    #[command(flatten)]
    accounts: AccountOptions,
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("user-service");
    entrypoint::run("user-service", async move {
        let database_url = cli
            .database_url
            .unwrap_or_else(|| Config::default_database_url(&cli.data_dir));
        let mut config = Config::new(database_url, cli.data_dir);
        cli.accounts
            .apply_to(&mut config)
            .map_err(|e| format!("SMTP settings: {e}"))?;
        let listener = entrypoint::bind(cli.listen).await?;
        user_service::serve(listener, config, shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}
