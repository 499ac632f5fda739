//! The chat rules: validation, ownership, key sealing, which config answers, what context the
//! model sees, and starting, watching and stopping generations. Handlers call this; it calls
//! the store, the key cipher, llm-service and the generation registry.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::llm::v1 as llm;
use parley_service_kit::database::{is_unique_violation, now_millis};

use crate::Error;
use crate::context_budget;
use crate::convert;
use crate::generation::{
    Generation, GenerationJob, GenerationRegistry, GenerationSettings, Reservation, StopReason, StopTarget, TitleJob,
};
use crate::key_cipher::{KeyCipher, api_key_hint};
use crate::llm_client::{LlmClient, TraceHeaders};
use crate::page_token::{MessageCursor, SessionCursor};
use crate::store::{
    ApiConfigRow, ChatStore, ConfigFields, FinishedAnswer, MessageRow, NewExchange, NewSession, PersonaRow,
    SessionFields, SessionRow, role, status,
};
use crate::validation;

/// How long StopGeneration and DeleteSession wait for a stopped generation to store its end.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How often a client watching a generation that runs in another process re-reads its row.
const REMOTE_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Config fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ConfigChange {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub model: Option<String>,
}

// The key is a secret: never print it, even in debug output.
impl std::fmt::Debug for ProviderTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderTarget::Stored(id) => f.debug_tuple("Stored").field(id).finish(),
            ProviderTarget::Inline { base_url, model, .. } => f
                .debug_struct("Inline")
                .field("base_url", base_url)
                .field("model", model)
                .finish_non_exhaustive(),
        }
    }
}

/// A provider to test or list models of: a stored config, or settings not yet saved.
pub enum ProviderTarget {
    Stored(i64),
    Inline {
        base_url: String,
        api_key: String,
        model: String,
    },
}

#[derive(Debug, Default)]
pub struct PersonaChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub system_prompt: Option<String>,
}

#[derive(Debug, Default)]
pub struct NewSessionInput {
    pub title: Option<String>,
    pub persona_id: Option<i64>,
    pub system_prompt: Option<String>,
    pub api_config_id: Option<i64>,
    pub model: Option<String>,
    pub temperature: Option<f64>,
}

/// Session fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct SessionChange {
    pub title: Option<String>,
    pub system_prompt: Option<String>,
    /// `Some(0)` clears it (the default config answers).
    pub api_config_id: Option<i64>,
    pub model: Option<String>,
    /// `Some(None)` clears it (the provider's default).
    pub temperature: Option<Option<f64>>,
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
    pub ended: Option<bool>,
}

pub struct ChatService {
    store: ChatStore,
    cipher: KeyCipher,
    llm: LlmClient,
    registry: Arc<GenerationRegistry>,
    settings: GenerationSettings,
    /// Other instances may use the same database (PostgreSQL): stops and watches of their
    /// answers go through the rows.
    shared_database: bool,
}

/// A config with its key opened, ready to call the provider with.
struct Provider {
    config: ApiConfigRow,
    api_key: String,
}

impl ChatService {
    pub fn new(
        store: ChatStore,
        cipher: KeyCipher,
        llm: LlmClient,
        registry: Arc<GenerationRegistry>,
        settings: GenerationSettings,
        shared_database: bool,
    ) -> Self {
        Self {
            store,
            cipher,
            llm,
            registry,
            settings,
            shared_database,
        }
    }

    // ---- API configs ----

    pub async fn create_api_config(
        &self,
        user_id: i64,
        name: &str,
        base_url: &str,
        api_key: &str,
        model: &str,
    ) -> Result<ApiConfigRow, Error> {
        let name = name.trim();
        validation::name("name", name)?;
        validation::base_url("base_url", base_url)?;
        validation::api_key("api_key", api_key)?;
        validation::model("model", model, true)?;
        let fields = ConfigFields { name, base_url, model };
        let hint = api_key_hint(api_key);
        let id = self
            .store
            .insert_api_config(
                user_id,
                &fields,
                &hint,
                |id| self.cipher.seal(id, api_key).map_err(Error::from),
                now_millis(),
            )
            .await
            .map_err(name_taken)?;
        tracing::info!(config_id = id, "API config created");
        self.api_config(user_id, id).await
    }

