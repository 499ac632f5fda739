//! WatchRoomEvents: one stream per user with the events of all their rooms. It reads what the
//! caller missed from `room_events`, then follows the bus; a stream that falls behind the bus
//! reads the gap from the database again, so nothing is missed and nothing doubled. A stream
//! resuming from before the oldest stored event (events are kept `--room-events-kept-days`)
//! cannot be given everything: it gets `reload_required` first and goes on from now.
//!
//! Which rooms a stream carries follows its own events: the caller's joining adds a room;
//! leaving, being kicked or banned (the event that says so is the last one sent), or the
//! room's deletion takes it away at once.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use futures::stream::BoxStream;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::room_event::Event;
use prost::Message as _;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::Rooms;
use crate::Error;
use crate::ids::{OwnerId, RoomEventId, RoomId};
use crate::room_bus::RoomEnvelope;
use crate::store::RoomEventRow;

/// Events read from the database per query while catching up.
const REPLAY_BATCH: i64 = 500;
/// Live event ids remembered to drop doubles (ids come in order, but two instances' commits
/// may interleave).
const SEEN_CAPACITY: usize = 4096;

/// Where one stream stands.
struct Follower {
    me: OwnerId,
    rooms: HashSet<RoomId>,
    /// Everything up to here was sent (the database's order).
    cursor: RoomEventId,
    /// Ids above `cursor` already sent live.
    seen: BTreeSet<RoomEventId>,
    sink: mpsc::Sender<Result<pb::RoomEvent, tonic::Status>>,
}

impl Rooms {
    /// Events after `after` (None: only new ones), then live, until the client goes away.
    pub async fn watch(
        self: &Arc<Self>,
        me: OwnerId,
        after: Option<RoomEventId>,
    ) -> Result<BoxStream<'static, Result<pb::RoomEvent, tonic::Status>>, Error> {
        if after.is_some_and(|id| id.0 < 0) {
            return Err(Error::invalid("after_event_id", "must not be negative"));
        }
        // Subscribed before reading, so nothing stored meanwhile is missed.
        let live = self.bus.subscribe();
        let mut reload = None;
        let cursor = match after {
            Some(id) if self.missed_deleted_events(id).await? => {
                // Too far behind: go on from now, after telling the client to reload.
                let now = self.last_event_id().await?;
                reload = Some(now);
                now
            }
            Some(id) => id,
            None => self.last_event_id().await?,
        };
        let rooms = self.store.room_ids_of(me).await?.into_iter().collect();
        let (sink, receiver) = mpsc::channel(64);
        let mut follower = Follower {
            me,
            rooms,
            cursor,
            seen: BTreeSet::new(),
            sink,
        };
        let rooms_service = Arc::clone(self);
        tokio::spawn(async move {
            if let Some(cursor) = reload {
                let event = pb::RoomEvent {
                    id: cursor.0,
                    room_id: 0,
                    occurred_at: Some(parley_proto::timestamp::from_unix_millis(
                        parley_service_kit::database::now_millis(),
                    )),
                    event: Some(Event::ReloadRequired(pb::ReloadRequired {})),
                };
                if follower.sink.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if let Err(e) = rooms_service.follow(&mut follower, live).await {
                let _ = follower.sink.send(Err(e.into())).await;
            }
        });
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }

    /// Whether events after `after` were deleted (older than the events' retention, or a
    /// room's): the oldest stored event is not the one right after it. A stream from 0 asks
    /// for new events only.
    async fn missed_deleted_events(&self, after: RoomEventId) -> Result<bool, Error> {
        if after.0 == 0 {
            return Ok(false);
        }
        Ok(match self.store.first_room_event_id().await? {
            Some(oldest) => after.0 < oldest.0 - 1,
            // Nothing is stored: every event up to the newest issued was deleted.
            None => true,
        })
    }

