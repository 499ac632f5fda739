//! Answers followed and stopped across chat-service instances through NATS (`--nats-url`,
//! the room bus's connection), instead of by polling their rows.
//!
//! The instance running a generation publishes every event of its log on
//! `<prefix>.chat.generations.<message id>` (the prefix, `parley` by default, set per
//! deployment sharing a NATS server), each text delta with the byte offset it starts at,
//! then an end mark. A follower on another instance subscribes first, then reads the row (the
//! record, saved every 250 ms) and sends what it holds, then passes on the deltas beyond that
//! text: a delta the row already covers is skipped, one after a gap (a message NATS dropped)
//! waits for the row to cover the gap. While NATS says nothing for a second the row is read
//! again, so an instance that died (its answer failed by the abandoned-answer sweep) or an
//! end mark lost on the way still ends the follower. Stop requests go out on
//! `<prefix>.chat.generations.stop` and the instance running the answer stops it at once; the
//! row keeps carrying the request too, for an instance NATS cannot reach.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event;
use prost::Message as _;

use super::log::{Generation, StopReason};
use super::registry::GenerationRegistry;
use crate::Error;
use crate::convert;
use crate::ids::MessageId;
use crate::store::{ChatStore, MessageRow, MessageStatus};

const CONTENT_OFFSET_HEADER: &str = "Parley-Content-Offset";
const REASONING_OFFSET_HEADER: &str = "Parley-Reasoning-Offset";
const END_HEADER: &str = "Parley-End";
/// With no message for this long a follower reads the row again.
const QUIET_CHECK: Duration = Duration::from_secs(1);
/// Quiet checks after the final event before a follower stops waiting for the end mark: the
/// title (30 s at most) and a margin.
const FINAL_QUIET_LIMIT: u32 = 35;
/// How often a follower behind a gap reads the row until it covers the gap.
const GAP_POLL: Duration = Duration::from_millis(100);

/// Publishes this instance's generations and follows and stops other instances' over NATS.
pub struct GenerationRelay {
    nats: async_nats::Client,
    /// `<prefix>.chat.generations`: answers' events go to `.<message id>` under it, stop
    /// requests (the payload is the message id in decimal) to `.stop`.
    subjects: String,
}

impl GenerationRelay {
    /// Over `nats`, on subjects starting with `prefix` (one per deployment sharing the server).
    pub fn new(nats: async_nats::Client, prefix: &str) -> Arc<Self> {
        Arc::new(Self {
            nats,
            subjects: format!("{prefix}.chat.generations"),
        })
    }

    /// The subject one answer's events travel on.
    fn events_subject(&self, message_id: MessageId) -> String {
        format!("{}.{}", self.subjects, message_id.0)
    }

    fn stop_subject(&self) -> String {
        format!("{}.stop", self.subjects)
    }

