//! The AI member: the owner picks one of their API configs and, optionally, one of their
//! personas. A message mentioning `@ai` (or `@` and the persona's name) asks it: the question
//! and the AI's empty answer are stored together within the room owner's quotas (the answer is
//! a message of the owner's day), and the answer is written by a generation of the owner's
//! (`generation/`: progress saves, stops through the row from any instance, the final write
//! with retries, token usage recorded with it). Its text reaches every member live
//! (`ai_answer_delta`, relayed from the generation's log) and then whole (`message_completed`).
//! One answer at a time per room, and at most a few a minute (`--room-ai-answers-per-minute`);
//! the member who asked, or the owner and admins, may stop it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event as ChatEvent;
use parley_proto::chat::v1::room_event::Event;
use parley_proto::llm::v1 as llm;
use parley_service_kit::database::now_millis;
use parley_service_kit::trace_context::TraceHeaders;

use super::Rooms;
use crate::Error;
use crate::api_key::ApiKey;
use crate::context_budget;
use crate::convert;
use crate::generation::{Generation, GenerationJob, Reservation, Turn};
use crate::ids::{ApiConfigId, MessageId, OwnerId, PersonaId, RoomId};
use crate::quota::Quota;
use crate::store::{
    ApiConfigRow, AuthorKind, MessageStatus, NewRoomAnswer, NewRoomMessage, PersonaRow, RoomMessageRow, RoomRole,
    RoomRow,
};
use crate::usage::{ModelPrice, UsageMeter};

/// Room messages the AI sees, newest last.
const CONTEXT_MESSAGES: i64 = 20;
/// The window the room's AI answers are counted over.
const AI_RATE_WINDOW: Duration = Duration::from_secs(60);

/// A post that asks the AI member, checked before anything is stored: the room's session is
/// claimed for the answer, the owner's config opened and the persona read.
pub(super) struct AiAsk {
    reservation: Reservation,
    config: ApiConfigRow,
    api_key: ApiKey,
    persona: Option<PersonaRow>,
}

impl Rooms {
    /// Owner only; `config` and `persona` must be the owner's (others' answer NOT_FOUND).
    pub async fn set_room_ai(
        &self,
        me: OwnerId,
        room: RoomId,
        config: Option<ApiConfigId>,
        persona: Option<PersonaId>,
    ) -> Result<pb::Room, Error> {
        let in_room = self.in_room(me, room).await?;
        in_room.require_owner("choose the AI member")?;
        if config.is_none() && persona.is_some() {
            return Err(Error::invalid(
                "persona_id",
                "needs an api_config_id: a room without an AI member has no persona",
            ));
        }
        if let Some(config) = config {
            self.chat.api_config(me, config).await?;
        }
        if let Some(persona) = persona {
            self.store
                .persona(me, persona)
                .await?
                .ok_or(Error::NotFound("persona"))?;
        }
        self.store.set_room_ai(room, config, persona, now_millis()).await?;
        let mut room = self.room_updated(room).await?;
        room.my_role = convert::role(in_room.me.role) as i32;
        Ok(room)
    }

    /// Whether `content` asks the room's AI member. If it does, the room's AI rate is checked
    /// and the answer's slot claimed; a refusal stores nothing.
    pub(super) async fn ai_asked(&self, room: &RoomRow, content: &str) -> Result<Option<AiAsk>, Error> {
        let Some(config_id) = room.ai_api_config_id else {
            return Ok(None);
        };
        if !mentions_ai(content, Some(room.ai_persona_name.as_str())) {
            return Ok(None);
        }
        let since = now_millis() - AI_RATE_WINDOW.as_millis() as i64;
        let limit = self.limits.ai_answers_per_minute;
        if self.store.room_ai_answers_since(room.session_id, since).await? >= limit {
            return Err(Error::RoomAiRate {
                limit,
                retry_after: AI_RATE_WINDOW,
            });
        }
        let config = match self.chat.api_config(room.owner_id, config_id).await {
            Err(Error::NotFound(_)) => {
                return Err(Error::FailedPrecondition(
                    "the room's AI member lost its API config: the owner must choose it again".into(),
                ));
            }
            other => other?,
        };
        let api_key = self.chat.open_key(&config)?;
        let persona = match room.ai_persona_id {
            Some(id) => self.store.persona(room.owner_id, id).await?,
            None => None,
        };
        let reservation = match self.chat.reserve(room.owner_id, room.session_id).await {
            Err(Error::GenerationRunning { .. } | Error::TooManyGenerations { .. }) => return Err(Error::RoomAiBusy),
            other => other?,
        };
        Ok(Some(AiAsk {
            reservation,
            config,
            api_key,
            persona,
        }))
    }

