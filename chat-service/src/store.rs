//! Every SQL statement chat-service runs, and nothing else. Queries use `$n` placeholders and
//! plain types so the same text runs on SQLite and PostgreSQL through sqlx's Any driver.
//!
//! Every read and write a user's request makes names the owner (`user_id`, or a join through
//! the message's session), so another user's id matches nothing. The exceptions take a session
//! or message id the service already checked the owner of (they say so), or belong to a
//! generation or the abandoned-answer sweep, which act on rows they own by id.
//!
//! This file holds the rows and what the statements take; the statements live by table:
//! `api_configs`, `personas`, `sessions`, `messages` (what users read and edit), `answers`
//! (what generations write), `sealed_keys` (master-key rotation), `owners` (which account
//! owns an owner id; erasing a deleted account's rows), `preferences` (favourite models,
//! defaults for new chats), `quotas` (usage, overrides, and the writes checked against them),
//! `shared_connections` (configs an administrator shares), `usage` (tokens per answer),
//! `transfer` (export reads, import writes), `share_links` (read-only snapshots of chats),
//! `prompts` (saved prompts) and `folders` (chat folders).

mod answers;
mod api_configs;
mod folders;
mod messages;
mod notifications;
mod owners;
mod personas;
mod preferences;
mod prompts;
mod quotas;
mod rooms;
mod sealed_keys;
mod sessions;
mod share_links;
mod shared_connections;
mod transfer;
mod usage;

use parley_service_kit::database::Database;
use sqlx::AnyPool;

use crate::ids::{ApiConfigId, FolderId, MessageId, OwnerId, PersonaId, SessionId};
use crate::key_cipher::SealedKey;
pub use api_configs::DeletedConfig;
pub use folders::FolderRow;
pub use notifications::{NotificationRow, NotificationSettingsRow, NotificationsKept};
pub use owners::OwnerRow;
pub use personas::PersonaFields;
pub use preferences::{ChatDefaultsRow, FavoriteModelRow};
pub use prompts::{PromptFields, PromptRow};
pub use quotas::{AccountUsageRow, OwnerUsage, QuotaOverrides, QuotaWrite};
pub use rooms::messages::{NewRoomAnswer, NewRoomMessage, RoomMessageRow};
pub use rooms::{
    AuthorKind, InvitationRow, InviteCodeRow, MemberRow, RetainedRoom, RoomEventRow, RoomFields, RoomMessageType,
    RoomRole, RoomRow, Visibility,
};
pub use share_links::{NewShareLink, ShareLinkRow, SharedMessageRow};
pub use shared_connections::{SharedConnectionRow, SharedModelRow, SharingFields};
pub use transfer::{ImportedMessageRow, ImportedSession};
pub use usage::{TokensUsed, UsageRow};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiConfigRow {
    pub id: ApiConfigId,
    pub user_id: OwnerId,
    pub name: String,
    pub base_url: String,
    pub model: String,
    pub api_key_ciphertext: Option<Vec<u8>>,
    pub api_key_nonce: Option<Vec<u8>>,
    pub api_key_key_version: i64,
    pub api_key_hint: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Computed: the user's first (oldest) config.
    pub is_default: i64,
    /// How many of the caller's chats use it; filled by the service where it is shown.
    #[sqlx(skip)]
    pub session_count: i64,
}

impl ApiConfigRow {
    pub fn sealed_key(&self) -> Option<SealedKey> {
        Some(SealedKey {
            ciphertext: self.api_key_ciphertext.clone()?,
            nonce: self.api_key_nonce.clone()?,
            key_version: self.api_key_key_version,
        })
    }
}

