//! Sessions: creating one (from a persona, with a config), listing them a page at a time,
//! editing and deleting them (a running answer is stopped first).

use parley_service_kit::database::now_millis;

use super::quotas::bytes_of;
use super::{ChatService, STOP_WAIT};
use crate::Error;
use crate::generation::{StopReason, StopTarget, wait_not_streaming};
use crate::ids::{ApiConfigId, FolderId, OwnerId, PersonaId, SessionId};
use crate::page_token::SessionCursor;
use crate::quota::Quota;
use crate::store::{ArchiveFilter, GenerationParams, NewSession, SessionFields, SessionRow};
use crate::validation;

#[derive(Debug, Default)]
pub struct NewSessionInput {
    pub title: Option<String>,
    pub persona_id: Option<PersonaId>,
    pub system_prompt: Option<String>,
    pub api_config_id: Option<ApiConfigId>,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<i64>,
}

/// Session fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct SessionChange {
    pub title: Option<String>,
    pub system_prompt: Option<String>,
    /// `Some(None)` clears it (the default config answers).
    pub api_config_id: Option<Option<ApiConfigId>>,
    pub model: Option<String>,
    /// `Some(None)` clears it (the provider's default); so for top-p and max tokens.
    pub temperature: Option<Option<f64>>,
    pub top_p: Option<Option<f64>>,
    pub max_tokens: Option<Option<i64>>,
    /// `Some(None)` clears it. The system prompt changes only with `system_prompt`.
    pub persona_id: Option<Option<PersonaId>>,
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
    pub ended: Option<bool>,
    /// `Some(None)` takes the chat out of its folder.
    pub folder_id: Option<Option<FolderId>>,
}

impl ChatService {
    /// A new session; what the input leaves unset comes from the owner's chat defaults.
    pub async fn create_session(&self, user_id: OwnerId, input: NewSessionInput) -> Result<SessionRow, Error> {
        let title = input.title.as_deref().map(str::trim).unwrap_or("");
        validation::title("title", title)?;
        if let Some(prompt) = &input.system_prompt {
            validation::system_prompt("system_prompt", prompt)?;
        }
        let model = input.model.as_deref().map(str::trim).unwrap_or("");
        validation::model("model", model, false)?;
        let given = GenerationParams {
            temperature: input.temperature,
            top_p: input.top_p,
            max_tokens: input.max_tokens,
        };
        validation::generation_params(&given)?;
        let persona = match input.persona_id {
            Some(id) => Some(
                self.store
                    .persona(user_id, id)
                    .await?
                    .ok_or(Error::NotFound("persona"))?,
            ),
            None => None,
        };
        // An own config, or a shared connection granted to the user.
        if let Some(id) = input.api_config_id {
            self.usable_config(user_id, id).await?;
        }
        let defaults = self.store.chat_defaults(user_id).await?;
        let params = GenerationParams {
            temperature: given.temperature.or(defaults.temperature),
            top_p: given.top_p.or(defaults.top_p),
            max_tokens: given.max_tokens.or(defaults.max_tokens),
        };
        // Neither a persona nor a prompt asked for: the defaults' (a deleted persona is skipped).
        let (persona, default_prompt) = if input.persona_id.is_none() && input.system_prompt.is_none() {
            let persona = match defaults.persona_id {
                Some(id) => self.store.persona(user_id, id).await?,
                None => None,
            };
            (persona, Some(defaults.system_prompt).filter(|p| !p.is_empty()))
        } else {
            (persona, None)
        };
        // The persona's prompt is copied: later edits of the persona do not change old chats.
        let system_prompt = match (input.system_prompt.as_ref().or(default_prompt.as_ref()), &persona) {
            (Some(prompt), _) => prompt.as_str(),
            (None, Some(persona)) => persona.system_prompt.as_str(),
            (None, None) => "",
        };
        let mut write = self
            .within_quota(
                user_id,
                &[(Quota::Sessions, 1), (Quota::StoredBytes, bytes_of(system_prompt))],
            )
            .await?;
        let id = write
            .insert_session(&NewSession {
                user_id,
                title,
                system_prompt,
                persona_id: persona.as_ref().map(|p| p.id),
                api_config_id: input.api_config_id,
                model,
                params,
                now: now_millis(),
            })
            .await?;
        write.commit().await?;
        self.session(user_id, id).await
    }