    /// Stores `question` and the AI's empty answer to it in one write within the room owner's
    /// quotas; answers both rows.
    pub(super) async fn store_question_to_ai(
        &self,
        room: &RoomRow,
        question: &NewRoomMessage<'_>,
        ask: &AiAsk,
    ) -> Result<(RoomMessageRow, RoomMessageRow), Error> {
        let mut write = match self
            .chat
            .within_quota(room.owner_id, &[(Quota::MessagesPerDay, 1)])
            .await
        {
            Err(Error::QuotaExceeded(exceeded)) => return Err(Error::RoomOwnerQuota(exceeded)),
            other => other?,
        };
        let answer = NewRoomAnswer {
            model: &ask.config.model,
            config_name: &ask.config.name,
        };
        let (question_id, answer_id) = write.insert_room_exchange(question, &answer).await.map_err(|e| {
            // Another instance's answer is streaming in the room (the one-per-session index).
            if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                Error::RoomAiBusy
            } else {
                Error::Database(e)
            }
        })?;
        write.count_message().await?;
        write.commit().await?;
        let read = |id| async move {
            self.store
                .room_message(room.session_id, id)
                .await?
                .ok_or(Error::NotFound("message"))
        };
        Ok((read(question_id).await?, read(answer_id).await?))
    }

    /// Starts the answer as a generation of the room owner's and relays it to the room in
    /// the background. An answer that cannot start is stored FAILED and announced as ended.
    pub(super) async fn start_answer(self: &Arc<Self>, room: &RoomRow, ask: AiAsk, answer: &RoomMessageRow) {
        let AiAsk {
            reservation,
            config,
            api_key,
            persona,
        } = ask;
        let started = async {
            let messages = self.answer_context(room, persona.as_ref(), answer.id).await?;
            let prompt_estimate = messages
                .iter()
                .map(|m| context_budget::estimate_tokens(&m.content) as i64)
                .sum();
            let row = self
                .store
                .message_by_id(answer.id)
                .await?
                .ok_or(Error::NotFound("message"))?;
            let usage = UsageMeter {
                owner: room.owner_id,
                config_id: config.id,
                shared: false,
                model: config.model.clone(),
                price: ModelPrice::default(),
                currency: String::new(),
                prompt_estimate,
            };
            let request = llm::StreamChatRequest {
                provider: Some(llm::Provider {
                    base_url: config.base_url.clone(),
                    api_key: api_key.into_exposed(),
                    model: config.model.clone(),
                }),
                messages,
                params: None,
            };
            tracing::info!(
                room_id = room.id.0,
                message_id = answer.id.0,
                "the AI member is answering"
            );
            Ok(reservation.start(GenerationJob {
                generation: Generation::new(room.owner_id, convert::message(&row)),
                store: self.store.clone(),
                llm: self.chat.llm.clone(),
                request,
                trace: TraceHeaders::default(),
                settings: self.chat.settings.clone(),
                turn: Turn::NewQuestion { title: None },
                usage,
            }))
        };
        match self.chat.or_fail_answer(answer.id, started.await).await {
            Ok(generation) => {
                let rooms = Arc::clone(self);
                let room_id = room.id;
                tokio::spawn(async move { rooms.relay_answer(room_id, generation).await });
            }
            Err(e) => {
                tracing::warn!(room_id = room.id.0, error = %e, "the AI member could not start answering");
                self.announce_answer_end(room.id, answer.id).await;
            }
        }
    }

    /// The answer's text to every member live, then its end as `message_completed`.
    async fn relay_answer(&self, room: RoomId, generation: Arc<Generation>) {
        let message = generation.message_id;
        let mut events = Arc::clone(&generation).follow();
        while let Some(event) = events.next().await {
            match event {
                ChatEvent::Delta(text) => {
                    let delta = pb::AiAnswerDelta {
                        message_id: message.0,
                        text,
                    };
                    self.publish_live(room, None, false, Event::AiAnswerDelta(delta)).await;
                }
                ChatEvent::Completed(_) | ChatEvent::Error(_) => break,
                _ => {}
            }
        }
        self.announce_answer_end(room, message).await;
    }

    /// Sends the answer as stored (COMPLETE, STOPPED, FAILED) to the room's members.
    async fn announce_answer_end(&self, room: RoomId, message: MessageId) {
        let announced = async {
            let row = self.store.room(room).await?.ok_or(Error::NotFound("room"))?;
            let answer = self
                .store
                .room_message(row.session_id, message)
                .await?
                .ok_or(Error::NotFound("message"))?;
            self.emit(
                room,
                None,
                false,
                Event::MessageCompleted(convert::room_message(&answer, room)),
            )
            .await
        };
        if let Err(e) = announced.await {
            tracing::warn!(room_id = room.0, message_id = message.0, error = %e, "could not announce the end of an AI answer");
        }
    }

    /// The model's messages: the persona's prompt and who the AI is, then the room's latest
    /// messages before the answer, authors named.
    async fn answer_context(
        &self,
        room: &RoomRow,
        persona: Option<&PersonaRow>,
        answer: MessageId,
    ) -> Result<Vec<llm::ChatMessage>, Error> {
        let mut history = self
            .store
            .room_messages(room.session_id, None, CONTEXT_MESSAGES + 1)
            .await?;
        history.retain(|m| m.id < answer && belongs_in_context(m));
        history.reverse();
        let (who, handle) = match persona {
            Some(p) => (p.name.clone(), format!("@ai or @{}", p.name)),
            None => ("the AI member".to_owned(), "@ai".to_owned()),
        };
        let mut system = persona.map(|p| format!("{}\n\n", p.system_prompt)).unwrap_or_default();
        system.push_str(&format!(
            "You are {who}, the AI member of the chat room \"{}\". Messages are shown as \"author: text\". \
             Answer the latest message that mentions you ({handle}), briefly.",
            room.name
        ));
        let mut messages = vec![llm::ChatMessage {
            role: llm::ChatRole::System as i32,
            content: system,
        }];
        messages.extend(history.iter().map(|m| match m.author_kind {
            AuthorKind::Ai => llm::ChatMessage {
                role: llm::ChatRole::Assistant as i32,
                content: m.content.clone(),
            },
            _ => llm::ChatMessage {
                role: llm::ChatRole::User as i32,
                content: format!("{}: {}", author_name(m), m.content),
            },
        }));
        Ok(messages)
    }

    /// StopRoomAnswer: the member who asked, or the owner and admins.
    pub async fn stop_answer(&self, me: OwnerId, room: RoomId, id: MessageId) -> Result<pb::RoomMessage, Error> {
        let in_room = self.in_room(me, room).await?;
        let answer = self.message_in(&in_room, id).await?;
        if answer.author_kind != AuthorKind::Ai {
            return Err(Error::invalid("message_id", "must name an answer of the AI member"));
        }
        let asker = match answer.reply_to_id {
            Some(question) => self
                .store
                .room_message(in_room.room.session_id, question)
                .await?
                .and_then(|q| q.author_id),
            None => None,
        };
        if asker != Some(me) && in_room.me.role == RoomRole::Member {
            return Err(Error::PermissionDenied(
                "only the member who asked, and the room's owner and admins, can stop the AI's answer".into(),
            ));
        }
        self.chat
            .stop_answer(in_room.room.session_id, id, answer.status)
            .await?;
        let stopped = self.message_in(&in_room, id).await?;
        Ok(convert::room_message(&stopped, room))
    }
}