    pub async fn list_api_configs(&self, user_id: i64) -> Result<Vec<ApiConfigRow>, Error> {
        Ok(self.store.api_configs(user_id).await?)
    }

    pub async fn api_config(&self, user_id: i64, id: i64) -> Result<ApiConfigRow, Error> {
        self.store
            .api_config(user_id, id)
            .await?
            .ok_or(Error::NotFound("api config"))
    }

    pub async fn api_config_by_name(&self, user_id: i64, name: &str) -> Result<ApiConfigRow, Error> {
        let name = name.trim();
        validation::name("name", name)?;
        self.store
            .api_config_by_name(user_id, name)
            .await?
            .ok_or(Error::NotFound("api config"))
    }

    pub async fn default_api_config(&self, user_id: i64) -> Result<ApiConfigRow, Error> {
        self.store
            .default_api_config(user_id)
            .await?
            .ok_or(Error::NotFound("api config"))
    }

    pub async fn update_api_config(&self, user_id: i64, id: i64, change: ConfigChange) -> Result<ApiConfigRow, Error> {
        let current = self.api_config(user_id, id).await?;
        let name = change.name.as_deref().map(str::trim).unwrap_or(&current.name);
        let base_url = change.base_url.as_deref().unwrap_or(&current.base_url);
        let model = change.model.as_deref().unwrap_or(&current.model);
        validation::name("name", name)?;
        validation::base_url("base_url", base_url)?;
        if let Some(key) = &change.api_key {
            validation::api_key("api_key", key)?;
        }
        validation::model("model", model, true)?;
        let fields = ConfigFields { name, base_url, model };
        let key = match change.api_key.as_deref() {
            Some(key) => Some((self.cipher.seal(id, key)?, api_key_hint(key))),
            None => None,
        };
        let updated = self
            .store
            .update_api_config(
                user_id,
                id,
                &fields,
                key.as_ref().map(|(sealed, hint)| (sealed.clone(), hint.as_str())),
                now_millis(),
            )
            .await
            .map_err(|e| name_taken(e.into()))?;
        if !updated {
            return Err(Error::NotFound("api config"));
        }
        self.api_config(user_id, id).await
    }

    pub async fn delete_api_config(&self, user_id: i64, id: i64) -> Result<(), Error> {
        if !self.store.delete_api_config(user_id, id, now_millis()).await? {
            return Err(Error::NotFound("api config"));
        }
        Ok(())
    }

    pub async fn test_api_config(
        &self,
        user_id: i64,
        target: ProviderTarget,
        trace: &TraceHeaders,
    ) -> Result<llm::CheckProviderResponse, Error> {
        let provider = self.provider_of(user_id, target, true).await?;
        self.llm.check_provider(provider, trace).await
    }

    pub async fn list_models(
        &self,
        user_id: i64,
        target: ProviderTarget,
        trace: &TraceHeaders,
    ) -> Result<Vec<String>, Error> {
        let provider = self.provider_of(user_id, target, false).await?;
        self.llm.list_models(provider, trace).await
    }

    async fn provider_of(
        &self,
        user_id: i64,
        target: ProviderTarget,
        model_required: bool,
    ) -> Result<llm::Provider, Error> {
        match target {
            ProviderTarget::Stored(id) => {
                let config = self.api_config(user_id, id).await?;
                let api_key = self.open_key(&config)?;
                Ok(llm::Provider {
                    base_url: config.base_url,
                    api_key,
                    model: config.model,
                })
            }
            ProviderTarget::Inline {
                base_url,
                api_key,
                model,
            } => {
                validation::base_url("settings.base_url", &base_url)?;
                validation::api_key("settings.api_key", &api_key)?;
                validation::model("settings.model", &model, model_required)?;
                Ok(llm::Provider {
                    base_url,
                    api_key,
                    model,
                })
            }
        }
    }

