//! The chat rules: validation, ownership, key sealing, which config answers, what context the
//! model sees, and starting, watching and stopping generations. Handlers call this; it calls
//! the store, the key cipher, llm-service and the generation registry.
//!
//! One [`ChatService`], its methods by resource: `api_configs`, `personas`, `sessions`,
//! `messages`, `quotas` (usage and limits; the checked writes), and `turns` (SendMessage,
//! RegenerateMessage, WatchGeneration, StopGeneration: the lifecycle of a chat turn, which hands
//! over to `generation`'s job), `shared_connections` (configs an administrator shares, their
//! grants, prices and limits) and `usage` (tokens and cost per answer, read back per day or
//! month), `models` (the model picker's lists, cached, and favourites) and `chat_defaults`
//! (what new chats start with). This file holds
//! what they share (the owner-checked lookups, the start-up checks) so that they never
//! import each other.

mod accounts;
mod api_configs;
mod chat_defaults;
mod folders;
mod messages;
mod models;
mod personas;
mod prompts;
mod quotas;
mod rooms;
mod sessions;
mod share_links;
mod shared_connections;
mod transfer;
mod turns;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use parley_service_kit::database::now_millis;

pub use crate::store::ArchiveFilter;
pub use accounts::ERASED_SWEEP_INTERVAL;
pub use api_configs::{ConfigChange, ProviderTarget};
pub use chat_defaults::ChatDefaultsChange;
pub use messages::MessagePage;
pub use models::ModelGroup;
pub use personas::PersonaChange;
pub use prompts::{LibraryLimits, PromptChange, prompt_variables};
pub use quotas::{AccountQuota, QuotaChange};
pub use rooms::{
    DEFAULT_EVENTS_KEPT_DAYS, DEFAULT_NOTIFICATIONS_KEPT, NotificationSettingsChange, RetentionSweep, RoomChange,
    RoomLimits, Rooms,
};
pub use sessions::{NewSessionInput, SessionChange};
pub use shared_connections::{
    Administrator, Grantee, NewSharedConnection, SharedConnection, SharedConnectionChange, SharedModelInput,
};
pub use transfer::{DEFAULT_MAX_IMPORT_BYTES, ExportFormat, ExportedFile};
pub use usage::{DayRange, Grouping};

use crate::Error;
use crate::api_key::ApiKey;
use crate::generation::{GenerationRegistry, GenerationRelay, GenerationSettings};
use crate::ids::{ApiConfigId, MessageId, OwnerId, SessionId};
use crate::key_cipher::{KeyCipher, KeyCipherError};
use crate::llm_client::LlmClient;
use crate::model_cache::ModelCache;
use crate::quota::QuotaLimits;
use crate::store::{ApiConfigRow, ChatStore, MessageRow, SessionRow};

/// How long StopGeneration and DeleteSession wait for a stopped generation to store its end.
const STOP_WAIT: Duration = Duration::from_secs(10);

pub struct ChatService {
    store: ChatStore,
    cipher: KeyCipher,
    llm: LlmClient,
    registry: Arc<GenerationRegistry>,
    settings: GenerationSettings,
    /// Other instances may use the same database (PostgreSQL): stops and watches of their
    /// answers go through the rows.
    shared_database: bool,
    /// Account id → owner id, for accounts seen (never for erased ones).
    owners: OwnerCache,
    /// Rows from before owners existed go to the first account with their user id.
    adopt_legacy_owners: bool,
    /// Every account's limits unless an administrator overrode them.
    quota_defaults: QuotaLimits,
    /// The owner of shared connections' config rows, once looked up.
    shared_owner: tokio::sync::OnceCell<OwnerId>,
    /// The model lists providers gave, per config, for a while.
    models: ModelCache,
    /// The largest file ImportSessions takes, in bytes.
    max_import_bytes: usize,
    /// With NATS: other instances' answers are followed and stopped through it.
    relay: Option<Arc<GenerationRelay>>,
    /// Prompts and folders an account may keep.
    library: prompts::LibraryLimits,
}

/// The owner ids of the accounts this instance has seen. An account's owner id never changes,
/// so entries only go when the account is erased (or the cache is full: it starts over).
#[derive(Default)]
struct OwnerCache(std::sync::Mutex<std::collections::HashMap<String, OwnerId>>);

/// Accounts remembered at most; past it the cache starts over (a lookup is one indexed read).
const OWNER_CACHE_CAPACITY: usize = 100_000;

impl OwnerCache {
    fn get(&self, account_id: &str) -> Option<OwnerId> {
        self.lock().get(account_id).copied()
    }