    /// Stops the generations running here that another instance was asked to stop, until the
    /// task answered is aborted.
    pub async fn serve_stops(&self, registry: Arc<GenerationRegistry>) -> Result<tokio::task::JoinHandle<()>, Error> {
        let subject = self.stop_subject();
        let mut requests = self
            .nats
            .subscribe(subject.clone())
            .await
            .map_err(|e| Error::Config(format!("NATS subscribe to {subject}: {e}")))?;
        Ok(tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let id = std::str::from_utf8(&request.payload).ok().and_then(|s| s.parse().ok());
                let Some(id) = id.map(MessageId) else {
                    tracing::warn!("a stop request from NATS that names no message was dropped");
                    continue;
                };
                if let Some(generation) = registry.by_message(id) {
                    tracing::info!(message_id = id.0, "stop asked for through another instance");
                    generation.request_stop(StopReason::User);
                }
            }
            tracing::warn!("NATS subscription for generation stops ended");
        }))
    }

    /// Publishes `generation`'s events until its log closes, for followers elsewhere.
    pub fn publish(&self, generation: Arc<Generation>) {
        let nats = self.nats.clone();
        let subject = self.events_subject(generation.message_id);
        tokio::spawn(async move {
            let mut events = generation.follow();
            let (mut content, mut reasoning) = (0usize, 0usize);
            while let Some(event) = events.next().await {
                let mut headers = async_nats::HeaderMap::new();
                match &event {
                    Event::Delta(text) => {
                        headers.insert(CONTENT_OFFSET_HEADER, content.to_string().as_str());
                        content += text.len();
                    }
                    Event::ReasoningDelta(text) => {
                        headers.insert(REASONING_OFFSET_HEADER, reasoning.to_string().as_str());
                        reasoning += text.len();
                    }
                    _ => {}
                }
                let payload = pb::ChatEvent { event: Some(event) }.encode_to_vec();
                if let Err(e) = nats
                    .publish_with_headers(subject.clone(), headers, payload.into())
                    .await
                {
                    // Followers elsewhere catch up from the row.
                    tracing::debug!(error = %e, "could not publish a generation event to NATS");
                }
            }
            let mut end = async_nats::HeaderMap::new();
            end.insert(END_HEADER, "1");
            if let Err(e) = nats.publish_with_headers(subject, end, Vec::new().into()).await {
                tracing::debug!(error = %e, "could not publish a generation's end to NATS");
            }
        });
    }

    /// Asks whichever instance runs `message_id` to stop it now.
    pub async fn ask_stop(&self, message_id: MessageId) {
        let payload = message_id.0.to_string().into_bytes();
        if let Err(e) = self.nats.publish(self.stop_subject(), payload.into()).await {
            tracing::warn!(error = %e, "could not send a stop request over NATS; the row carries it");
        }
    }

    /// Follows an answer another instance is writing: what its row holds now, then live
    /// deltas from NATS, then its end. `first` is the row as the caller read it (STREAMING).
    pub async fn follow(&self, store: ChatStore, first: MessageRow) -> BoxStream<'static, Event> {
        let id = first.id;
        // Subscribed before the row is read again, so nothing falls between the two.
        let subscription = match self.nats.subscribe(self.events_subject(id)).await {
            Ok(subscription) => subscription,
            Err(e) => {
                tracing::warn!(error = %e, "NATS subscribe failed; following the answer through its row");
                return super::remote::follow_stored(store, first);
            }
        };
        let row = match store.message_by_id(id).await {
            Ok(Some(row)) => row,
            _ => first,
        };
        let mut follower = RemoteFollower {
            store,
            id,
            subscription: Some(subscription),
            content: 0,
            reasoning: 0,
            pending: VecDeque::from([convert::started_event(&row)]),
            finished: false,
            quiet_after_final: 0,
            done: false,
        };
        follower.take_row(&row);
        stream::unfold(follower, |mut follower| async move {
            let event = follower.next().await?;
            Some((event, follower))
        })
        .boxed()
    }
}

struct RemoteFollower {
    store: ChatStore,
    id: MessageId,
    /// None once NATS ended the subscription: the row alone from then on.
    subscription: Option<async_nats::Subscriber>,
    /// Bytes of answer and reasoning text sent so far.
    content: usize,
    reasoning: usize,
    pending: VecDeque<Event>,
    /// The final event (Completed or Error) was sent; a title may still come before the end.
    finished: bool,
    /// Seconds without a message since the final event.
    quiet_after_final: u32,
    done: bool,
}

