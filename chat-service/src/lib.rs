//! chat-service: API configs (keys encrypted at rest), personas, sessions and messages, and
//! the generations that answer them through llm-service, served as `parley.chat.v1`'s
//! `ApiConfigService`, `PersonaService`, `SessionService` and `MessageService`.
//!
//! Layers: [`handlers`] (gRPC in and out) → [`service`] (the rules) → [`store`] (SQL), with
//! [`generation`] running answers as tasks of their own that outlive the request.

pub mod context_budget;
pub mod convert;
mod error;
pub mod generation;
pub mod handlers;
pub mod key_cipher;
pub mod llm_client;
pub mod master_keys;
pub mod page_token;
pub mod service;
pub mod store;
pub mod validation;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use parley_proto::chat::v1::api_config_service_server::ApiConfigServiceServer;
use parley_proto::chat::v1::message_service_server::MessageServiceServer;
use parley_proto::chat::v1::persona_service_server::PersonaServiceServer;
use parley_proto::chat::v1::session_service_server::SessionServiceServer;
use parley_service_kit::access_token::{TokenVerifier, UserServiceKeySource};
use parley_service_kit::auth_layer::AuthLayer;
use parley_service_kit::database::{self, Migrations};
use parley_service_kit::grpc_server::{DEFAULT_DRAIN_DEADLINE, GrpcServer};
use tokio::net::TcpListener;
use tonic::transport::Endpoint;

pub use error::Error;
pub use generation::{GenerationRegistry, GenerationSettings};
pub use key_cipher::MasterKey;

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
    /// Holds the generated master key (`chat-service/master-key`) when none is configured.
    pub data_dir: PathBuf,
    /// user-service, for the public keys that verify access tokens.
    pub user_service_url: String,
    /// llm-service, which talks to the providers.
    pub llm_service_url: String,
    /// Master keys for API-key encryption, newest version writing. Empty: the key file in
    /// the data directory, generated on the first start.
    pub master_keys: Vec<MasterKey>,
    pub generation: GenerationSettings,
    /// How long open streams may run on after shutdown was asked for (generations are
    /// stopped at once, so this is only the time to store and send their end).
    pub drain_deadline: Duration,
}

// Never print key material.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("user_service_url", &self.user_service_url)
            .field("llm_service_url", &self.llm_service_url)
            .field("master_keys", &self.master_keys)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn new(database_url: String, data_dir: &Path, user_service_url: String, llm_service_url: String) -> Self {
        Self {
            database_url,
            data_dir: data_dir.to_path_buf(),
            user_service_url,
            llm_service_url,
            master_keys: Vec::new(),
            generation: GenerationSettings::default(),
            drain_deadline: DEFAULT_DRAIN_DEADLINE,
        }
    }

    /// The default SQLite database file under `data_dir`.
    pub fn default_database_url(data_dir: &Path) -> String {
        database::sqlite_url(&data_dir.join("chat-service.db"))
    }

    /// The configured master keys, or the generated key file's.
    fn load_master_keys(&self) -> Result<Vec<MasterKey>, Error> {
        if self.master_keys.is_empty() {
            master_keys::load_or_create(&master_keys::key_path(&self.data_dir))
        } else {
            Ok(self.master_keys.clone())
        }
    }
}

/// Serves chat-service on `listener` until `shutdown` resolves. On shutdown, running
/// generations are stopped and their answers so far stored (STOPPED) before this returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let cipher = key_cipher::KeyCipher::new(config.load_master_keys()?)?;
    let database = database::connect(&config.database_url, &MIGRATIONS).await?;
    let store = store::ChatStore::new(&database);
    let llm = llm_client::LlmClient::connect_lazy(&config.llm_service_url)?;
    let user_channel = Endpoint::from_shared(config.user_service_url.clone())
        .map_err(|e| Error::Config(format!("user-service URL {:?}: {e}", config.user_service_url)))?
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    let verifier = Arc::new(TokenVerifier::with_source(Arc::new(UserServiceKeySource::new(
        user_channel,
    ))));
    let registry = GenerationRegistry::new(config.generation.max_per_user);
    // A SQLite file has only this instance; a PostgreSQL database may have others.
    let single_instance = database.backend == database::Backend::Sqlite;
    let chat = Arc::new(service::ChatService::new(
        store,
        cipher,
        llm,
        Arc::clone(&registry),
        config.generation.clone(),
        !single_instance,
    ));
    // Before serving: no request may see a row a crash left STREAMING, and a wrong master
    // key must stop the start, not surface later as failed chats. Other instances' answers
    // may still be live.
    chat.fail_abandoned(single_instance).await?;
    chat.check_and_rotate_keys().await?;

    let shutdown = shutdown.boxed().shared();
    // Answers whose instance died while this one runs (PostgreSQL, several instances).
    let sweeper = tokio::spawn({
        let chat = Arc::clone(&chat);
        let shutdown = shutdown.clone();
        async move {
            let mut tick = tokio::time::interval(chat.abandoned_check_interval());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.reset();
            loop {
                tokio::select! {
                    _ = shutdown.clone() => return,
                    _ = tick.tick() => {
                        if let Err(e) = chat.fail_abandoned(false).await {
                            tracing::warn!(error = %e, "could not check for abandoned answers");
                        }
                    }
                }
            }
        }
    });
    let api = handlers::ChatApi::new(chat);

    // Generations end when shutdown begins, so the streams following them can finish within
    // the drain deadline.
    let stopper = tokio::spawn({
        let shutdown = shutdown.clone();
        let registry = Arc::clone(&registry);
        async move {
            shutdown.await;
            tracing::info!(running = registry.running(), "stopping running generations");
            registry.stop_all();
        }
    });
    tracing::info!(
        address = ?listener.local_addr().ok(),
        backend = ?database.backend,
        "chat-service listening"
    );
    // No public methods: every call needs an access token.
    let served = GrpcServer::new(AuthLayer::new(verifier, std::iter::empty::<String>()))
        .add_service(ApiConfigServiceServer::new(api.clone()))
        .add_service(PersonaServiceServer::new(api.clone()))
        .add_service(SessionServiceServer::new(api.clone()))
        .add_service(MessageServiceServer::new(api))
        .drain_deadline(config.drain_deadline)
        .serve(listener, shutdown)
        .await;
    // The server only ends once shutdown began (or it failed): stop whatever still runs
    // and wait until every answer's end is stored.
    registry.stop_all();
    if !registry.wait_idle(config.drain_deadline).await {
        tracing::error!("generations did not finish storing their answers before the deadline");
    }
    stopper.abort();
    sweeper.abort();
    let _ = sweeper.await;
    database.pool.close().await;
    served?;
    Ok(())
}
