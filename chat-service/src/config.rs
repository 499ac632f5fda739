//! What chat-service is started with: `main.rs` fills it from flags and environment, tests
//! and the all-in-one `parley` from code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parley_service_kit::database;
use parley_service_kit::grpc_server::DEFAULT_DRAIN_DEADLINE;

use crate::generation::GenerationSettings;
use crate::key_cipher::MasterKey;
use crate::quota::QuotaLimits;
use crate::{Error, master_keys};

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
    /// How long open streams may run on after shutdown was asked for and the running
    /// generations finished or were stopped (the time to store and send their end).
    pub drain_deadline: Duration,
    /// At shutdown, how long running generations may go on to finish (new ones are refused,
    /// and new calls go to other replicas) before the rest are stopped. Zero (the default,
    /// and the all-in-one's: nobody else could take over) stops them at once.
    pub generation_grace: Duration,
    /// Whether rows stored before chat data was keyed by account (keyed by the integer user
    /// id) go to the first account presenting that user id. Only safe while the user database
    /// is the one those rows were written with (see README: "Accounts and legacy rows").
    pub adopt_legacy_chats: bool,
    /// How often erased accounts are checked for rows left behind.
    pub erased_sweep_interval: Duration,
    /// Every account's limits unless an administrator overrode them (0: unlimited).
    pub quotas: QuotaLimits,
    /// Members per room, rooms per account, message size and rate.
    pub room_limits: crate::RoomLimits,
    /// How often, and in what batches, messages past their room's retention are deleted.
    pub room_retention: crate::RetentionSweep,
    /// Notifications each account keeps (the newest; older ones are dropped as new ones come).
    pub notifications_kept: i64,
    /// NATS (`nats://host:4222`) carrying room events between instances sharing a database;
    /// None: room events stay in this process.
    pub nats_url: Option<String>,
    /// What generation subjects on NATS start with (`<prefix>.chat.generations.…`), so
    /// deployments sharing a NATS server do not hear each other's answers.
    pub nats_subject_prefix: String,
    /// How often access-token keys and revocations are fetched from user-service: a revoked
    /// token is refused within about this long.
    pub access_token_refresh: Duration,
    /// The largest file ImportSessions takes, in bytes.
    pub max_import_bytes: usize,
    /// Prompts and folders an account may keep, and how long a prompt may be.
    pub library: crate::service::LibraryLimits,
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
            .field("generation_grace", &self.generation_grace)
            .field("adopt_legacy_chats", &self.adopt_legacy_chats)
            .field("quotas", &self.quotas)
            .field("room_limits", &self.room_limits)
            .field("room_retention", &self.room_retention)
            .field("notifications_kept", &self.notifications_kept)
            .field("nats_url", &self.nats_url)
            .field("max_import_bytes", &self.max_import_bytes)
            .field("library", &self.library)
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
            generation_grace: Duration::ZERO,
            adopt_legacy_chats: false,
            erased_sweep_interval: crate::service::ERASED_SWEEP_INTERVAL,
            quotas: QuotaLimits::default(),
            room_limits: crate::RoomLimits::default(),
            room_retention: crate::RetentionSweep::default(),
            notifications_kept: crate::service::DEFAULT_NOTIFICATIONS_KEPT,
            nats_url: None,
            nats_subject_prefix: "parley".to_owned(),
            access_token_refresh: parley_service_kit::access_token::DEFAULT_REFRESH_INTERVAL,
            max_import_bytes: crate::service::DEFAULT_MAX_IMPORT_BYTES,
            library: crate::service::LibraryLimits::default(),
        }
    }

    /// The default SQLite database file under `data_dir`.
    pub fn default_database_url(data_dir: &Path) -> String {
        database::sqlite_url(&data_dir.join("chat-service.db"))
    }

    /// The configured master keys, or the generated key file's.
    pub(crate) fn load_master_keys(&self) -> Result<Vec<MasterKey>, Error> {
        if self.master_keys.is_empty() {
            master_keys::load_or_create(&master_keys::key_path(&self.data_dir))
        } else {
            Ok(self.master_keys.clone())
        }
    }
}