    fn open_key(&self, config: &ApiConfigRow) -> Result<String, Error> {
        let sealed = config
            .sealed_key()
            .ok_or(crate::key_cipher::KeyCipherError::Undecryptable {
                row_id: config.id,
                version: config.api_key_key_version,
            })?;
        Ok(self.cipher.open(config.id, &sealed)?)
    }

    // ---- personas ----

    pub async fn list_personas(&self, user_id: i64) -> Result<Vec<PersonaRow>, Error> {
        Ok(self.store.personas(user_id).await?)
    }

    pub async fn create_persona(
        &self,
        user_id: i64,
        name: &str,
        description: &str,
        system_prompt: &str,
    ) -> Result<PersonaRow, Error> {
        let name = name.trim();
        validate_persona(name, description, system_prompt)?;
        let id = self
            .store
            .insert_persona(user_id, name, description, system_prompt, now_millis())
            .await?;
        self.store.persona(user_id, id).await?.ok_or(Error::NotFound("persona"))
    }

    /// The user's own persona; built-ins answer PERMISSION_DENIED, anything else NOT_FOUND.
    async fn own_persona(&self, user_id: i64, id: i64) -> Result<PersonaRow, Error> {
        let persona = self
            .store
            .persona(user_id, id)
            .await?
            .ok_or(Error::NotFound("persona"))?;
        if persona.user_id.is_none() {
            return Err(Error::ReadOnly("built-in personas are read-only"));
        }
        Ok(persona)
    }

    pub async fn update_persona(&self, user_id: i64, id: i64, change: PersonaChange) -> Result<PersonaRow, Error> {
        let current = self.own_persona(user_id, id).await?;
        let name = change.name.as_deref().map(str::trim).unwrap_or(&current.name);
        let description = change.description.as_deref().unwrap_or(&current.description);
        let system_prompt = change.system_prompt.as_deref().unwrap_or(&current.system_prompt);
        validate_persona(name, description, system_prompt)?;
        if !self
            .store
            .update_persona(user_id, id, name, description, system_prompt, now_millis())
            .await?
        {
            return Err(Error::NotFound("persona"));
        }
        self.store.persona(user_id, id).await?.ok_or(Error::NotFound("persona"))
    }

    pub async fn delete_persona(&self, user_id: i64, id: i64) -> Result<(), Error> {
        self.own_persona(user_id, id).await?;
        if !self.store.delete_persona(user_id, id, now_millis()).await? {
            return Err(Error::NotFound("persona"));
        }
        Ok(())
    }

    // ---- sessions ----

    pub async fn create_session(&self, user_id: i64, input: NewSessionInput) -> Result<SessionRow, Error> {
        let title = input.title.as_deref().map(str::trim).unwrap_or("");
        validation::title("title", title)?;
        if let Some(prompt) = &input.system_prompt {
            validation::system_prompt("system_prompt", prompt)?;
        }
        let model = input.model.as_deref().map(str::trim).unwrap_or("");
        validation::model("model", model, false)?;
        if let Some(temperature) = input.temperature {
            validation::temperature("temperature", temperature)?;
        }
        let persona = match input.persona_id {
            Some(id) => Some(
                self.store
                    .persona(user_id, id)
                    .await?
                    .ok_or(Error::NotFound("persona"))?,
            ),
            None => None,
        };
        if let Some(id) = input.api_config_id {
            self.api_config(user_id, id).await?;
        }
        // The persona's prompt is copied: later edits of the persona do not change old chats.
        let system_prompt = match (&input.system_prompt, &persona) {
            (Some(prompt), _) => prompt.as_str(),
            (None, Some(persona)) => persona.system_prompt.as_str(),
            (None, None) => "",
        };
        let id = self
            .store
            .insert_session(&NewSession {
                user_id,
                title,
                system_prompt,
                persona_id: persona.as_ref().map(|p| p.id),
                api_config_id: input.api_config_id,
                model,
                temperature: input.temperature,
                now: now_millis(),
            })
            .await?;
        self.session(user_id, id).await
    }

