//! Typing indicators: SetTyping hands a `typing` event to the bus (and NATS) for the room's
//! other members' streams. Never stored, so never replayed: a typing mark is only worth
//! anything live. Throttled per member so a client calling on every keystroke costs one
//! event every couple of seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use parley_proto::timestamp::from_unix_millis;
use parley_service_kit::database::now_millis;

use super::Rooms;
use crate::Error;
use crate::ids::{OwnerId, RoomId};

/// How long a typing mark shows without being renewed.
pub const TYPING_SHOWN_FOR: Duration = Duration::from_secs(6);
/// A member's typing is passed on at most once per this long.
pub const TYPING_MIN_GAP: Duration = Duration::from_secs(2);
/// Throttle entries kept before the stale ones are dropped.
const THROTTLE_PRUNE_AT: usize = 10_000;

/// When each member's typing was last passed on, by room (unix millis).
#[derive(Default)]
pub struct TypingThrottle(Mutex<HashMap<(RoomId, OwnerId), i64>>);

impl TypingThrottle {
    /// Whether a typing mark at `now` is passed on (and if so, remembers it).
    fn admit(&self, room: RoomId, member: OwnerId, now: i64) -> bool {
        let gap = TYPING_MIN_GAP.as_millis() as i64;
        let mut last = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.get(&(room, member)).is_some_and(|&at| now - at < gap) {
            return false;
        }
        if last.len() >= THROTTLE_PRUNE_AT {
            last.retain(|_, at| now - *at < gap);
        }
        last.insert((room, member), now);
        true
    }
}

impl Rooms {
    /// Marks the caller as typing in the room; answers until when the mark shows. Members who
    /// may post only (a muted one may not); calls within the throttle gap are accepted and
    /// dropped.
    pub async fn set_typing(&self, me: OwnerId, room: RoomId) -> Result<pb::SetTypingResponse, Error> {
        let in_room = self.in_room(me, room).await?;
        let now = now_millis();
        self.check_not_muted(&in_room, now)?;
        let until = from_unix_millis(now + TYPING_SHOWN_FOR.as_millis() as i64);
        if self.typing.admit(room, me, now) {
            let typing = pb::Typing {
                account_id: in_room.me.account_id.clone(),
                until: Some(until),
            };
            // The typist's own streams leave it out.
            self.publish_live(room, Some(me), false, Event::Typing(typing)).await;
        }
        Ok(pb::SetTypingResponse { until: Some(until) })
    }
}
