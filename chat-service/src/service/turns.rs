//! A chat turn, top to bottom: a question (SendMessage) or another answer to one
//! (RegenerateMessage) is checked, the session claimed, the rows stored, the model's context
//! gathered, and the answer handed to its generation job (`generation/job.rs`), which runs on
//! its own. WatchGeneration follows a running or finished answer; StopGeneration ends one.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::llm::v1 as llm;
use parley_service_kit::database::now_millis;
use parley_service_kit::trace_context::TraceHeaders;

use super::quotas::bytes_of;
use super::shared_connections::{SharedTerms, UsableConfig};
use super::{ChatService, STOP_WAIT};
use crate::Error;
use crate::api_key::ApiKey;
use crate::context_budget;
use crate::convert;
use crate::generation::{
    Generation, GenerationJob, GenerationRelay, Reservation, StopReason, StopTarget, TitleJob, Turn, follow_stored,
    wait_not_streaming,
};
use crate::ids::{ApiConfigId, MessageId, OwnerId, SessionId};
use crate::quota::Quota;
use crate::store::{ApiConfigRow, FinishedAnswer, MessageRow, MessageStatus, NewExchange, Role, SessionRow};
use crate::usage::{ModelPrice, UsageMeter};
use crate::validation;

/// A config with its key opened, ready to call the provider with; a shared connection's
/// terms (prices, limits) with it.
struct Provider {
    config: ApiConfigRow,
    api_key: ApiKey,
    shared: Option<SharedTerms>,
}

impl ChatService {
    /// Stores the user's message and an empty STREAMING answer, then starts the generation
    /// as its own task. Answers the stored message and the generation to follow. The question
    /// follows the end of the shown branch or, as a new version of the question `version_of`,
    /// takes its place (a sibling: a new branch from there; the old one stays as it was).
    pub async fn send_message(
        &self,
        user_id: OwnerId,
        session_id: SessionId,
        content: &str,
        api_config_id: Option<ApiConfigId>,
        version_of: Option<MessageId>,
        trace: TraceHeaders,
    ) -> Result<(MessageRow, Arc<Generation>), Error> {
        validation::content("content", content)?;
        let session = self.open_session(user_id, session_id).await?;
        let parent_id = match version_of {
            None => session.current_message_id,
            Some(id) => {
                let earlier = self
                    .store
                    .message(user_id, id)
                    .await?
                    .filter(|m| m.session_id == session_id)
                    .ok_or_else(|| Error::invalid("version_of_id", "is not a message of this chat"))?;
                if earlier.role != Role::User {
                    return Err(Error::invalid("version_of_id", "must name a question (a user message)"));
                }
                earlier.parent_id
            }
        };
        let provider = self.provider_for(user_id, &session, api_config_id).await?;
        self.check_shared_use(user_id, &session, &provider).await?;
        let reservation = self.reserve(user_id, session_id).await?;
        let model = model_of(&session, &provider);
        let persona = self.persona_of(user_id, &session).await?;
        // A question is a message of the day's and text stored; its answer is not counted
        // against the stored bytes up front (it is cut by the answer size limit instead).
        let mut write = self
            .within_quota(
                user_id,
                &[(Quota::MessagesPerDay, 1), (Quota::StoredBytes, bytes_of(content))],
            )
            .await?;
        let (question_id, answer_id) = write
            .insert_exchange(&NewExchange {
                session_id,
                parent_id,
                user_content: content,
                model: &model,
                config_name: &provider.config.name,
                persona: persona.as_ref(),
                now: now_millis(),
            })
            .await
            .map_err(|e| not_started(e, session_id))?;
        write.count_message().await?;
        write.commit().await.map_err(|e| not_started(e, session_id))?;
        let started = async {
            let question = self.message(user_id, question_id).await?;
            let answer = self.message(user_id, answer_id).await?;
            let title = (self.settings.generate_titles && session.title.is_empty()).then(|| TitleJob {
                question: content.to_owned(),
            });
            let turn = Turn::NewQuestion { title };
            let generation = self
                .start(reservation, &session, &provider, &question, &answer, turn, trace)
                .await?;
            Ok((question, generation))
        };
        self.or_fail_answer(answer_id, started.await).await
    }