    fn insert(&self, account_id: &str, owner: OwnerId) {
        let mut owners = self.lock();
        if owners.len() >= OWNER_CACHE_CAPACITY {
            owners.clear();
        }
        owners.insert(account_id.to_string(), owner);
    }

    fn remove(&self, account_id: &str) {
        self.lock().remove(account_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, OwnerId>> {
        // A panic while holding the lock leaves a plain map behind; keep using it.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ChatService {
    pub fn new(
        store: ChatStore,
        cipher: KeyCipher,
        llm: LlmClient,
        registry: Arc<GenerationRegistry>,
        settings: GenerationSettings,
        shared_database: bool,
        adopt_legacy_owners: bool,
    ) -> Self {
        Self {
            store,
            cipher,
            llm,
            registry,
            settings,
            shared_database,
            owners: OwnerCache::default(),
            adopt_legacy_owners,
            quota_defaults: QuotaLimits::default(),
            shared_owner: tokio::sync::OnceCell::new(),
            models: ModelCache::default(),
            max_import_bytes: transfer::DEFAULT_MAX_IMPORT_BYTES,
            relay: None,
            library: prompts::LibraryLimits::default(),
        }
    }

    // ---- owner-checked lookups: another user's id answers NOT_FOUND like a missing one ----

    pub async fn api_config(&self, user_id: OwnerId, id: ApiConfigId) -> Result<ApiConfigRow, Error> {
        self.store
            .api_config(user_id, id)
            .await?
            .ok_or(Error::NotFound("api config"))
    }

    pub async fn session(&self, user_id: OwnerId, id: SessionId) -> Result<SessionRow, Error> {
        self.store.session(user_id, id).await?.ok_or(Error::NotFound("session"))
    }

    /// The session, if it was not ended: an ended chat is read-only until reopened.
    pub async fn open_session(&self, user_id: OwnerId, id: SessionId) -> Result<SessionRow, Error> {
        let session = self.session(user_id, id).await?;
        if session.end_time.is_some() {
            return Err(Error::ChatEnded);
        }
        Ok(session)
    }

    pub async fn message(&self, user_id: OwnerId, id: MessageId) -> Result<MessageRow, Error> {
        self.store.message(user_id, id).await?.ok_or(Error::NotFound("message"))
    }

    /// The config's API key, opened.
    fn open_key(&self, config: &ApiConfigRow) -> Result<ApiKey, Error> {
        let sealed = config.sealed_key().ok_or(KeyCipherError::Undecryptable {
            row_id: config.id.0,
            version: config.api_key_key_version,
        })?;
        Ok(ApiKey::new(self.cipher.open(config.id.0, &sealed)?))
    }

    // ---- start-up ----

    /// Answers left STREAMING by a process that died can never finish: FAILED, text kept.
    /// With `all`, every STREAMING row (at the start of the only instance); otherwise those
    /// whose generation stopped touching them (another instance's heartbeat keeps its own
    /// answers fresh).
    pub async fn fail_abandoned(&self, all: bool) -> Result<u64, Error> {
        let now = now_millis();
        let untouched_since = if all {
            i64::MAX
        } else {
            now - self.settings.stale_after.as_millis() as i64
        };
        let failed = self
            .store
            .fail_abandoned(
                untouched_since,
                "interrupted: chat-service stopped while this answer was being generated",
                tonic::Code::Aborted as i64,
                now,
            )
            .await?;
        if failed > 0 {
            tracing::warn!(
                messages = failed,
                "marked answers abandoned by a stopped process as failed"
            );
        }
        Ok(failed)
    }

    /// How often [`ChatService::fail_abandoned`] should look for abandoned answers.
    pub fn abandoned_check_interval(&self) -> Duration {
        (self.settings.stale_after / 2).max(Duration::from_millis(100))
    }

    /// Proves the configured master keys open the stored API keys (refusing to start
    /// otherwise), and re-encrypts keys sealed under older versions with the newest key.
    pub async fn check_and_rotate_keys(&self) -> Result<(), Error> {
        let current = self.cipher.current_version();
        if let Some((id, sealed)) = self.store.one_key_under(current).await? {
            self.cipher.open(id.0, &sealed)?;
        }
        let mut rotated = 0;
        for (id, sealed) in self.store.keys_not_under(current).await? {
            let plain = self.cipher.open(id.0, &sealed)?;
            let resealed = self.cipher.seal(id.0, &plain)?;
            if self.store.reseal_key(id, &sealed, &resealed).await? {
                rotated += 1;
            }
        }
        if rotated > 0 {
            tracing::info!(
                configs = rotated,
                version = current,
                "re-encrypted API keys under the newest master key"
            );
        }
        Ok(())
    }
}