    pub async fn session(&self, user_id: i64, id: i64) -> Result<SessionRow, Error> {
        self.store.session(user_id, id).await?.ok_or(Error::NotFound("session"))
    }

    /// A page of sessions and the token of the next page (empty on the last).
    pub async fn list_sessions(
        &self,
        user_id: i64,
        page_size: i32,
        page_token: &str,
        include_archived: bool,
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
            .sessions(user_id, include_archived, after, i64::from(size) + 1)
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

    pub async fn update_session(&self, user_id: i64, id: i64, change: SessionChange) -> Result<SessionRow, Error> {
        let current = self.session(user_id, id).await?;
        let title = change.title.as_deref().map(str::trim).unwrap_or(&current.title);
        validation::title("title", title)?;
        let system_prompt = change.system_prompt.as_deref().unwrap_or(&current.system_prompt);
        validation::system_prompt("system_prompt", system_prompt)?;
        let model = change.model.as_deref().map(str::trim).unwrap_or(&current.model);
        validation::model("model", model, false)?;
        let temperature = change.temperature.unwrap_or(current.temperature);
        if let Some(t) = temperature {
            validation::temperature("temperature", t)?;
        }
        let api_config_id = match change.api_config_id {
            None => current.api_config_id,
            Some(0) => None,
            Some(config_id) => {
                self.api_config(user_id, config_id).await?;
                Some(config_id)
            }
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
            api_config_id,
            model,
            temperature,
            pinned: change.pinned.unwrap_or(current.pinned != 0),
            archived: change.archived.unwrap_or(current.archived != 0),
            end_time,
        };
        if !self.store.update_session(user_id, id, &fields, now).await? {
            return Err(Error::NotFound("session"));
        }
        self.session(user_id, id).await
    }

    /// Deletes the session and its messages, stopping its generation first.
    pub async fn delete_session(&self, user_id: i64, id: i64) -> Result<(), Error> {
        self.session(user_id, id).await?;
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
            self.wait_not_streaming(message_id).await?;
        }
        if !self.store.delete_session(user_id, id).await? {
            return Err(Error::NotFound("session"));
        }
        tracing::info!(session_id = id, "session deleted");
        Ok(())
    }

