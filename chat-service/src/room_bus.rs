//! The room event bus: every stored room event is published here, and every open
//! WatchRoomEvents stream of this instance hears it. With NATS (`--nats-url`) events also go
//! out on a NATS subject and come in from the other instances sharing the database; without
//! it (the all-in-one, a SQLite file) the bus is in-process only.
//!
//! The bus only carries events live: they are stored first (`room_events`), so a stream that
//! falls behind, or reconnects, reads what it missed from the database.

use std::sync::Arc;

use futures::StreamExt;
use parley_proto::chat::v1 as pb;
use prost::Message as _;
use tokio::sync::broadcast;

use crate::Error;
use crate::ids::{OwnerId, RoomEventId, RoomId};

/// Events a slow stream may be behind before it reads the rest from the database.
const LIVE_BACKLOG: usize = 4096;
/// The NATS subject room events travel on, under the deployment's `--nats-subject-prefix`
/// (two deployments sharing a NATS server must never hear each other's rooms).
pub fn nats_subject(prefix: &str) -> String {
    format!("{prefix}.chat.rooms.events")
}
const INSTANCE_HEADER: &str = "Parley-Instance";
const SUBJECT_HEADER: &str = "Parley-Subject";
const SUBJECT_ONLY_HEADER: &str = "Parley-Subject-Only";

/// A stored room event and who may see it.
#[derive(Debug, Clone)]
pub struct RoomEnvelope {
    pub event: pb::RoomEvent,
    /// The member it is about (joined, left, removed, invited).
    pub subject: Option<OwnerId>,
    /// Only the subject sees it.
    pub subject_only: bool,
}

impl RoomEnvelope {
    pub fn id(&self) -> RoomEventId {
        RoomEventId(self.event.id)
    }

    pub fn room_id(&self) -> RoomId {
        RoomId(self.event.room_id)
    }
}

pub struct RoomBus {
    local: broadcast::Sender<Arc<RoomEnvelope>>,
    nats: Option<async_nats::Client>,
    /// `<prefix>.chat.rooms.events`.
    subject: String,
    /// Tells this instance's own events apart when NATS hands them back.
    instance: String,
}

impl RoomBus {
    /// An in-process bus.
    pub fn local() -> Arc<Self> {
        Arc::new(Self {
            local: broadcast::channel(LIVE_BACKLOG).0,
            nats: None,
            subject: String::new(),
            instance: instance_id(),
        })
    }

    /// A bus that also publishes to and hears from the other instances through NATS at `url`,
    /// on the subject under `prefix`. Answers the bus and the task forwarding what NATS brings
    /// (abort it on shutdown).
    pub async fn with_nats(url: &str, prefix: &str) -> Result<(Arc<Self>, tokio::task::JoinHandle<()>), Error> {
        let subject = nats_subject(prefix);
        let client = async_nats::connect(url)
            .await
            .map_err(|e| Error::Config(format!("NATS at {url}: {e}")))?;
        let mut subscription = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| Error::Config(format!("NATS subscribe to {subject}: {e}")))?;
        let bus = Arc::new(Self {
            local: broadcast::channel(LIVE_BACKLOG).0,
            nats: Some(client),
            subject,
            instance: instance_id(),
        });
        let forwarder = tokio::spawn({
            let bus = Arc::clone(&bus);
            async move {
                while let Some(message) = subscription.next().await {
                    let headers = message.headers.as_ref();
                    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str().to_owned());
                    if header(INSTANCE_HEADER).as_deref() == Some(bus.instance.as_str()) {
                        continue;
                    }
                    let event = match pb::RoomEvent::decode(message.payload.as_ref()) {
                        Ok(event) => event,
                        Err(e) => {
                            tracing::warn!(error = %e, "undecodable room event from NATS dropped");
                            continue;
                        }
                    };
                    let subject = header(SUBJECT_HEADER).and_then(|s| s.parse().ok()).map(OwnerId);
                    let subject_only = header(SUBJECT_ONLY_HEADER).as_deref() == Some("1");
                    let _ = bus.local.send(Arc::new(RoomEnvelope {
                        event,
                        subject,
                        subject_only,
                    }));
                }
                tracing::warn!("NATS subscription for room events ended");
            }
        });
        Ok((bus, forwarder))
    }

    /// The NATS connection, for what else travels between instances (generations).
    pub fn nats_client(&self) -> Option<async_nats::Client> {
        self.nats.clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RoomEnvelope>> {
        self.local.subscribe()
    }

    /// Hands a stored event to this instance's streams and, with NATS, to the others'. A
    /// failed NATS publish is logged: the event is stored, and the others' streams read it
    /// when they resume.
    pub async fn publish(&self, envelope: RoomEnvelope) {
        let bytes = envelope.event.encode_to_vec();
        let subject = envelope.subject;
        let subject_only = envelope.subject_only;
        let _ = self.local.send(Arc::new(envelope));
        if let Some(nats) = &self.nats {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(INSTANCE_HEADER, self.instance.as_str());
            if let Some(subject) = subject {
                headers.insert(SUBJECT_HEADER, subject.0.to_string().as_str());
            }
            headers.insert(SUBJECT_ONLY_HEADER, if subject_only { "1" } else { "0" });
            if let Err(e) = nats
                .publish_with_headers(self.subject.clone(), headers, bytes.into())
                .await
            {
                tracing::warn!(error = %e, "could not publish a room event to NATS");
            }
        }
    }
}

fn instance_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Duration;

    use super::*;

    fn posted(room: i64, id: i64) -> RoomEnvelope {
        RoomEnvelope {
            event: pb::RoomEvent {
                id,
                room_id: room,
                ..Default::default()
            },
            subject: None,
            subject_only: false,
        }
    }

    /// Two deployments sharing a NATS server (room ids overlap: each has its room 1) must
    /// never hear each other's rooms; instances of one deployment must.
    #[tokio::test]
    async fn deployments_on_one_nats_server_hear_only_their_own_rooms() {
        let Ok(url) = std::env::var("PARLEY_TEST_NATS_URL") else {
            eprintln!("skipped: PARLEY_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)");
            return;
        };
        let prefix = format!("test{}", rand::random::<u32>());
        let (first, first_task) = RoomBus::with_nats(&url, &format!("{prefix}a")).await.unwrap();
        let (second, second_task) = RoomBus::with_nats(&url, &format!("{prefix}a")).await.unwrap();
        let (other, other_task) = RoomBus::with_nats(&url, &format!("{prefix}b")).await.unwrap();
        let mut on_second = second.subscribe();
        let mut on_other = other.subscribe();
        // A subscription is only heard once the server has it: flush each client first.
        for bus in [&first, &second, &other] {
            bus.nats_client().unwrap().flush().await.unwrap();
        }

        first.publish(posted(1, 7)).await;
        first.nats_client().unwrap().flush().await.unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(5), on_second.recv())
            .await
            .expect("the same deployment's other instance hears the event")
            .unwrap();
        assert_eq!((heard.room_id(), heard.id()), (RoomId(1), RoomEventId(7)));
        // The event went round the server to the second instance; the other deployment's bus,
        // subscribed as long, heard nothing.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(matches!(
            on_other.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ));
        for task in [first_task, second_task, other_task] {
            task.abort();
        }
    }
}