/// What the model is shown: members' messages, and the AI's answers that were completed or
/// stopped; nothing deleted, failed or empty.
fn belongs_in_context(message: &RoomMessageRow) -> bool {
    message.deleted_at.is_none()
        && !message.content.trim().is_empty()
        && matches!(message.status, MessageStatus::Complete | MessageStatus::Stopped)
}

/// `@ai`, or `@` and the persona's name, as a word of its own, in any case.
fn mentions_ai(content: &str, persona_name: Option<&str>) -> bool {
    let lower = content.to_lowercase();
    let handles = std::iter::once("ai".to_owned()).chain(
        persona_name
            .map(|name| name.trim().to_lowercase())
            .filter(|name| !name.is_empty()),
    );
    handles.into_iter().any(|handle| {
        let needle = format!("@{handle}");
        lower.match_indices(&needle).any(|(at, _)| {
            !lower[at + needle.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

/// How an author is shown to the model: the start of their account id (chat-service has no
/// usernames), or "system".
fn author_name(message: &RoomMessageRow) -> String {
    match message.author_kind {
        AuthorKind::System => "system".into(),
        _ => message.author_account.chars().take(8).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::mentions_ai;

    #[test]
    fn ai_is_mentioned_as_a_word() {
        assert!(mentions_ai("@ai what is 2+2?", None));
        assert!(mentions_ai("hey @AI, help", None));
        assert!(mentions_ai("ask @ai", None));
        assert!(!mentions_ai("mail me at x@aim.com", None));
        assert!(!mentions_ai("no mention", None));
    }

    #[test]
    fn the_personas_name_asks_too() {
        assert!(mentions_ai("@Helper what now?", Some("Helper")));
        assert!(mentions_ai("thanks @code reviewer!", Some("Code Reviewer")));
        assert!(mentions_ai("@ai still works", Some("Helper")));
        assert!(!mentions_ai("@Helpers are here", Some("Helper")));
        assert!(!mentions_ai("Helper without the at", Some("Helper")));
        assert!(!mentions_ai("@ alone", Some("")));
    }
}