const CONFIG_COLUMNS: &str = "c.id, c.user_id, c.name, c.base_url, c.model, c.api_key_ciphertext, c.api_key_nonce, \
     c.api_key_key_version, c.api_key_hint, c.created_at, c.updated_at, \
     CASE WHEN c.id = (SELECT MIN(f.id) FROM api_configs f WHERE f.user_id = c.user_id) THEN 1 ELSE 0 END AS is_default";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonaRow {
    pub id: PersonaId,
    /// `None`: built in (shared by everyone, read-only).
    pub user_id: Option<OwnerId>,
    pub name: String,
    pub description: String,
    pub system_prompt: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// An emoji or a few characters; "": the name's initial.
    pub avatar: String,
    /// How many of the caller's chats use it; filled by the service where it is shown.
    #[sqlx(skip)]
    pub session_count: i64,
}

const PERSONA_COLUMNS: &str = "id, user_id, name, description, system_prompt, created_at, updated_at, avatar";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: OwnerId,
    pub title: String,
    pub system_prompt: String,
    pub persona_id: Option<PersonaId>,
    pub api_config_id: Option<ApiConfigId>,
    pub model: String,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<i64>,
    pub pinned: i64,
    pub archived: i64,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub updated_at: i64,
    pub last_active_at: i64,
    /// The message the branch being shown ends at (`None`: the most recently shown one).
    pub current_message_id: Option<MessageId>,
    pub folder_id: Option<FolderId>,
}

const SESSION_COLUMNS: &str = "id, user_id, title, system_prompt, persona_id, api_config_id, model, temperature, \
     top_p, max_tokens, pinned, archived, start_time, end_time, updated_at, last_active_at, current_message_id, folder_id";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: MessageId,
    pub session_id: SessionId,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub content: String,
    pub reasoning: String,
    #[sqlx(try_from = "String")]
    pub status: MessageStatus,
    pub model: String,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error: String,
    pub error_code: i64,
    /// The stable reason code of a failure ("" when unknown), see `grpc_status::Reason`.
    pub error_reason: String,
    /// An answer's question.
    pub reply_to_id: Option<MessageId>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The name of the config an answer was written with, as it was then ("" otherwise).
    pub api_config_name: String,
    /// The message this one follows in its chat's tree (`None`: a first message, or a room's).
    pub parent_id: Option<MessageId>,
    /// The chat's persona when an answer was written, as it was then ("" otherwise).
    pub persona_name: String,
    pub persona_avatar: String,
}

const MESSAGE_COLUMNS: &str = "m.id, m.session_id, m.role, m.content, m.reasoning, m.status, m.model, \
     m.prompt_tokens, m.completion_tokens, m.error, CAST(m.error_code AS BIGINT) AS error_code, m.error_reason, m.reply_to_id, \
     m.created_at, m.updated_at, m.api_config_name, m.parent_id, m.persona_name, m.persona_avatar";

/// Who wrote a message, as stored in `chat_messages.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::System => "system",
        }
    }
}

/// Where a message stands, as stored in `chat_messages.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Complete,
    /// Written as a literal (`'streaming'`) in the statements that look for STREAMING rows:
    /// only then can SQLite and PostgreSQL's generic plans use the partial indexes on it.
    Streaming,
    Stopped,
    Failed,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Streaming => "streaming",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// A stored value this version does not know: a newer version wrote it, or the row was edited
/// by hand. Reading the row fails rather than guessing.
#[derive(Debug, thiserror::Error)]
#[error("unknown {column} {value:?} in the chat_messages table")]
pub struct UnknownStoredValue {
    column: &'static str,
    value: String,
}

impl TryFrom<String> for Role {
    type Error = UnknownStoredValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "user" => Ok(Self::User),
            "assistant" => Ok(Self::Assistant),
            "system" => Ok(Self::System),
            _ => Err(UnknownStoredValue { column: "role", value }),
        }
    }
}

impl TryFrom<String> for MessageStatus {
    type Error = UnknownStoredValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "complete" => Ok(Self::Complete),
            "streaming" => Ok(Self::Streaming),
            "stopped" => Ok(Self::Stopped),
            "failed" => Ok(Self::Failed),
            _ => Err(UnknownStoredValue {
                column: "status",
                value,
            }),
        }
    }
}