/// The room flags, shared by chat-service and the all-in-one `parley` (see the README).
#[derive(Debug, Clone, clap::Args)]
pub struct RoomOptions {
    /// Most members one room may have.
    #[arg(long, env = "PARLEY_ROOM_MAX_MEMBERS", default_value_t = crate::RoomLimits::default().max_members)]
    pub room_max_members: i64,
    /// Most rooms one account may be a member of.
    #[arg(long, env = "PARLEY_ROOM_MAX_ROOMS_PER_USER", default_value_t = crate::RoomLimits::default().max_rooms_per_user)]
    pub room_max_rooms_per_user: i64,
    /// Longest room message, in bytes.
    #[arg(long, env = "PARLEY_ROOM_MAX_MESSAGE_BYTES", default_value_t = crate::RoomLimits::default().max_message_bytes)]
    pub room_max_message_bytes: usize,
    /// Messages one member may post to one room per minute.
    #[arg(long, env = "PARLEY_ROOM_MESSAGES_PER_MINUTE", default_value_t = crate::RoomLimits::default().messages_per_minute)]
    pub room_messages_per_minute: i64,
    /// Seconds between sweeps deleting room messages past their room's retention.
    #[arg(long, env = "PARLEY_ROOM_RETENTION_SWEEP_SECS", default_value_t = crate::RetentionSweep::default().interval.as_secs())]
    pub room_retention_sweep_secs: u64,
    /// Questions the AI member of one room answers per minute (more are refused).
    #[arg(long, env = "PARLEY_ROOM_AI_ANSWERS_PER_MINUTE", default_value_t = crate::RoomLimits::default().ai_answers_per_minute)]
    pub room_ai_answers_per_minute: i64,
    /// Rooms of at most this many members show who has read each message.
    #[arg(long, env = "PARLEY_ROOM_READ_RECEIPTS_MAX_MEMBERS", default_value_t = crate::RoomLimits::default().read_receipts_max_members)]
    pub room_read_receipts_max_members: i64,
    /// Days stored room events are kept; a client resuming from further back is told to reload.
    #[arg(long, env = "PARLEY_ROOM_EVENTS_KEPT_DAYS", default_value_t = crate::service::DEFAULT_EVENTS_KEPT_DAYS)]
    pub room_events_kept_days: u64,
    /// Notifications each account keeps: the newest this many (older ones are dropped).
    #[arg(long, env = "PARLEY_NOTIFICATIONS_KEPT", default_value_t = crate::service::DEFAULT_NOTIFICATIONS_KEPT)]
    pub notifications_kept: i64,
    /// NATS server carrying room events between chat-service instances that share a
    /// PostgreSQL database (e.g. `nats://127.0.0.1:4222`). Unset: in-process only.
    #[arg(long, env = "PARLEY_NATS_URL")]
    pub nats_url: Option<String>,
}

impl Default for RoomOptions {
    fn default() -> Self {
        let limits = crate::RoomLimits::default();
        Self {
            room_max_members: limits.max_members,
            room_max_rooms_per_user: limits.max_rooms_per_user,
            room_max_message_bytes: limits.max_message_bytes,
            room_messages_per_minute: limits.messages_per_minute,
            room_ai_answers_per_minute: limits.ai_answers_per_minute,
            room_read_receipts_max_members: limits.read_receipts_max_members,
            room_events_kept_days: crate::service::DEFAULT_EVENTS_KEPT_DAYS,
            room_retention_sweep_secs: crate::RetentionSweep::default().interval.as_secs(),
            notifications_kept: crate::service::DEFAULT_NOTIFICATIONS_KEPT,
            nats_url: None,
        }
    }
}

impl RoomOptions {
    /// Sets the room limits, the retention sweep interval and NATS of `config`.
    pub fn apply(self, config: &mut Config) {
        config.room_limits = crate::RoomLimits {
            max_members: self.room_max_members.max(1),
            max_rooms_per_user: self.room_max_rooms_per_user.max(1),
            max_message_bytes: self.room_max_message_bytes.max(1),
            messages_per_minute: self.room_messages_per_minute.max(1),
            ai_answers_per_minute: self.room_ai_answers_per_minute.max(1),
            read_receipts_max_members: self.room_read_receipts_max_members.max(0),
        };
        config.room_retention.interval = Duration::from_secs(self.room_retention_sweep_secs.max(1));
        config.room_retention.events_kept = Duration::from_secs(self.room_events_kept_days.max(1) * 24 * 3600);
        config.notifications_kept = self.notifications_kept.max(1);
        config.nats_url = self.nats_url;
    }
}

/// The export and import flags, shared by chat-service and the all-in-one `parley`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferOptions {
    /// The largest file ImportSessions takes, in bytes. The gateway's --max-message-bytes
    /// bounds a request too: raise both for larger imports.
    #[arg(long, env = "PARLEY_MAX_IMPORT_BYTES", default_value_t = crate::service::DEFAULT_MAX_IMPORT_BYTES)]
    pub max_import_bytes: usize,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            max_import_bytes: crate::service::DEFAULT_MAX_IMPORT_BYTES,
        }
    }
}

impl TransferOptions {
    pub fn apply(self, config: &mut Config) {
        config.max_import_bytes = self.max_import_bytes.max(1);
    }
}

/// The prompt library's and folders' limits, shared by chat-service and the all-in-one `parley`.
#[derive(Debug, Clone, clap::Args)]
pub struct LibraryOptions {
    /// Saved prompts one account may keep.
    #[arg(long, env = "PARLEY_MAX_PROMPTS_PER_USER", default_value_t = crate::service::LibraryLimits::default().max_prompts)]
    pub max_prompts_per_user: i64,
    /// The longest prompt body, in bytes.
    #[arg(long, env = "PARLEY_MAX_PROMPT_BYTES", default_value_t = crate::service::LibraryLimits::default().max_prompt_bytes)]
    pub max_prompt_bytes: usize,
    /// Chat folders one account may have.
    #[arg(long, env = "PARLEY_MAX_FOLDERS_PER_USER", default_value_t = crate::service::LibraryLimits::default().max_folders)]
    pub max_folders_per_user: i64,
}

impl Default for LibraryOptions {
    fn default() -> Self {
        let limits = crate::service::LibraryLimits::default();
        Self {
            max_prompts_per_user: limits.max_prompts,
            max_prompt_bytes: limits.max_prompt_bytes,
            max_folders_per_user: limits.max_folders,
        }
    }
}

impl LibraryOptions {
    pub fn apply(self, config: &mut Config) {
        config.library = crate::service::LibraryLimits {
            max_prompts: self.max_prompts_per_user.max(1),
            max_prompt_bytes: self.max_prompt_bytes.max(1),
            max_folders: self.max_folders_per_user.max(1),
        };
    }
}
