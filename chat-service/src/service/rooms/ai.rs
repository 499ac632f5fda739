//! The AI member: the owner picks one of their API configs; a message mentioning `@ai` starts
//! an answer from the recent room messages (authors named), written as an AI message whose
//! text reaches every member live (`ai_answer_delta`) and then whole (`message_completed`).
//! One answer at a time per room; a mention while one is being written is not answered.

use std::sync::Arc;

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_proto::llm::v1 as llm;
use parley_service_kit::database::now_millis;
use parley_service_kit::trace_context::TraceHeaders;

use super::{RoomEnvelope, Rooms};
use crate::Error;
use crate::convert;
use crate::ids::{ApiConfigId, MessageId, OwnerId, RoomId};
use crate::store::{AuthorKind, NewRoomMessage, RoomMessageRow, RoomMessageType, RoomRow};

/// Room messages the AI sees, newest last.
const CONTEXT_MESSAGES: i64 = 20;

impl Rooms {
    /// Owner only; `config` must be one of the owner's (others' answer NOT_FOUND).
    pub async fn set_room_ai(&self, me: OwnerId, room: RoomId, config: Option<ApiConfigId>) -> Result<pb::Room, Error> {
        let in_room = self.in_room(me, room).await?;
        in_room.require_owner("choose the AI member")?;
        if let Some(config) = config {
            self.chat.api_config(me, config).await?;
        }
        self.store.set_room_ai(room, config, now_millis()).await?;
        let mut room = self.room_updated(room).await?;
        room.my_role = convert::role(in_room.me.role) as i32;
        Ok(room)
    }

    /// Starts the AI member's answer when `question` mentions it and no answer is running.
    pub(super) fn answer_if_asked(self: &Arc<Self>, room: &RoomRow, question: &RoomMessageRow) {
        let Some(config) = room.ai_api_config_id else {
            return;
        };
        if !mentions_ai(&question.content) {
            return;
        }
        if !self.answering().insert(room.id) {
            tracing::debug!(room_id = room.id.0, "the AI member is already answering in this room");
            return;
        }
        let rooms = Arc::clone(self);
        let room = room.clone();
        let question_id = question.id;
        tokio::spawn(async move {
            if let Err(e) = rooms.answer(&room, config, question_id).await {
                tracing::warn!(room_id = room.id.0, error = %e, "the AI member could not answer");
            }
            rooms.answering().remove(&room.id);
        });
    }

    fn answering(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<RoomId>> {
        self.ai_answering
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn answer(&self, room: &RoomRow, config: ApiConfigId, question: MessageId) -> Result<(), Error> {
        let config = self.chat.api_config(room.owner_id, config).await?;
        let key = self.chat.open_key(&config)?;
        let mut history = self
            .store
            .room_messages(room.session_id, None, CONTEXT_MESSAGES)
            .await?;
        history.reverse();
        let mut messages = vec![llm::ChatMessage {
            role: llm::ChatRole::System as i32,
            content: format!(
                "You are the AI member of the chat room \"{}\". Messages are shown as \"author: text\". \
                 Answer the latest message that mentions @ai, briefly.",
                room.name
            ),
        }];
        messages.extend(
            history
                .iter()
                .filter(|m| m.deleted_at.is_none())
                .map(|m| match m.author_kind {
                    AuthorKind::Ai => llm::ChatMessage {
                        role: llm::ChatRole::Assistant as i32,
                        content: m.content.clone(),
                    },
                    _ => llm::ChatMessage {
                        role: llm::ChatRole::User as i32,
                        content: format!("{}: {}", author_name(m), m.content),
                    },
                }),
        );
        let row = self
            .store
            .insert_room_message(&NewRoomMessage {
                room_id: room.id,
                session_id: room.session_id,
                author_id: None,
                author_kind: AuthorKind::Ai,
                message_type: RoomMessageType::AiAnswer,
                content: "",
                reply_to_id: Some(question),
                now: now_millis(),
            })
            .await?;
        self.emit(
            room.id,
            None,
            false,
            Event::MessagePosted(convert::room_message(&row, room.id)),
        )
        .await?;
        let request = llm::StreamChatRequest {
            provider: Some(llm::Provider {
                base_url: config.base_url.clone(),
                api_key: key.into_exposed(),
                model: config.model.clone(),
            }),
            messages,
            params: None,
        };
        let text = match self.stream_answer(room.id, row.id, request).await {
            Ok(text) => text,
            Err(status) => format!("(the AI member could not answer: {})", status.message()),
        };
        let text = crate::validation::storable(&text).into_owned();
        self.store
            .finish_room_answer(room.session_id, row.id, &text, now_millis())
            .await?;
        let finished = self
            .store
            .room_message(room.session_id, row.id)
            .await?
            .ok_or(Error::NotFound("message"))?;
        self.emit(
            room.id,
            None,
            false,
            Event::MessageCompleted(convert::room_message(&finished, room.id)),
        )
        .await
    }

    /// The answer's text, each piece handed to the room's streams as it comes.
    async fn stream_answer(
        &self,
        room: RoomId,
        message: MessageId,
        request: llm::StreamChatRequest,
    ) -> Result<String, tonic::Status> {
        let mut stream = self.chat.llm.stream_chat(request, &TraceHeaders::default()).await?;
        let mut text = String::new();
        while let Some(chunk) = stream.message().await? {
            match chunk.chunk {
                Some(llm::stream_chat_response::Chunk::ContentDelta(delta)) => {
                    text.push_str(&delta);
                    let event = pb::RoomEvent {
                        id: 0,
                        room_id: room.0,
                        occurred_at: Some(parley_proto::timestamp::from_unix_millis(now_millis())),
                        event: Some(Event::AiAnswerDelta(pb::AiAnswerDelta {
                            message_id: message.0,
                            text: delta,
                        })),
                    };
                    self.bus
                        .publish(RoomEnvelope {
                            event,
                            subject: None,
                            subject_only: false,
                        })
                        .await;
                }
                Some(llm::stream_chat_response::Chunk::Finish(_)) => break,
                _ => {}
            }
        }
        Ok(text)
    }
}

/// `@ai` as a word of its own, in any case.
fn mentions_ai(content: &str) -> bool {
    let lower = content.to_lowercase();
    lower.match_indices("@ai").any(|(at, _)| {
        !lower[at + 3..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
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
        assert!(mentions_ai("@ai what is 2+2?"));
        assert!(mentions_ai("hey @AI, help"));
        assert!(mentions_ai("ask @ai"));
        assert!(!mentions_ai("mail me at x@aim.com"));
        assert!(!mentions_ai("no mention"));
    }
}
