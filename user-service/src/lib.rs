//! user-service: accounts, passwords (argon2id), access tokens (EdDSA JWTs), refresh tokens
//! (opaque, hashed, rotated) and verification codes, served as `parley.user.v1.UserService`.
//!
//! Layers: [`handlers`] (gRPC in and out) → [`service`] (the rules) → [`store`] (SQL).

pub mod account_deletion;
pub mod account_fields;
mod account_options;
pub mod chat_eraser;
pub mod cleanup;
mod error;
pub mod handlers;
pub mod mailer;
pub mod password;
pub mod service;
pub mod store;
#[doc(hidden)]
pub mod test_support;
pub mod token_signer;
pub mod verification;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use parley_proto::user::v1::admin_service_server::AdminServiceServer;
use parley_proto::user::v1::user_service_server::UserServiceServer;
use parley_service_kit::access_token::{self, TokenVerifier};
use parley_service_kit::auth_layer::AuthLayer;
use parley_service_kit::database::{self, Migrations};
use parley_service_kit::grpc_server::GrpcServer;
use tokio::net::TcpListener;

pub use account_options::AccountOptions;
pub use error::Error;
pub use mailer::{LogMailer, MailError, Mailer, Purpose, SmtpMailer, SmtpSettings, VerificationMail};
pub use password::HashingLimits;

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
    /// Holds the signing key and the previous public keys unless they are placed elsewhere.
    pub data_dir: PathBuf,
    /// The Ed25519 seed access tokens are signed with (created on first start).
    pub signing_key_path: PathBuf,
    /// `*.pub` files of earlier keys whose tokens are still accepted (see `token_signer`).
    pub previous_public_keys_dir: PathBuf,
    /// How many password hashes run at once, and how long a request waits for one.
    pub password_hashing: HashingLimits,
    /// Delivers verification codes.
    pub mailer: Arc<dyn Mailer>,
    /// Mark the refresh cookie `Secure` (serve over HTTPS).
    pub secure_cookies: bool,
    /// How often expired codes and dead refresh tokens are deleted.
    pub cleanup_interval: Duration,
    /// How often this service's own token verifier reads the revocations (its other
    /// verifiers fetch them from `GetPublicKeys` on their own schedule).
    pub revocation_refresh_interval: Duration,
    /// Where deleted accounts' data is erased. `None`: chat-service at `chat_service_url`.
    pub account_data_eraser: Option<Arc<dyn account_deletion::AccountDataEraser>>,
    /// chat-service, whose data of deleted accounts is erased through its internal
    /// `EraseAccountData`. With neither this nor `account_data_eraser`, deletions stay queued
    /// in the `account_deletions` outbox (nothing lost) and a warning says so at start.
    pub chat_service_url: Option<String>,
    /// How often the outbox is checked for deletions to deliver.
    pub account_deletion_interval: Duration,
    /// Codes one email address receives a day, over every account and purpose.
    pub codes_per_address_per_day: u32,
    /// Sign-in limits and who administers the instance.
    pub rules: service::AccountRules,
}

