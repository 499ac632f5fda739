//! chat-service: API configs (keys encrypted at rest), personas, sessions and messages, and
//! the generations that answer them through llm-service, served as `parley.chat.v1`'s
//! `ApiConfigService`, `PersonaService`, `SessionService`, `MessageService`, `QuotaService`,
//! `ModelService`, `ChatDefaultsService`, `TransferService` (export, import), `ShareService`
//! and `SharedChatService` (share links).
//!
//! Layers: `handlers` (gRPC in and out) → `service` (the rules) → [`store`] (SQL), with
//! `generation` running answers as tasks of their own that outlive the request, and
//! `convert` the one place rows become protobuf messages. This file only wires them together
//! ([`serve`]); [`Config`] says what they are started with. Public is only what other crates
//! use: the server, its config and errors, and (for the store tests) the store, the id types,
//! the key cipher and the usage arithmetic the store records.

mod api_key;
mod config;
mod context_budget;
mod convert;
mod error;
mod generation;
mod handlers;
pub mod ids;
pub mod key_cipher;
mod llm_client;
pub mod master_keys;
pub mod message_tree;
mod model_cache;
mod page_token;
mod quota;
mod room_bus;
mod service;
pub mod store;
mod transfer;
pub mod usage;
mod user_directory;
mod validation;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use parley_proto::chat::internal::v1::account_data_service_server::AccountDataServiceServer;
use parley_proto::chat::internal::v1::{METHOD_SCOPES, SERVICE_TOKEN_AUDIENCE};
use parley_proto::chat::v1::api_config_service_server::ApiConfigServiceServer;
use parley_proto::chat::v1::chat_defaults_service_server::ChatDefaultsServiceServer;
use parley_proto::chat::v1::folder_service_server::FolderServiceServer;
use parley_proto::chat::v1::message_service_server::MessageServiceServer;
use parley_proto::chat::v1::model_service_server::ModelServiceServer;
use parley_proto::chat::v1::notification_service_server::NotificationServiceServer;
use parley_proto::chat::v1::persona_service_server::PersonaServiceServer;
use parley_proto::chat::v1::prompt_service_server::PromptServiceServer;
use parley_proto::chat::v1::quota_service_server::QuotaServiceServer;
use parley_proto::chat::v1::room_service_server::RoomServiceServer;
use parley_proto::chat::v1::session_service_server::SessionServiceServer;
use parley_proto::chat::v1::share_service_server::ShareServiceServer;
use parley_proto::chat::v1::shared_chat_service_server::SharedChatServiceServer;
use parley_proto::chat::v1::shared_connection_service_server::SharedConnectionServiceServer;
use parley_proto::chat::v1::transfer_service_server::TransferServiceServer;
use parley_proto::chat::v1::usage_service_server::UsageServiceServer;
use parley_service_kit::access_token::{TokenVerifier, UserServiceKeySource};
use parley_service_kit::auth_layer::AuthLayer;
use parley_service_kit::balanced_channel::{BalancedChannel, ChannelOptions};
use parley_service_kit::database::{self, Migrations};
use parley_service_kit::grpc_server::GrpcServer;
use tokio::net::TcpListener;

