//! Export and import: a chat as a file (Parley JSON or Markdown), everything an account keeps
//! as a stream of files, and new chats from a file — all of them or none (one transaction,
//! within the account's session and stored-bytes quotas).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use parley_service_kit::database::now_millis;
use serde_json::json;

use super::ChatService;
use super::quotas::bytes_of;
use crate::Error;
use crate::ids::{OwnerId, SessionId};
use crate::message_tree::MessageTree;
use crate::quota::Quota;
use crate::store::{ArchiveFilter, ImportedMessageRow, ImportedSession, SessionRow};
use crate::transfer::{self, ImportFormat, file_slug, markdown, parley_json, rfc3339};

/// The largest file ImportSessions takes unless configured (`--max-import-bytes`).
pub const DEFAULT_MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;

/// A file to hand to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    pub name: String,
    pub media_type: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Markdown,
}

const JSON: &str = "application/json";
const MARKDOWN: &str = "text/markdown";

impl ChatService {
    /// Sets the largest file an import takes, in bytes.
    pub fn with_max_import_bytes(mut self, max: usize) -> Self {
        self.max_import_bytes = max;
        self
    }

    /// One of the owner's chats as a file.
    pub async fn export_session(
        &self,
        owner: OwnerId,
        id: SessionId,
        format: ExportFormat,
    ) -> Result<ExportedFile, Error> {
        let session = self.session(owner, id).await?;
        self.session_file(owner, &session, format, "").await
    }

    async fn session_file(
        &self,
        owner: OwnerId,
        session: &SessionRow,
        format: ExportFormat,
        folder: &str,
    ) -> Result<ExportedFile, Error> {
        let persona_name = match session.persona_id {
            Some(id) => self.store.persona(owner, id).await?.map(|p| p.name),
            None => None,
        };
        let now = now_millis();
        let base = format!("{folder}{}-{}", session.id.0, file_slug(&session.title));
        Ok(match format {
            ExportFormat::Json => {
                let config_name = match session.api_config_id {
                    Some(id) => self.store.api_config(owner, id).await?.map(|c| c.name),
                    None => None,
                };
                // Every version and branch, each message with its parent.
                let messages = self.store.all_messages(session.id).await?;
                let tree = MessageTree::new(self.store.message_tree(session.id).await?);
                let current = tree.branch(session.current_message_id).last().copied();
                let chat = parley_json::chat_json(
                    session,
                    persona_name.as_deref(),
                    config_name.as_deref(),
                    &messages,
                    current,
                );
                ExportedFile {
                    name: format!("{base}.json"),
                    media_type: JSON,
                    content: parley_json::chat_file(chat, now)?,
                }
            }
            // A document reads as one conversation: the shown branch.
            ExportFormat::Markdown => ExportedFile {
                name: format!("{base}.md"),
                media_type: MARKDOWN,
                content: markdown::chat_markdown(
                    session,
                    persona_name.as_deref(),
                    &self.shown_branch(session).await?,
                    now,
                ),
            },
        })
    }