    async fn follow(
        &self,
        follower: &mut Follower,
        mut live: broadcast::Receiver<Arc<RoomEnvelope>>,
    ) -> Result<(), Error> {
        if !self.replay(follower).await? {
            return Ok(());
        }
        loop {
            let envelope = tokio::select! {
                _ = follower.sink.closed() => return Ok(()),
                received = live.recv() => received,
            };
            match envelope {
                Ok(envelope) => {
                    if !follower.send_live(&envelope).await {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "room event stream fell behind; reading from the database");
                    follower.rooms = self.store.room_ids_of(follower.me).await?.into_iter().collect();
                    if !self.replay(follower).await? {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }

    /// Sends the stored events after the cursor; false once the client went away.
    async fn replay(&self, follower: &mut Follower) -> Result<bool, Error> {
        loop {
            let rows = self
                .store
                .room_events_after(follower.me, follower.cursor, REPLAY_BATCH)
                .await?;
            let full = rows.len() as i64 == REPLAY_BATCH;
            for row in rows {
                let Some(envelope) = stored_envelope(row) else {
                    continue;
                };
                if !follower.send(&envelope).await {
                    return Ok(false);
                }
            }
            if !full {
                return Ok(true);
            }
        }
    }
}

impl Follower {
    fn may_see(&self, envelope: &RoomEnvelope) -> bool {
        let about_me = envelope.subject == Some(self.me);
        if envelope.subject_only {
            about_me
        } else {
            about_me || self.rooms.contains(&envelope.room_id())
        }
    }

    /// Sends a live event unless it was sent already or is not the caller's to see.
    async fn send_live(&mut self, envelope: &RoomEnvelope) -> bool {
        let id = envelope.id();
        // Never stored (an AI answer's deltas, typing): no place in the order, only who may
        // see it. Typists are not told they type.
        if id.0 == 0 {
            let own_typing =
                matches!(envelope.event.event, Some(Event::Typing(_))) && envelope.subject == Some(self.me);
            return own_typing || !self.may_see(envelope) || self.deliver(envelope).await;
        }
        if id <= self.cursor || self.seen.contains(&id) {
            return true;
        }
        self.seen.insert(id);
        if self.seen.len() > SEEN_CAPACITY
            && let Some(oldest) = self.seen.pop_first()
        {
            self.cursor = self.cursor.max(oldest);
        }
        if !self.may_see(envelope) {
            self.track_rooms(envelope);
            return true;
        }
        self.deliver(envelope).await
    }

    /// Sends a stored event (in id order) and moves the cursor past it.
    async fn send(&mut self, envelope: &RoomEnvelope) -> bool {
        self.cursor = self.cursor.max(envelope.id());
        if self.seen.contains(&envelope.id()) || !self.may_see(envelope) {
            return true;
        }
        self.deliver(envelope).await
    }

    async fn deliver(&mut self, envelope: &RoomEnvelope) -> bool {
        self.track_rooms(envelope);
        self.sink.send(Ok(envelope.event.clone())).await.is_ok()
    }

    /// The caller's own joins and removals change which rooms this stream carries.
    fn track_rooms(&mut self, envelope: &RoomEnvelope) {
        let room = envelope.room_id();
        match &envelope.event.event {
            Some(Event::MemberJoined(_)) if envelope.subject == Some(self.me) => {
                self.rooms.insert(room);
            }
            Some(Event::MemberLeft(_) | Event::MemberRemoved(_)) if envelope.subject == Some(self.me) => {
                self.rooms.remove(&room);
            }
            Some(Event::RoomDeleted(_)) => {
                self.rooms.remove(&room);
            }
            _ => {}
        }
    }
}

fn stored_envelope(row: RoomEventRow) -> Option<RoomEnvelope> {
    let mut event = match pb::RoomEvent::decode(row.payload.as_slice()) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(event_id = row.id.0, error = %e, "undecodable stored room event skipped");
            return None;
        }
    };
    event.id = row.id.0;
    Some(RoomEnvelope {
        event,
        subject: row.subject_id,
        subject_only: row.subject_only != 0,
    })
}