pub use config::{Config, LibraryOptions, RoomOptions, TransferOptions};
pub use error::Error;
pub use generation::{DEFAULT_MAX_ANSWER_BYTES, GenerationSettings};
use generation::{GenerationRegistry, GenerationRelay};
pub use key_cipher::MasterKey;
pub use quota::QuotaLimits;
pub use service::{RetentionSweep, RoomLimits};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};

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
    let user_channel = BalancedChannel::new(&config.user_service_url, ChannelOptions::default())
        .map_err(|e| Error::Config(format!("user-service URL: {e}")))?;
    let verifier = Arc::new(TokenVerifier::with_source_refreshed_every(
        Arc::new(UserServiceKeySource::new(user_channel.clone())),
        config.access_token_refresh.max(Duration::from_millis(10)),
    ));
    let registry = GenerationRegistry::new(config.generation.max_per_user);
    // Room events reach this instance's streams through the bus, and other instances' through
    // NATS when configured; generations followed or stopped through another instance too.
    let (room_bus, nats_forwarder) = match &config.nats_url {
        Some(url) => {
            let (bus, forwarder) = room_bus::RoomBus::with_nats(url, &config.nats_subject_prefix).await?;
            (bus, Some(forwarder))
        }
        None => (room_bus::RoomBus::local(), None),
    };
    let relay = room_bus
        .nats_client()
        .map(|nats| GenerationRelay::new(nats, &config.nats_subject_prefix));
    // A SQLite file has only this instance; a PostgreSQL database may have others.
    let single_instance = database.backend == database::Backend::Sqlite;
    let chat = service::ChatService::new(
        store,
        cipher,
        llm,
        Arc::clone(&registry),
        config.generation.clone(),
        !single_instance,
        config.adopt_legacy_chats,
    )
    .with_quota_defaults(config.quotas)
    .with_max_import_bytes(config.max_import_bytes)
    .with_library_limits(config.library);
    let chat = Arc::new(match &relay {
        Some(relay) => chat.with_generation_relay(Arc::clone(relay)),
        None => chat,
    });
    let stop_listener = match &relay {
        Some(relay) => Some(relay.serve_stops(Arc::clone(&registry)).await?),
        None => None,
    };
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
    // Rows of erased accounts an erasure left behind (a crash halfway, or a row written by
    // another instance for a token it still accepted): once at start, then every minute.
    let erased_sweeper = tokio::spawn({
        let chat = Arc::clone(&chat);
        let shutdown = shutdown.clone();
        let interval = config.erased_sweep_interval;
        async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.clone() => return,
                    _ = tick.tick() => {
                        if let Err(e) = chat.sweep_erased().await {
                            tracing::warn!(error = %e, "could not sweep erased accounts' rows; will retry");
                        }
                    }
                }
            }
        }
    });
    let rooms = Arc::new(
        service::Rooms::new(
            Arc::clone(&chat),
            room_bus,
            config.room_limits.clone(),
            user_directory::UserDirectory::new(user_channel),
        )
        .with_notifications_kept(config.notifications_kept),
    );
    // Room messages past their room's retention, every interval (the first a while after
    // the start, which has enough to do).
    let retention_sweeper = tokio::spawn({
        let rooms = Arc::clone(&rooms);
        let shutdown = shutdown.clone();
        let sweep = config.room_retention.clone();
        async move {
            let mut tick = tokio::time::interval(sweep.interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.reset();
            loop {
                tokio::select! {
                    _ = shutdown.clone() => return,
                    _ = tick.tick() => {
                        if let Err(e) = rooms.sweep_retention(&sweep).await {
                            tracing::warn!(error = %e, "could not delete expired room messages; will retry");
                        }
                    }
                }
            }
        }
    });
    let room_api = handlers::RoomApi::new(Arc::clone(&chat), rooms);
    let api = handlers::ChatApi::new(chat);

    // At shutdown new generations are refused (and new calls go to other replicas, as the
    // server stops accepting); running ones may finish within the grace, the rest are then
    // stopped, so the streams following them end within the drain deadline after it.
    let generation_grace = config.generation_grace;
    let stopper = tokio::spawn({
        let shutdown = shutdown.clone();
        let registry = Arc::clone(&registry);
        async move {
            shutdown.await;
            tracing::info!(running = registry.running(), grace = ?generation_grace, "letting running generations finish");
            registry.drain(generation_grace).await;
        }
    });
    tracing::info!(
        address = ?listener.local_addr().ok(),
        backend = ?database.backend,
        "chat-service listening"
    );
    // Every call needs a user's access token, except a shared chat's snapshot (public: its
    // credential is the link) and the internal service's, which need a service token with the
    // method's scope (and refuse user tokens).
    let auth = AuthLayer::new(verifier, parley_proto::chat::v1::PUBLIC_METHODS.iter().copied())
        .service_methods(SERVICE_TOKEN_AUDIENCE, METHOD_SCOPES);
    // An import's file plus room for the rest of the request.
    let max_import_request = config.max_import_bytes.saturating_add(64 * 1024);
    let served = GrpcServer::new(auth)
        .add_service(AccountDataServiceServer::new(api.clone()))
        .add_service(ApiConfigServiceServer::new(api.clone()))
        .add_service(PersonaServiceServer::new(api.clone()))
        .add_service(PromptServiceServer::new(api.clone()))
        .add_service(FolderServiceServer::new(api.clone()))
        .add_service(SessionServiceServer::new(api.clone()))
        .add_service(ModelServiceServer::new(api.clone()))
        .add_service(ChatDefaultsServiceServer::new(api.clone()))
        .add_service(QuotaServiceServer::new(api.clone()))
        .add_service(SharedConnectionServiceServer::new(api.clone()))
        .add_service(UsageServiceServer::new(api.clone()))
        .add_service(TransferServiceServer::new(api.clone()).max_decoding_message_size(max_import_request))
        .add_service(ShareServiceServer::new(api.clone()))
        .add_service(SharedChatServiceServer::new(api.clone()))
        .add_service(MessageServiceServer::new(api))
        .add_service(NotificationServiceServer::new(room_api.clone()))
        .add_service(RoomServiceServer::new(room_api))
        .drain_deadline(config.drain_deadline.saturating_add(generation_grace))
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
    erased_sweeper.abort();
    retention_sweeper.abort();
    if let Some(forwarder) = nats_forwarder {
        forwarder.abort();
    }
    if let Some(listener) = stop_listener {
        listener.abort();
    }
    let _ = sweeper.await;
    let _ = erased_sweeper.await;
    let _ = retention_sweeper.await;
    database.pool.close().await;
    served?;
    Ok(())
}