    /// Everything the owner keeps, one file at a time: settings.json, personas.json,
    /// api_configs.json (no keys, no key hints), prompts.json, then each chat as chats/<id>-<title>.json.
    /// Chats are read as the stream reaches them, so the whole export is never in memory.
    pub async fn export_account_data(
        self: Arc<Self>,
        owner: OwnerId,
    ) -> Result<BoxStream<'static, Result<ExportedFile, Error>>, Error> {
        let now = now_millis();
        let configs = self.store.api_configs(owner).await?;
        let personas: Vec<_> = self
            .store
            .personas(owner)
            .await?
            .into_iter()
            .filter(|p| p.user_id == Some(owner))
            .collect();
        let mut sessions = Vec::new();
        let mut page_token = String::new();
        loop {
            let (rows, next) = self.list_sessions(owner, 100, &page_token, ArchiveFilter::All).await?;
            sessions.extend(rows);
            if next.is_empty() {
                break;
            }
            page_token = next;
        }
        let settings = json!({
            "format": "parley.settings",
            "version": 1,
            "exported_at": rfc3339(now),
            "default_api_config": configs.iter().find(|c| c.is_default != 0).map(|c| c.name.clone()),
        });
        let personas = json!({
            "format": "parley.personas",
            "version": 1,
            "personas": personas.iter().map(|p| json!({
                "name": p.name,
                "description": p.description,
                "system_prompt": p.system_prompt,
                "avatar": p.avatar,
                "created_at": rfc3339(p.created_at),
                "updated_at": rfc3339(p.updated_at),
            })).collect::<Vec<_>>(),
        });
        // Keys never leave chat-service, not even their hint.
        let configs = json!({
            "format": "parley.api_configs",
            "version": 1,
            "api_configs": configs.iter().map(|c| json!({
                "name": c.name,
                "base_url": c.base_url,
                "model": c.model,
                "is_default": c.is_default != 0,
                "created_at": rfc3339(c.created_at),
                "updated_at": rfc3339(c.updated_at),
            })).collect::<Vec<_>>(),
        });
        let prompts = json!({
            "format": "parley.prompts",
            "version": 1,
            "prompts": self.store.prompts(owner).await?.iter().map(|p| json!({
                "title": p.title,
                "command": p.command,
                "body": p.body,
                "created_at": rfc3339(p.created_at),
                "updated_at": rfc3339(p.updated_at),
            })).collect::<Vec<_>>(),
        });
        let mut head = Vec::new();
        for (name, value) in [
            ("settings.json", settings),
            ("personas.json", personas),
            ("api_configs.json", configs),
            ("prompts.json", prompts),
        ] {
            head.push(Ok(ExportedFile {
                name: name.to_owned(),
                media_type: JSON,
                content: serde_json::to_string_pretty(&value)?,
            }));
        }
        let chats = futures::stream::iter(sessions).then(move |session| {
            let chat = Arc::clone(&self);
            async move { chat.session_file(owner, &session, ExportFormat::Json, "chats/").await }
        });
        Ok(futures::stream::iter(head).chain(chats).boxed())
    }

    /// New chats from a Parley or ChatGPT export, all or none.
    pub async fn import_sessions(
        &self,
        owner: OwnerId,
        content: &[u8],
        format: Option<ImportFormat>,
    ) -> Result<Vec<SessionRow>, Error> {
        if content.is_empty() {
            return Err(transfer::invalid("is empty: choose an exported file"));
        }
        if content.len() > self.max_import_bytes {
            return Err(transfer::invalid(format!(
                "is {} bytes; files of at most {} bytes are imported (chat-service --max-import-bytes)",
                content.len(),
                self.max_import_bytes
            )));
        }
        let now = now_millis();
        let chats = transfer::read_chats(content, format, now)?;
        let personas: HashMap<String, _> = self
            .store
            .personas(owner)
            .await?
            .into_iter()
            // The user's own persona wins over a built-in one of the same name.
            .map(|p| (p.name, p.id))
            .collect();
        let bytes: i64 = chats
            .iter()
            .map(|chat| {
                bytes_of(&chat.system_prompt)
                    + chat
                        .messages
                        .iter()
                        .map(|m| bytes_of(&m.content) + bytes_of(&m.reasoning))
                        .sum::<i64>()
            })
            .sum();
        let mut write = self
            .within_quota(
                owner,
                &[(Quota::Sessions, chats.len() as i64), (Quota::StoredBytes, bytes)],
            )
            .await?;
        let mut ids = Vec::with_capacity(chats.len());
        for chat in &chats {
            let last_active_at = chat
                .messages
                .iter()
                .map(|m| m.created_at)
                .max()
                .unwrap_or(chat.start_time)
                .max(chat.start_time);
            let session_id = write
                .insert_imported_session(&ImportedSession {
                    title: chat.title.trim(),
                    system_prompt: &chat.system_prompt,
                    persona_id: chat.persona_name.as_ref().and_then(|name| personas.get(name).copied()),
                    model: chat.model.trim(),
                    temperature: chat.temperature,
                    top_p: chat.top_p,
                    max_tokens: chat.max_tokens,
                    pinned: chat.pinned,
                    archived: chat.archived,
                    start_time: chat.start_time,
                    end_time: chat.end_time,
                    last_active_at,
                    now,
                })
                .await?;
            let mut message_ids = Vec::with_capacity(chat.messages.len());
            for message in &chat.messages {
                let id = write
                    .insert_imported_message(&ImportedMessageRow {
                        session_id,
                        role: message.role,
                        content: &message.content,
                        reasoning: &message.reasoning,
                        status: message.status,
                        model: &message.model,
                        prompt_tokens: message.prompt_tokens,
                        completion_tokens: message.completion_tokens,
                        error: &message.error,
                        error_code: message.error_code,
                        error_reason: &message.error_reason,
                        // Checked by read_chats: an earlier message, already stored.
                        reply_to_id: message.reply_to.and_then(|i| message_ids.get(i).copied()),
                        parent_id: message.parent.and_then(|i| message_ids.get(i).copied()),
                        api_config_name: &message.api_config_name,
                        created_at: message.created_at,
                        updated_at: message.updated_at,
                    })
                    .await?;
                message_ids.push(id);
            }
            // Where the file's shown branch ended (else the last message's branch).
            let current = match chat.current {
                Some(i) => message_ids.get(i).copied(),
                None => message_ids.last().copied(),
            };
            if let Some(current) = current {
                write.set_shown_branch_end(session_id, current).await?;
            }
            ids.push(session_id);
        }
        write.commit().await?;
        tracing::info!(sessions = ids.len(), bytes, "chats imported");
        let mut sessions = Vec::with_capacity(ids.len());
        for id in ids {
            sessions.push(self.session(owner, id).await?);
        }
        Ok(sessions)
    }
}