    /// Waits (up to [`STOP_WAIT`]) until another instance has stored the end of an answer.
    async fn wait_not_streaming(&self, message_id: i64) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        while tokio::time::Instant::now() < deadline {
            match self.store.message_by_id(message_id).await? {
                Some(row) if row.status == status::STREAMING => {}
                _ => return Ok(()),
            }
            tokio::time::sleep(REMOTE_POLL_INTERVAL / 5).await;
        }
        tracing::warn!(
            message_id,
            "an answer asked to stop through the database is still streaming"
        );
        Ok(())
    }

    // ---- messages ----

    pub async fn message(&self, user_id: i64, id: i64) -> Result<MessageRow, Error> {
        self.store.message(user_id, id).await?.ok_or(Error::NotFound("message"))
    }

    pub async fn list_messages(
        &self,
        user_id: i64,
        session_id: i64,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<MessageRow>, String), Error> {
        let size = validation::page_size("page_size", page_size)?;
        let after = if page_token.is_empty() {
            None
        } else {
            Some(
                MessageCursor::decode(page_token)
                    .ok_or_else(|| Error::invalid("page_token", "is not a valid page token"))?,
            )
        };
        self.session(user_id, session_id).await?;
        let mut rows = self.store.messages(session_id, after, i64::from(size) + 1).await?;
        let next = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| {
                    MessageCursor {
                        created_at: last.created_at,
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

    pub async fn update_message(&self, user_id: i64, id: i64, content: &str) -> Result<MessageRow, Error> {
        validation::content("content", content)?;
        let row = self.message(user_id, id).await?;
        if row.status == status::STREAMING {
            return Err(still_streaming());
        }
        if !self
            .store
            .update_message_content(user_id, id, content, now_millis())
            .await?
        {
            return Err(still_streaming());
        }
        self.message(user_id, id).await
    }

    pub async fn delete_message(&self, user_id: i64, id: i64) -> Result<(), Error> {
        let row = self.message(user_id, id).await?;
        if row.status == status::STREAMING {
            return Err(still_streaming());
        }
        if !self.store.delete_message(user_id, id).await? {
            return Err(Error::NotFound("message"));
        }
        Ok(())
    }

    /// Stores the user's message and an empty STREAMING answer, then starts the generation
    /// as its own task. Answers the stored message and the generation to follow.
    pub async fn send_message(
        &self,
        user_id: i64,
        session_id: i64,
        content: &str,
        api_config_id: Option<i64>,
        trace: TraceHeaders,
    ) -> Result<(MessageRow, Arc<Generation>), Error> {
        validation::content("content", content)?;
        let session = self.session(user_id, session_id).await?;
        let provider = self.provider_for(user_id, &session, api_config_id).await?;
        let reservation = self.reserve(user_id, session_id).await?;
        let model = model_of(&session, &provider);
        let (question_id, answer_id) = self
            .store
            .insert_exchange(&NewExchange {
                session_id,
                user_content: content,
                model: &model,
                now: now_millis(),
            })
            .await
            .map_err(|e| not_started(e, session_id))?;
        let started = async {
            let question = self.message(user_id, question_id).await?;
            let answer = self.message(user_id, answer_id).await?;
            let title = (self.settings.generate_titles && session.title.is_empty()).then(|| TitleJob {
                question: content.to_owned(),
            });
            let generation = self
                .start(
                    reservation,
                    &session,
                    &provider,
                    &question,
                    &answer,
                    false,
                    title,
                    trace,
                )
                .await?;
            Ok((question, generation))
        };
        self.or_fail_answer(answer_id, started.await).await
    }

    /// When a generation could not start after its row was stored, that row must not stay
    /// STREAMING (it would block the session): it is marked FAILED.
    async fn or_fail_answer<T>(&self, answer_id: i64, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            let failed = FinishedAnswer {
                content: "",
                reasoning: "",
                status: status::FAILED,
                prompt_tokens: None,
                completion_tokens: None,
                error: "the answer could not be started",
                error_code: tonic::Code::Internal as i64,
                now: now_millis(),
            };
            if let Err(e) = self.store.finish_answer(answer_id, &failed, None).await {
                tracing::error!(error = %e, message_id = answer_id, "could not mark an answer that never started");
            }
        }
        result
    }

    /// A new answer to the question `message_id` answered. The old answer stays until the new
    /// one is COMPLETE or STOPPED (what the user chose to keep), which then takes the place of
    /// every other answer to the question. A FAILED one leaves the old answer in place: it is
    /// kept beside it (its error and any text), but never shown to the model.
    pub async fn regenerate(
        &self,
        user_id: i64,
        message_id: i64,
        api_config_id: Option<i64>,
        trace: TraceHeaders,
    ) -> Result<Arc<Generation>, Error> {
        // An answer is answered anew; a question is answered again (its answer may have been
        // deleted, or have failed). Either way the new answer takes the named row's place.
        let old = self.message(user_id, message_id).await?;
        if old.status == status::STREAMING {
            return Err(Error::GenerationRunning {
                session_id: old.session_id,
            });
        }
        let question = match old.role.as_str() {
            role::USER => old.clone(),
            role::ASSISTANT => match old.reply_to_id {
                Some(id) => self.store.message(user_id, id).await?,
                None => None,
            }
            .ok_or_else(|| Error::FailedPrecondition("the question this answer replied to was deleted".to_owned()))?,
            _ => return Err(Error::invalid("message_id", "must name a question or an answer")),
        };
        let session = self.session(user_id, old.session_id).await?;
        let provider = self.provider_for(user_id, &session, api_config_id).await?;
        let reservation = self.reserve(user_id, session.id).await?;
        let model = model_of(&session, &provider);
        let answer_id = self
            .store
            .insert_regenerated_answer(&old, question.id, &model, now_millis())
            .await
            .map_err(|e| not_started(e, session.id))?;
        let started = async {
            let answer = self.message(user_id, answer_id).await?;
            self.start(reservation, &session, &provider, &question, &answer, true, None, trace)
                .await
        };
        self.or_fail_answer(answer_id, started.await).await
    }

    /// Claims the session here, and, when other instances share the database, checks the
    /// answers they are writing too: the session must be free and the user under the limit
    /// everywhere. (Two instances checking at the same moment may both pass; the database's
    /// one-streaming-answer-per-session index still refuses the second answer of a session.)
    async fn reserve(&self, user_id: i64, session_id: i64) -> Result<Reservation, Error> {
        let reservation = self.registry.reserve(user_id, session_id)?;
        if self.shared_database {
            let (in_session, for_user) = self.store.streaming_counts(session_id, user_id).await?;
            if in_session > 0 {
                return Err(Error::GenerationRunning { session_id });
            }
            let limit = self.registry.max_per_user();
            if for_user >= limit as i64 {
                return Err(Error::TooManyGenerations { limit });
            }
        }
        Ok(reservation)
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        reservation: Reservation,
        session: &SessionRow,
        provider: &Provider,
        question: &MessageRow,
        answer: &MessageRow,
        regenerating: bool,
        title: Option<TitleJob>,
        trace: TraceHeaders,
    ) -> Result<Arc<Generation>, Error> {
        let messages = self.context(session, question).await?;
        let request = llm::StreamChatRequest {
            provider: Some(llm::Provider {
                base_url: provider.config.base_url.clone(),
                api_key: provider.api_key.clone(),
                model: answer.model.clone(),
            }),
            messages,
            params: Some(llm::GenerationParams {
                temperature: session.temperature,
                top_p: None,
                max_tokens: None,
            }),
        };
        let generation = Generation::new(session.user_id, convert::message(answer));
        tracing::info!(
            session_id = session.id,
            message_id = answer.id,
            config_id = provider.config.id,
            model = %answer.model,
            regenerate = regenerating,
            "generation starting"
        );
        Ok(reservation.start(GenerationJob {
            generation,
            store: self.store.clone(),
            llm: self.llm.clone(),
            request,
            trace,
            settings: self.settings.clone(),
            regenerates_answer_to: regenerating.then_some(question.id),
            title,
        }))
    }

    /// The config that answers: the one the request names, else the session's, else the
    /// user's default; with its key opened.
    async fn provider_for(
        &self,
        user_id: i64,
        session: &SessionRow,
        requested: Option<i64>,
    ) -> Result<Provider, Error> {
        let config = match requested.or(session.api_config_id) {
            Some(id) => self.api_config(user_id, id).await?,
            None => self.store.default_api_config(user_id).await?.ok_or_else(|| {
                Error::FailedPrecondition("no API config to answer with: create one first".to_owned())
            })?,
        };
        let api_key = self.open_key(&config)?;
        Ok(Provider { config, api_key })
    }

    /// The session's system prompt, then as many of the latest usable messages up to
    /// `question` as fit the budget (the question itself always).
    async fn context(&self, session: &SessionRow, question: &MessageRow) -> Result<Vec<llm::ChatMessage>, Error> {
        let upto = MessageCursor {
            created_at: question.created_at,
            id: question.id,
        };
        let newest_first = self
            .store
            .history(session.id, upto, self.settings.history_limit)
            .await?;
        // At most one answer per question: the newest (a regeneration sits right after the
        // answer it replaces), should a failed or interrupted attempt have left two.
        let mut answered = HashSet::new();
        let mut turns: Vec<&MessageRow> = newest_first
            .iter()
            .filter(|m| m.id == question.id || belongs_in_context(m))
            .filter(|m| m.role != role::ASSISTANT || m.reply_to_id.is_none_or(|q| answered.insert(q)))
            .collect();
        turns.reverse();
        let texts: Vec<&str> = turns.iter().map(|m| m.content.as_str()).collect();
        let range = context_budget::select_recent(&session.system_prompt, &texts, self.settings.context_budget_tokens);
        let mut messages = Vec::with_capacity(range.len() + 1);
        if !session.system_prompt.trim().is_empty() {
            messages.push(llm::ChatMessage {
                role: llm::ChatRole::System as i32,
                content: session.system_prompt.clone(),
            });
        }
        for turn in &turns[range] {
            let role = if turn.role == role::ASSISTANT {
                llm::ChatRole::Assistant
            } else {
                llm::ChatRole::User
            };
            messages.push(llm::ChatMessage {
                role: role as i32,
                content: turn.content.clone(),
            });
        }
        Ok(messages)
    }

    /// The content so far, then live events. A finished answer gives its final message
    /// (COMPLETED), or, FAILED, the text it kept and then its error.
    pub async fn watch(&self, user_id: i64, message_id: i64) -> Result<BoxStream<'static, Event>, Error> {
        let row = self.message(user_id, message_id).await?;
        if row.role != role::ASSISTANT {
            return Err(Error::invalid("message_id", "must name an assistant message"));
        }
        if let Some(generation) = self.registry.by_message(message_id) {
            return Ok(generation.follow());
        }
        if row.status == status::STREAMING {
            return Ok(poll_stored(self.store.clone(), row));
        }
        let mut events = Vec::new();
        if row.status == status::FAILED {
            events.extend(text_events(&row.reasoning, &row.content));
        }
        events.push(final_event(&row));
        Ok(stream::iter(events).boxed())
    }

    /// Stops a running generation and answers the message as stored (STOPPED with the text so
    /// far). Stopping a finished answer changes nothing and answers it as it is.
    pub async fn stop(&self, user_id: i64, message_id: i64) -> Result<MessageRow, Error> {
        let row = self.message(user_id, message_id).await?;
        match self.registry.stop_message(row.session_id, message_id, StopReason::User) {
            StopTarget::Running(generation) => {
                if tokio::time::timeout(STOP_WAIT, generation.finished()).await.is_err() {
                    tracing::warn!(message_id, "a stopped generation did not end in time");
                }
            }
            // Starting here (it stops once registered), or written by another instance, which
            // sees the request through the row with its next write.
            StopTarget::Starting | StopTarget::NotHere => {
                if row.status == status::STREAMING && self.store.request_stop(message_id).await? {
                    self.wait_not_streaming(message_id).await?;
                }
            }
        }
        self.message(user_id, message_id).await
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
            self.cipher.open(id, &sealed)?;
        }
        let mut rotated = 0;
        for (id, sealed) in self.store.keys_not_under(current).await? {
            let plain = self.cipher.open(id, &sealed)?;
            let resealed = self.cipher.seal(id, &plain)?;
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

fn validate_persona(name: &str, description: &str, system_prompt: &str) -> Result<(), Error> {
    validation::name("name", name)?;
    validation::description("description", description)?;
    if system_prompt.trim().is_empty() {
        return Err(Error::invalid("system_prompt", "must not be empty"));
    }
    validation::system_prompt("system_prompt", system_prompt)?;
    Ok(())
}

fn name_taken(error: Error) -> Error {
    match error {
        Error::Database(e) if is_unique_violation(&e) => Error::AlreadyExists {
            field: "name",
            reason: "you already have an API config with this name".to_owned(),
        },
        other => other,
    }
}

/// Why an answer row could not be inserted: the session already has an answer streaming
/// (through another instance: the one-per-session index refused it), or was deleted
/// meanwhile. Nothing was stored either way.
fn not_started(error: sqlx::Error, session_id: i64) -> Error {
    match error.as_database_error() {
        Some(e) if e.is_unique_violation() => Error::GenerationRunning { session_id },
        Some(e) if e.is_foreign_key_violation() => Error::NotFound("session"),
        _ => Error::Database(error),
    }
}

fn still_streaming() -> Error {
    Error::FailedPrecondition("the answer is still being generated; stop it first".to_owned())
}

fn model_of(session: &SessionRow, provider: &Provider) -> String {
    if session.model.is_empty() {
        provider.config.model.clone()
    } else {
        session.model.clone()
    }
}

/// What the model is shown of past messages: everything the user wrote, and answers that
/// were completed or stopped (what the user saw); not failed or empty answers.
fn belongs_in_context(message: &MessageRow) -> bool {
    if message.content.trim().is_empty() {
        return false;
    }
    match message.role.as_str() {
        role::USER => true,
        role::ASSISTANT => matches!(message.status.as_str(), status::COMPLETE | status::STOPPED),
        _ => false,
    }
}

/// Text as events: the reasoning, then the answer, each as one delta (none when empty).
fn text_events(reasoning: &str, content: &str) -> Vec<Event> {
    let mut events = Vec::new();
    if !reasoning.is_empty() {
        events.push(Event::ReasoningDelta(reasoning.to_owned()));
    }
    if !content.is_empty() {
        events.push(Event::Delta(content.to_owned()));
    }
    events
}

/// The terminal event of a finished answer (a FAILED one's text comes before it as deltas).
fn final_event(row: &MessageRow) -> Event {
    if row.status == status::FAILED {
        Event::Error(pb::ChatError {
            code: row.error_code as i32,
            message: row.error.clone(),
        })
    } else {
        Event::Completed(convert::message(row))
    }
}

/// Follows an answer being written by another chat-service instance through its row.
fn poll_stored(store: ChatStore, first: MessageRow) -> BoxStream<'static, Event> {
    let mut opening = vec![Event::AssistantStarted(convert::message(&MessageRow {
        content: String::new(),
        reasoning: String::new(),
        ..first.clone()
    }))];
    opening.extend(text_events(&first.reasoning, &first.content));
    let id = first.id;
    let updates = stream::unfold(Some(first), move |last| {
        let store = store.clone();
        async move {
            let last = last?;
            loop {
                tokio::time::sleep(REMOTE_POLL_INTERVAL).await;
                let row = match store.message_by_id(id).await {
                    Ok(Some(row)) => row,
                    // Its session (or the answer) was deleted: say so rather than just end.
                    Ok(None) => {
                        let deleted = Event::Error(pb::ChatError {
                            code: tonic::Code::NotFound as i32,
                            message: "the answer was deleted".to_owned(),
                        });
                        return Some((stream::iter(vec![deleted]), None));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read a watched answer");
                        continue;
                    }
                };
                let mut events = Vec::new();
                if let Some(more) = row.reasoning.strip_prefix(last.reasoning.as_str())
                    && !more.is_empty()
                {
                    events.push(Event::ReasoningDelta(more.to_owned()));
                }
                if let Some(more) = row.content.strip_prefix(last.content.as_str())
                    && !more.is_empty()
                {
                    events.push(Event::Delta(more.to_owned()));
                }
                if row.status != status::STREAMING {
                    events.push(final_event(&row));
                    return Some((stream::iter(events), None));
                }
                if !events.is_empty() {
                    return Some((stream::iter(events), Some(row)));
                }
            }
        }
    })
    .flatten();
    stream::iter(opening).chain(updates).boxed()
}
