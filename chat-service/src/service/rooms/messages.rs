//! What members post: messages with the mute, size and rate rules, edits by the author,
//! deletions by the author or the room's owner and admins, and the newest-first listing.

use std::sync::Arc;
use std::time::Duration;

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_service_kit::database::now_millis;

use super::{InRoom, Rooms};
use crate::Error;
use crate::convert;
use crate::ids::{MessageId, OwnerId, RoomId};
use crate::page_token::MessageCursor;
use crate::store::{AuthorKind, NewRoomMessage, RoomMessageRow, RoomMessageType, RoomRole, RoomRow};
use crate::user_directory::CallerToken;
use crate::validation;

/// The window the per-member message rate is counted over.
const RATE_WINDOW: Duration = Duration::from_secs(60);

impl Rooms {
    /// Refuses a muted member, naming when the mute ends.
    pub(super) fn check_not_muted(&self, in_room: &InRoom, now: i64) -> Result<(), Error> {
        match in_room.me.muted_until {
            Some(until) if until > now => Err(Error::Muted {
                until: (until < super::MUTED_UNTIL_LIFTED).then_some(until),
            }),
            _ => Ok(()),
        }
    }

    fn check_content(&self, content: &str) -> Result<(), Error> {
        if content.trim().is_empty() {
            return Err(Error::invalid("content", "must not be empty"));
        }
        if content.contains('\0') {
            return Err(Error::invalid("content", "must not contain NUL characters"));
        }
        if content.len() > self.limits.max_message_bytes {
            return Err(Error::invalid(
                "content",
                format!("must be at most {} bytes", self.limits.max_message_bytes),
            ));
        }
        Ok(())
    }

    pub(super) async fn message_in(&self, in_room: &InRoom, id: MessageId) -> Result<RoomMessageRow, Error> {
        self.store
            .room_message(in_room.room.session_id, id)
            .await?
            .ok_or(Error::NotFound("message"))
    }

    pub async fn post_message(
        self: &Arc<Self>,
        me: OwnerId,
        room: RoomId,
        content: &str,
        reply_to: Option<MessageId>,
        caller: Option<CallerToken>,
    ) -> Result<pb::RoomMessage, Error> {
        let in_room = self.in_room(me, room).await?;
        let now = now_millis();
        self.check_not_muted(&in_room, now)?;
        self.check_content(content)?;
        if let Some(reply_to) = reply_to
            && self
                .store
                .room_message(in_room.room.session_id, reply_to)
                .await?
                .is_none()
        {
            return Err(Error::invalid("reply_to_id", "no such message in this room"));
        }
        let since = now - RATE_WINDOW.as_millis() as i64;
        let posted = self.store.room_posts_since(in_room.room.session_id, me, since).await?;
        if posted >= self.limits.messages_per_minute {
            return Err(Error::RoomMessageRate {
                limit: self.limits.messages_per_minute,
                retry_after: RATE_WINDOW,
            });
        }
        let new = NewRoomMessage {
            room_id: room,
            session_id: in_room.room.session_id,
            author_id: Some(me),
            author_kind: AuthorKind::User,
            message_type: RoomMessageType::Text,
            content,
            reply_to_id: reply_to,
            now,
        };
        // Asking the AI member is checked (its rate, a free slot, the owner's quotas) before
        // the question is stored: a refusal stores nothing.
        let ask = self.ai_asked(&in_room.room, content).await?;
        let (row, answer) = match &ask {
            None => (self.store.insert_room_message(&new).await?, None),
            Some(ask) => {
                let (question, answer) = self.store_question_to_ai(&in_room.room, &new, ask).await?;
                (question, Some(answer))
            }
        };
        let message = convert::room_message(&row, room);
        self.emit(room, None, false, Event::MessagePosted(message.clone()))
            .await?;
        if let (Some(ask), Some(answer)) = (ask, answer) {
            // Started even if the announcement failed: the answer row must not stay STREAMING.
            let announced = self
                .emit(
                    room,
                    None,
                    false,
                    Event::MessagePosted(convert::room_message(&answer, room)),
                )
                .await;
            self.start_answer(&in_room.room, ask, &answer).await;
            announced?;
        }
        self.notify_mentions(caller, &in_room.room, &row, &in_room.me.account_id);
        Ok(message)
    }

