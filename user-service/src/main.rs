use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use parley_service_kit::{entrypoint, shutdown};
use user_service::{Config, SmtpMailer, SmtpSettings};

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
    /// Send codes by email through this SMTP server (default: write them to the log).
    #[arg(long, env = "PARLEY_SMTP_HOST")]
    smtp_host: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_PORT", default_value_t = 587)]
    smtp_port: u16,
    #[arg(long, env = "PARLEY_SMTP_USERNAME")]
    smtp_username: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_PASSWORD", hide_env_values = true)]
    smtp_password: Option<String>,
    #[arg(long, env = "PARLEY_SMTP_FROM", default_value = "Parley <parley@localhost>")]
    smtp_from: String,
    /// Mark the refresh-token cookie `Secure` (when browsers reach Parley over HTTPS).
    #[arg(long, env = "PARLEY_SECURE_COOKIES")]
    secure_cookies: bool,
}

fn main() -> ExitCode {
    let cli: Cli = entrypoint::parse_args("user-service");
    entrypoint::run("user-service", async move {
        let database_url = cli
            .database_url
            .unwrap_or_else(|| Config::default_database_url(&cli.data_dir));
        let mut config = Config::new(database_url, cli.data_dir);
        config.secure_cookies = cli.secure_cookies;
        if let Some(host) = cli.smtp_host {
            let mailer = SmtpMailer::new(SmtpSettings {
                host,
                port: cli.smtp_port,
                username: cli.smtp_username,
                password: cli.smtp_password,
                from: cli.smtp_from,
            })
            .map_err(|e| format!("SMTP settings: {e}"))?;
            config.mailer = Arc::new(mailer);
        }
        let listener = entrypoint::bind(cli.listen).await?;
        user_service::serve(listener, config, shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}