    /// A new answer to the question `message_id` answered (or to the question `message_id`):
    /// another version beside the answers it has, which all stay, whatever its end. The new
    /// answer ends the shown branch; the model is shown the branch up to its question.
    pub async fn regenerate(
        &self,
        user_id: OwnerId,
        message_id: MessageId,
        api_config_id: Option<ApiConfigId>,
        trace: TraceHeaders,
    ) -> Result<Arc<Generation>, Error> {
        // An answer is answered anew; a question is answered again (its answer may have been
        // deleted, or have failed). Either way the new answer takes the named row's place.
        let old = self.message(user_id, message_id).await?;
        if old.status == MessageStatus::Streaming {
            return Err(Error::GenerationRunning {
                session_id: old.session_id,
            });
        }
        let (question, turn) = match old.role {
            Role::User => (old.clone(), Turn::AnswerQuestion),
            Role::Assistant => {
                let question = match old.reply_to_id {
                    Some(id) => self.store.message(user_id, id).await?,
                    None => None,
                }
                .ok_or_else(|| {
                    Error::FailedPrecondition("the question this answer replied to was deleted".to_owned())
                })?;
                (question, Turn::RegenerateAnswer)
            }
            Role::System => return Err(Error::invalid("message_id", "must name a question or an answer")),
        };
        let session = self.open_session(user_id, old.session_id).await?;
        let provider = self.provider_for(user_id, &session, api_config_id).await?;
        self.check_shared_use(user_id, &session, &provider).await?;
        let reservation = self.reserve(user_id, session.id).await?;
        let model = model_of(&session, &provider);
        let persona = self.persona_of(user_id, &session).await?;
        // A new answer is a message of the day's, refused once the account stores all it may.
        let mut write = self
            .within_quota(user_id, &[(Quota::MessagesPerDay, 1), (Quota::StoredBytes, 1)])
            .await?;
        let answer_id = write
            .insert_regenerated_answer(
                &old,
                question.id,
                &model,
                &provider.config.name,
                persona.as_ref(),
                now_millis(),
            )
            .await
            .map_err(|e| not_started(e, session.id))?;
        write.count_message().await?;
        write.commit().await.map_err(|e| not_started(e, session.id))?;
        let started = async {
            let answer = self.message(user_id, answer_id).await?;
            self.start(reservation, &session, &provider, &question, &answer, turn, trace)
                .await
        };
        self.or_fail_answer(answer_id, started.await).await
    }

    /// The config that answers: the one the request names, else the session's, else the
    /// user's default; with its key opened. A named one may be a shared connection granted to
    /// the user.
    async fn provider_for(
        &self,
        user_id: OwnerId,
        session: &SessionRow,
        requested: Option<ApiConfigId>,
    ) -> Result<Provider, Error> {
        let usable = match requested.or(session.api_config_id) {
            Some(id) => self.usable_config(user_id, id).await?,
            None => UsableConfig {
                config: self
                    .store
                    .default_api_config(user_id)
                    .await?
                    .ok_or(Error::NoApiConfig)?,
                shared: None,
            },
        };
        let api_key = self.open_key(&usable.config)?;
        Ok(Provider {
            config: usable.config,
            api_key,
            shared: usable.shared,
        })
    }

    /// A shared connection answers only with a model it offers, and only while the user is
    /// under its token limits: checked before anything is stored or the provider called.
    async fn check_shared_use(&self, user_id: OwnerId, session: &SessionRow, provider: &Provider) -> Result<(), Error> {
        let Some(terms) = &provider.shared else {
            return Ok(());
        };
        terms.price_of(&model_of(session, provider))?;
        self.check_token_limits(user_id, terms).await
    }

    /// Claims the session here, and, when other instances share the database, checks the
    /// answers they are writing too: the session must be free and the user under the limit
    /// everywhere. (Two instances checking at the same moment may both pass; the database's
    /// one-streaming-answer-per-session index still refuses the second answer of a session.)
    pub(super) async fn reserve(&self, user_id: OwnerId, session_id: SessionId) -> Result<Reservation, Error> {
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

    /// Builds the model's request (the context up to `question`) and hands the answer to its
    /// generation job, which runs as a task of its own from here on.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        reservation: Reservation,
        session: &SessionRow,
        provider: &Provider,
        question: &MessageRow,
        answer: &MessageRow,
        turn: Turn,
        trace: TraceHeaders,
    ) -> Result<Arc<Generation>, Error> {
        let messages = self.context(session, question).await?;
        let prompt_estimate = messages
            .iter()
            .map(|m| context_budget::estimate_tokens(&m.content) as i64)
            .sum();
        let request = llm::StreamChatRequest {
            provider: Some(llm::Provider {
                base_url: provider.config.base_url.clone(),
                api_key: provider.api_key.clone().into_exposed(),
                model: answer.model.clone(),
            }),
            messages,
            params: Some(llm::GenerationParams {
                temperature: session.temperature,
                top_p: session.top_p,
                max_tokens: session.max_tokens.and_then(|n| i32::try_from(n).ok()),
            }),
        };
        let usage = UsageMeter {
            owner: session.user_id,
            config_id: provider.config.id,
            shared: provider.shared.is_some(),
            model: answer.model.clone(),
            price: match &provider.shared {
                Some(terms) => terms.price_of(&answer.model)?,
                None => ModelPrice::default(),
            },
            currency: provider
                .shared
                .as_ref()
                .map(|t| t.row.currency.clone())
                .unwrap_or_default(),
            prompt_estimate,
        };
        let generation = Generation::new(session.user_id, convert::message(answer));
        tracing::info!(
            session_id = session.id.0,
            message_id = answer.id.0,
            config_id = provider.config.id.0,
            model = %answer.model,
            turn = turn.name(),
            "generation starting"
        );
        let generation = reservation.start(GenerationJob {
            generation,
            store: self.store.clone(),
            llm: self.llm.clone(),
            request,
            trace,
            settings: self.settings.clone(),
            turn,
            usage,
        });
        if let Some(relay) = &self.relay {
            relay.publish(Arc::clone(&generation));
        }
        Ok(generation)
    }