/// A config's fields as they will be after a create or update (the key separately).
pub struct ConfigFields<'a> {
    pub name: &'a str,
    pub base_url: &'a str,
    pub model: &'a str,
}

// Temperatures are always bound as a number plus a "set" flag: sqlx's Any driver binds a NULL
// DOUBLE as a PostgreSQL float4, and a statement prepared that way then rejects real values.

pub struct NewSession<'a> {
    pub user_id: OwnerId,
    pub title: &'a str,
    pub system_prompt: &'a str,
    pub persona_id: Option<PersonaId>,
    pub api_config_id: Option<ApiConfigId>,
    pub model: &'a str,
    pub params: GenerationParams,
    pub now: i64,
}

/// How a session's answers are sampled; `None`: the provider's default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GenerationParams {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<i64>,
}

/// The editable fields of a session as they will be after an update.
pub struct SessionFields<'a> {
    pub title: &'a str,
    pub system_prompt: &'a str,
    pub persona_id: Option<PersonaId>,
    pub api_config_id: Option<ApiConfigId>,
    pub model: &'a str,
    pub params: GenerationParams,
    pub pinned: bool,
    pub archived: bool,
    pub end_time: Option<i64>,
    pub folder_id: Option<FolderId>,
}

/// Which sessions a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFilter {
    /// Not archived (the date groups).
    Active,
    /// Archived or not.
    All,
    /// Only archived (the archive's own view).
    Archived,
}

/// The user's message and the (empty, streaming) answer row stored before a generation starts.
pub struct NewExchange<'a> {
    pub session_id: SessionId,
    /// The message the question follows: the end of the shown branch, or the parent of the
    /// question it is a new version of (`None`: a first question).
    pub parent_id: Option<MessageId>,
    pub user_content: &'a str,
    pub model: &'a str,
    /// The answering config's name, kept on the answer.
    pub config_name: &'a str,
    /// The chat's persona, whose name and avatar are kept on the answer.
    pub persona: Option<&'a PersonaRow>,
    pub now: i64,
}

/// How much of a streaming answer its row holds, in characters (what SQL's `LENGTH` counts
/// on both backends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SavedText {
    pub content_chars: i64,
    pub reasoning_chars: i64,
}

/// How a generation ended, as written onto its row.
pub struct FinishedAnswer<'a> {
    pub content: &'a str,
    pub reasoning: &'a str,
    pub status: MessageStatus,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error: &'a str,
    pub error_code: i64,
    pub error_reason: &'a str,
    pub now: i64,
}

#[derive(Clone)]
pub struct ChatStore {
    pool: AnyPool,
}

impl ChatStore {
    pub fn new(database: &Database) -> Self {
        Self {
            pool: database.pool.clone(),
        }
    }

    /// Deletes the owner's row `id` with `delete` (binds: id, owner) and, in the same
    /// transaction, clears the sessions' references to it with `clear` (binds: now, id,
    /// owner), so they fall back to the defaults. None when no such row is the owner's; else
    /// how many sessions named it.
    async fn delete_referenced(
        &self,
        delete: &'static str,
        clear: &'static str,
        user_id: OwnerId,
        id: i64,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let cleared = Self::delete_referenced_in(&mut tx, delete, clear, user_id, id, now).await?;
        tx.commit().await?;
        Ok(cleared)
    }

    /// [`ChatStore::delete_referenced`]'s statements, in the caller's transaction.
    async fn delete_referenced_in(
        conn: &mut sqlx::AnyConnection,
        delete: &'static str,
        clear: &'static str,
        user_id: OwnerId,
        id: i64,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let deleted = sqlx::query(delete)
            .bind(id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if deleted != 1 {
            return Ok(None);
        }
        let cleared = sqlx::query(clear)
            .bind(now)
            .bind(id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(Some(cleared))
    }
}