    pub async fn edit_message(
        &self,
        me: OwnerId,
        room: RoomId,
        id: MessageId,
        content: &str,
    ) -> Result<pb::RoomMessage, Error> {
        let in_room = self.in_room(me, room).await?;
        let message = self.message_in(&in_room, id).await?;
        if message.author_id != Some(me) {
            return Err(Error::PermissionDenied("only its author can edit a message".into()));
        }
        if message.deleted_at.is_some() {
            return Err(Error::FailedPrecondition("the message was deleted".into()));
        }
        let now = now_millis();
        self.check_not_muted(&in_room, now)?;
        self.check_content(content)?;
        self.store
            .edit_room_message(in_room.room.session_id, id, content, now)
            .await?;
        let row = self.message_in(&in_room, id).await?;
        let message = convert::room_message(&row, room);
        self.emit(room, None, false, Event::MessageEdited(message.clone()))
            .await?;
        Ok(message)
    }

    pub async fn delete_message(&self, me: OwnerId, room: RoomId, id: MessageId) -> Result<(), Error> {
        let in_room = self.in_room(me, room).await?;
        let message = self.message_in(&in_room, id).await?;
        if message.author_id != Some(me) && in_room.me.role == RoomRole::Member {
            return Err(Error::PermissionDenied(
                "only the owner and admins can delete others' messages".into(),
            ));
        }
        if message.deleted_at.is_some() {
            return Ok(());
        }
        self.store
            .delete_room_message(in_room.room.session_id, id, now_millis())
            .await?;
        let row = self.message_in(&in_room, id).await?;
        self.emit(
            room,
            None,
            false,
            Event::MessageDeleted(convert::room_message(&row, room)),
        )
        .await
    }

    /// Newest first.
    pub async fn list_messages(
        &self,
        me: OwnerId,
        room: RoomId,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<pb::RoomMessage>, String), Error> {
        let limit = validation::page_size("page_size", page_size)?;
        let before = if page_token.is_empty() {
            None
        } else {
            Some(
                MessageCursor::decode(page_token)
                    .ok_or_else(|| Error::invalid("page_token", "not a token from a previous response"))?,
            )
        };
        let in_room = self.in_room(me, room).await?;
        let mut rows = self
            .store
            .room_messages(in_room.room.session_id, before, i64::from(limit) + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = match rows.last() {
            Some(last) if more => MessageCursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode(),
            _ => String::new(),
        };
        Ok((rows.iter().map(|row| convert::room_message(row, room)).collect(), next))
    }

    pub async fn mark_read(&self, me: OwnerId, room: RoomId, message: MessageId) -> Result<pb::Room, Error> {
        let in_room = self.in_room(me, room).await?;
        self.message_in(&in_room, message).await?;
        let moved = self.store.mark_read(room, me, message).await?;
        // Read receipts go to the other members live (small rooms only), once per message at
        // most: the mark only moves forward.
        if moved && self.read_receipts_shown(&in_room.room) {
            let read = pb::MemberRead {
                account_id: in_room.me.account_id.clone(),
                last_read_message_id: message.0,
            };
            self.publish_live(room, None, false, Event::MemberRead(read)).await;
        }
        self.get_room(me, room).await
    }

    /// Who has read a room is shown only for rooms of at most `read_receipts_max_members`.
    pub(super) fn read_receipts_shown(&self, room: &RoomRow) -> bool {
        room.member_count <= self.limits.read_receipts_max_members
    }

    /// ListMessageReaders: the members (not the author) who have read `id`.
    pub async fn message_readers(&self, me: OwnerId, room: RoomId, id: MessageId) -> Result<Vec<String>, Error> {
        let in_room = self.in_room(me, room).await?;
        if !self.read_receipts_shown(&in_room.room) {
            return Err(Error::FailedPrecondition(format!(
                "who has read a message is shown only in rooms of at most {} members",
                self.limits.read_receipts_max_members
            )));
        }
        let message = self.message_in(&in_room, id).await?;
        Ok(self.store.message_readers(room, id, message.author_id).await?)
    }
}