impl RemoteFollower {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            let message = match &mut self.subscription {
                Some(subscription) => match tokio::time::timeout(QUIET_CHECK, subscription.next()).await {
                    Ok(Some(message)) => Some(message),
                    Ok(None) => {
                        tracing::warn!(message_id = self.id.0, "NATS ended a generation's subscription");
                        self.subscription = None;
                        None
                    }
                    Err(_) => None,
                },
                None => {
                    tokio::time::sleep(QUIET_CHECK / 2).await;
                    None
                }
            };
            match message {
                Some(message) => self.apply(&message).await,
                // After its final event an answer only adds a title (bounded by the title's
                // own timeout); an end mark NATS lost must not keep the follower open.
                None if self.finished => {
                    self.quiet_after_final += 1;
                    self.done = self.quiet_after_final > FINAL_QUIET_LIMIT;
                }
                None => self.read_row().await,
            }
        }
    }

    async fn apply(&mut self, message: &async_nats::Message) {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .and_then(|v| v.as_str().parse::<usize>().ok())
        };
        if header(END_HEADER).is_some() {
            // The end: the final event came before it, unless NATS lost it.
            if !self.finished {
                self.read_row().await;
            }
            self.done = true;
            return;
        }
        let event = match pb::ChatEvent::decode(message.payload.as_ref()) {
            Ok(pb::ChatEvent { event: Some(event) }) => event,
            _ => {
                tracing::warn!(
                    message_id = self.id.0,
                    "an undecodable generation event from NATS was dropped"
                );
                return;
            }
        };
        match event {
            Event::Delta(text) => {
                let Some(offset) = header(CONTENT_OFFSET_HEADER) else {
                    return;
                };
                if offset > self.content {
                    self.catch_up(|f| f.content >= offset).await;
                    if self.done {
                        return;
                    }
                }
                if let Some(more) = text.get(self.content.saturating_sub(offset)..)
                    && !more.is_empty()
                    && offset + text.len() > self.content
                {
                    self.content = offset + text.len();
                    self.pending.push_back(Event::Delta(more.to_owned()));
                }
            }
            Event::ReasoningDelta(text) => {
                let Some(offset) = header(REASONING_OFFSET_HEADER) else {
                    return;
                };
                if offset > self.reasoning {
                    self.catch_up(|f| f.reasoning >= offset).await;
                    if self.done {
                        return;
                    }
                }
                if let Some(more) = text.get(self.reasoning.saturating_sub(offset)..)
                    && !more.is_empty()
                    && offset + text.len() > self.reasoning
                {
                    self.reasoning = offset + text.len();
                    self.pending.push_back(Event::ReasoningDelta(more.to_owned()));
                }
            }
            // Sent from the row already.
            Event::AssistantStarted(_) => {}
            event @ (Event::Completed(_) | Event::Error(_)) => {
                self.pending.push_back(event);
                // A title may still follow; the end mark ends the follower.
                self.finished = true;
            }
            event => self.pending.push_back(event),
        }
    }

    /// Reads the row until `covered` holds (it is saved every 250 ms) or the answer ended.
    async fn catch_up(&mut self, covered: impl Fn(&Self) -> bool) {
        loop {
            self.read_row().await;
            if covered(self) || self.done {
                return;
            }
            tokio::time::sleep(GAP_POLL).await;
        }
    }

    /// Sends what the row holds beyond what was sent, and its end once it has one.
    async fn read_row(&mut self) {
        match self.store.message_by_id(self.id).await {
            Ok(Some(row)) => {
                self.take_row(&row);
                if row.status != MessageStatus::Streaming {
                    self.pending.push_back(convert::final_event(&row));
                    self.finished = true;
                    self.done = true;
                }
            }
            Ok(None) => {
                self.pending.push_back(convert::error_event(
                    tonic::Code::NotFound,
                    "the answer was deleted",
                    None,
                ));
                self.done = true;
            }
            Err(e) => tracing::warn!(error = %e, "could not read a followed answer"),
        }
    }

    /// The row's text beyond what was sent.
    fn take_row(&mut self, row: &MessageRow) {
        if let Some(more) = row.reasoning.get(self.reasoning..)
            && !more.is_empty()
        {
            self.pending.push_back(Event::ReasoningDelta(more.to_owned()));
            self.reasoning = row.reasoning.len();
        }
        if let Some(more) = row.content.get(self.content..)
            && !more.is_empty()
        {
            self.pending.push_back(Event::Delta(more.to_owned()));
            self.content = row.content.len();
        }
    }
}