    /// A page of sessions and the token of the next page (empty on the last).
    pub async fn list_sessions(
        &self,
        user_id: OwnerId,
        page_size: i32,
        page_token: &str,
        archive: ArchiveFilter,
    ) -> Result<(Vec<SessionRow>, String), Error> {
        let size = validation::page_size("page_size", page_size)?;
        let after = if page_token.is_empty() {
            None
        } else {
            Some(
                SessionCursor::decode(page_token)
                    .ok_or_else(|| Error::invalid("page_token", "is not a valid page token"))?,
            )
        };
        let mut rows = self
            .store
            .sessions(user_id, archive, after, i64::from(size) + 1)
            .await?;
        let next = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| {
                    SessionCursor {
                        pinned: last.pinned != 0,
                        last_active_at: last.last_active_at,
                        id: last.id,
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    pub async fn update_session(
        &self,
        user_id: OwnerId,
        id: SessionId,
        change: SessionChange,
    ) -> Result<SessionRow, Error> {
        let current = self.session(user_id, id).await?;
        let title = change.title.as_deref().map(str::trim).unwrap_or(&current.title);
        validation::title("title", title)?;
        let system_prompt = change.system_prompt.as_deref().unwrap_or(&current.system_prompt);
        validation::system_prompt("system_prompt", system_prompt)?;
        let model = change.model.as_deref().map(str::trim).unwrap_or(&current.model);
        validation::model("model", model, false)?;
        let params = GenerationParams {
            temperature: change.temperature.unwrap_or(current.temperature),
            top_p: change.top_p.unwrap_or(current.top_p),
            max_tokens: change.max_tokens.unwrap_or(current.max_tokens),
        };
        validation::generation_params(&params)?;
        let persona_id = match change.persona_id {
            None => current.persona_id,
            Some(None) => None,
            Some(Some(persona_id)) => {
                self.store
                    .persona(user_id, persona_id)
                    .await?
                    .ok_or(Error::NotFound("persona"))?;
                Some(persona_id)
            }
        };
        let api_config_id = match change.api_config_id {
            None => current.api_config_id,
            Some(None) => None,
            Some(Some(config_id)) => {
                self.usable_config(user_id, config_id).await?;
                Some(config_id)
            }
        };
        let folder_id = match change.folder_id {
            None => current.folder_id,
            Some(None) => None,
            Some(Some(folder_id)) => Some(self.folder(user_id, folder_id).await?.id),
        };
        let now = now_millis();
        let end_time = match change.ended {
            None => current.end_time,
            Some(true) => current.end_time.or(Some(now)),
            Some(false) => None,
        };
        let fields = SessionFields {
            title,
            system_prompt,
            persona_id,
            api_config_id,
            model,
            params,
            pinned: change.pinned.unwrap_or(current.pinned != 0),
            archived: change.archived.unwrap_or(current.archived != 0),
            end_time,
            folder_id,
        };
        let grows_by = bytes_of(fields.system_prompt) - bytes_of(&current.system_prompt);
        let mut write = self.within_quota(user_id, &[(Quota::StoredBytes, grows_by)]).await?;
        if !write.update_session(id, &fields, now).await? {
            return Err(Error::NotFound("session"));
        }
        write.commit().await?;
        self.session(user_id, id).await
    }

    /// Deletes the session and its messages, stopping its generation first.
    pub async fn delete_session(&self, user_id: OwnerId, id: SessionId) -> Result<(), Error> {
        self.session(user_id, id).await?;
        self.stop_generations_in(id).await?;
        if !self.store.delete_session(user_id, id).await? {
            return Err(Error::NotFound("session"));
        }
        tracing::info!(session_id = id.0, "session deleted");
        Ok(())
    }

    /// Stops whatever generates in session `id` (here or on another instance) before it is
    /// deleted, and gives it a moment to store its end.
    pub(super) async fn stop_generations_in(&self, id: SessionId) -> Result<(), Error> {
        // A generation starting here right now stops as soon as it starts; its row, once
        // stored, is among the streaming ones waited for below.
        if let StopTarget::Running(generation) = self.registry.stop_session(id, StopReason::SessionDeleted) {
            let _ = tokio::time::timeout(STOP_WAIT, generation.finished()).await;
        }
        // Answers another instance is writing: ask it to stop, and give it a moment to.
        let remote = self.store.streaming_in_session(id).await?;
        for message_id in &remote {
            self.store.request_stop(*message_id).await?;
        }
        for message_id in remote {
            wait_not_streaming(&self.store, message_id, STOP_WAIT).await?;
        }
        Ok(())
    }
}
