//! user-service: accounts, passwords (argon2id), access tokens (EdDSA JWTs), refresh tokens
//! (opaque, hashed, rotated) and verification codes, served as `parley.user.v1.UserService`.
//!
//! Layers: [`handlers`] (gRPC in and out) → [`service`] (the rules) → [`store`] (SQL).

pub mod account_fields;
mod account_options;
pub mod cleanup;
mod error;
pub mod handlers;
pub mod mailer;
pub mod password;
pub mod service;
pub mod store;
pub mod token_signer;
pub mod verification;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use parley_proto::user::v1::user_service_server::UserServiceServer;
use parley_service_kit::access_token::TokenVerifier;
use parley_service_kit::auth_layer::AuthLayer;
use parley_service_kit::database::{self, Migrations};
use parley_service_kit::grpc_server::GrpcServer;
use tokio::net::TcpListener;

pub use account_options::AccountOptions;
pub use error::Error;
pub use mailer::{LogMailer, MailError, Mailer, Purpose, RecordingMailer, SmtpMailer, SmtpSettings, VerificationMail};

pub use parley_proto::user::v1::PUBLIC_METHODS;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};

#[derive(Clone)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// The signing key lives at `data_dir/user-service/signing-key`.
    pub data_dir: PathBuf,
    /// Delivers verification codes.
    pub mailer: Arc<dyn Mailer>,
    /// Mark the refresh cookie `Secure` (serve over HTTPS).
    pub secure_cookies: bool,
    /// How often expired codes and dead refresh tokens are deleted.
    pub cleanup_interval: Duration,
}

impl Config {
    /// Defaults: codes go to the log, cookies without `Secure`, cleanup every 10 minutes.
    pub fn new(database_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            database_url: database_url.into(),
            data_dir: data_dir.into(),
            mailer: Arc::new(LogMailer),
            secure_cookies: false,
            cleanup_interval: Duration::from_secs(10 * 60),
        }
    }

    /// The default SQLite database file under `data_dir`.
    pub fn default_database_url(data_dir: &std::path::Path) -> String {
        database::sqlite_url(&data_dir.join("user-service.db"))
    }
}

/// Serves user-service on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let database = database::connect(&config.database_url, &MIGRATIONS).await?;
    let signer = Arc::new(token_signer::TokenSigner::load_or_create(&token_signer::key_path(
        &config.data_dir,
    ))?);
    let verifier = Arc::new(TokenVerifier::with_keys(vec![signer.verification_key()]));
    let store = store::AccountStore::new(&database);
    let passwords = password::PasswordHasher::new().await?;
    let accounts = Arc::new(service::AccountService::new(
        store.clone(),
        Arc::clone(&signer),
        passwords,
        Arc::clone(&config.mailer),
    ));
    let api = handlers::UserApi::new(accounts, config.secure_cookies);

    let shutdown = shutdown.boxed().shared();
    let cleanup = tokio::spawn(cleanup::run(store, config.cleanup_interval, shutdown.clone()));
    tracing::info!(
        address = ?listener.local_addr().ok(),
        key_id = signer.key_id(),
        backend = ?database.backend,
        "user-service listening"
    );
    let served = GrpcServer::new(AuthLayer::new(verifier, PUBLIC_METHODS.iter().copied()))
        .add_service(UserServiceServer::new(api))
        .serve(listener, shutdown)
        .await;
    // The server ends on shutdown, so the cleanup task has been told to stop too.
    cleanup.abort();
    let _ = cleanup.await;
    database.pool.close().await;
    served?;
    Ok(())
}