impl Config {
    /// Defaults: keys under `data_dir/user-service/`, codes go to the log, cookies without
    /// `Secure`, one password hash per CPU, cleanup every 10 minutes.
    pub fn new(database_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            database_url: database_url.into(),
            signing_key_path: token_signer::key_path(&data_dir),
            previous_public_keys_dir: token_signer::previous_keys_dir(&data_dir),
            password_hashing: HashingLimits::default(),
            data_dir,
            mailer: Arc::new(LogMailer),
            secure_cookies: false,
            cleanup_interval: Duration::from_secs(10 * 60),
            revocation_refresh_interval: access_token::DEFAULT_REFRESH_INTERVAL,
            account_data_eraser: None,
            chat_service_url: None,
            account_deletion_interval: Duration::from_secs(5),
            codes_per_address_per_day: service::CODES_PER_ADDRESS_PER_DAY,
            rules: service::AccountRules::default(),
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
    // Owner-only (0700), like the key files they hold: the key's directory and the data
    // directory around it (made here, not left to whatever creates a file in it first).
    for dir in [Some(config.data_dir.as_path()), config.signing_key_path.parent()]
        .into_iter()
        .flatten()
        .filter(|dir| !dir.as_os_str().is_empty())
    {
        database::create_private_dir(dir).map_err(|source| Error::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let database = database::connect(&config.database_url, &MIGRATIONS).await?;
    let keys = Arc::new(token_signer::SigningKeys::load(
        &config.signing_key_path,
        &config.previous_public_keys_dir,
    )?);
    let store = store::AccountStore::new(&database);
    let passwords = password::PasswordHasher::new(config.password_hashing).await?;
    if config.mailer.delivers_to_log() {
        tracing::warn!(
            "log mailer in use: one-time codes (password resets, email checks) are written to \
             this log, and anyone who can read it can use them. Set --smtp-host (PARLEY_SMTP_HOST) \
             and the other --smtp-* flags to send them by email instead"
        );
    }
    let (codes, code_worker) = service::CodeQueue::start(
        store.clone(),
        Arc::clone(&config.mailer),
        service::CODE_QUEUE_CAPACITY,
        config.codes_per_address_per_day,
    );
    let accounts = Arc::new(service::AccountService::new(
        store.clone(),
        Arc::clone(&keys),
        passwords,
        codes,
        config.rules.clone(),
    )?);
    accounts.promote_named_admin().await?;
    // Reads the revocations straight from the store, on the same schedule as other services.
    let verifier = Arc::new(TokenVerifier::with_source_refreshed_every(
        Arc::new(service::LocalKeySource(Arc::clone(&accounts))),
        config.revocation_refresh_interval,
    ));
    let api = handlers::UserApi::new(Arc::clone(&accounts), config.secure_cookies);
    let admin_api = handlers::AdminApi::new(accounts);

    let shutdown = shutdown.boxed().shared();
    let eraser = match (&config.account_data_eraser, &config.chat_service_url) {
        (Some(eraser), _) => Some(Arc::clone(eraser)),
        (None, Some(url)) => Some(Arc::new(
            chat_eraser::ChatServiceEraser::connect_lazy(url, Arc::clone(&keys)).map_err(Error::Config)?,
        ) as Arc<dyn account_deletion::AccountDataEraser>),
        (None, None) => {
            tracing::warn!(
                "no chat-service configured: deleted accounts' chats are not erased; the deletions \
                 stay queued until --chat-service-url (PARLEY_CHAT_SERVICE_URL) is set"
            );
            None
        }
    };
    let deletions = eraser.map(|eraser| {
        tokio::spawn(account_deletion::run(
            store.clone(),
            eraser,
            config.account_deletion_interval,
            shutdown.clone(),
        ))
    });
    let cleanup = tokio::spawn(cleanup::run(store, config.cleanup_interval, shutdown.clone()));
    tracing::info!(
        address = ?listener.local_addr().ok(),
        key_id = keys.signer.key_id(),
        accepted_keys = keys.accepted.len(),
        backend = ?database.backend,
        "user-service listening"
    );
    let served = GrpcServer::new(AuthLayer::new(verifier, PUBLIC_METHODS.iter().copied()))
        .add_service(UserServiceServer::new(api))
        .add_service(AdminServiceServer::new(admin_api))
        .serve(listener, shutdown)
        .await;
    // The server has ended (on shutdown or failing), so the background tasks go too. Codes
    // still queued are dropped; their sends were counted, so asking again works once the
    // send limit's minute has passed.
    cleanup.abort();
    code_worker.abort();
    if let Some(deletions) = deletions {
        // A row being delivered stays in the outbox (leased); a later pass delivers it.
        deletions.abort();
        let _ = deletions.await;
    }
    let _ = cleanup.await;
    let _ = code_worker.await;
    database.pool.close().await;
    served?;
    Ok(())
}