    /// Followers and stops of other instances' answers go through NATS (see
    /// `generation/nats_relay.rs`); without it, through the rows.
    pub fn with_generation_relay(mut self, relay: Arc<GenerationRelay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// The session's system prompt, then as many of the latest usable messages of the branch
    /// up to `question` as fit the budget (the question itself always): other versions and
    /// branches are never shown to the model.
    async fn context(&self, session: &SessionRow, question: &MessageRow) -> Result<Vec<llm::ChatMessage>, Error> {
        let newest_first = self
            .store
            .branch_history(question.id, self.settings.history_limit)
            .await?;
        let mut turns: Vec<&MessageRow> = newest_first
            .iter()
            .filter(|m| m.id == question.id || belongs_in_context(m))
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
            let role = if turn.role == Role::Assistant {
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

    /// When a generation could not start after its row was stored, that row must not stay
    /// STREAMING (it would block the session): it is marked FAILED.
    pub(super) async fn or_fail_answer<T>(&self, answer_id: MessageId, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            let failed = FinishedAnswer {
                content: "",
                reasoning: "",
                status: MessageStatus::Failed,
                prompt_tokens: None,
                completion_tokens: None,
                error: "the answer could not be started",
                error_code: tonic::Code::Internal as i64,
                error_reason: "",
                now: now_millis(),
            };
            if let Err(e) = self.store.finish_answer(answer_id, &failed, None).await {
                tracing::error!(error = %e, message_id = answer_id.0, "could not mark an answer that never started");
            }
        }
        result
    }

    /// The content so far, then live events. A finished answer gives its final message
    /// (COMPLETED), or, FAILED, the text it kept and then its error.
    pub async fn watch(&self, user_id: OwnerId, message_id: MessageId) -> Result<BoxStream<'static, Event>, Error> {
        let row = self.message(user_id, message_id).await?;
        if row.role != Role::Assistant {
            return Err(Error::invalid("message_id", "must name an assistant message"));
        }
        if let Some(generation) = self.registry.by_message(message_id) {
            return Ok(generation.follow());
        }
        if row.status == MessageStatus::Streaming {
            return Ok(match &self.relay {
                Some(relay) => relay.follow(self.store.clone(), row).await,
                None => follow_stored(self.store.clone(), row),
            });
        }
        let mut events = Vec::new();
        if row.status == MessageStatus::Failed {
            events.extend(convert::text_events(&row.reasoning, &row.content));
        }
        events.push(convert::final_event(&row));
        Ok(stream::iter(events).boxed())
    }

    /// Stops a running generation and answers the message as stored (STOPPED with the text so
    /// far). Stopping a finished answer changes nothing and answers it as it is.
    pub async fn stop(&self, user_id: OwnerId, message_id: MessageId) -> Result<MessageRow, Error> {
        let row = self.message(user_id, message_id).await?;
        self.stop_answer(row.session_id, message_id, row.status).await?;
        self.message(user_id, message_id).await
    }

    /// Stops the answer `message_id` of `session_id` (whose status was read as `status`)
    /// wherever it is written, and waits a while for its end to be stored. The caller checked
    /// who may stop it.
    pub(super) async fn stop_answer(
        &self,
        session_id: SessionId,
        message_id: MessageId,
        status: MessageStatus,
    ) -> Result<(), Error> {
        match self.registry.stop_message(session_id, message_id, StopReason::User) {
            StopTarget::Running(generation) => {
                if tokio::time::timeout(STOP_WAIT, generation.finished()).await.is_err() {
                    tracing::warn!(message_id = message_id.0, "a stopped generation did not end in time");
                }
            }
            // Starting here (it stops once registered), or written by another instance, which
            // sees the request through the row with its next write.
            StopTarget::Starting | StopTarget::NotHere => {
                if let (MessageStatus::Streaming, Some(relay)) = (status, &self.relay) {
                    relay.ask_stop(message_id).await;
                }
                if status == MessageStatus::Streaming && self.store.request_stop(message_id).await? {
                    wait_not_streaming(&self.store, message_id, STOP_WAIT).await?;
                }
            }
        }
        Ok(())
    }
}

/// Why an answer row could not be inserted: the session already has an answer streaming
/// (through another instance: the one-per-session index refused it), or was deleted
/// meanwhile. Nothing was stored either way.
fn not_started(error: sqlx::Error, session_id: SessionId) -> Error {
    match error.as_database_error() {
        Some(e) if e.is_unique_violation() => Error::GenerationRunning { session_id },
        Some(e) if e.is_foreign_key_violation() => Error::NotFound("session"),
        _ => Error::Database(error),
    }
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
    match message.role {
        Role::User => true,
        Role::Assistant => matches!(message.status, MessageStatus::Complete | MessageStatus::Stopped),
        Role::System => false,
    }
}
