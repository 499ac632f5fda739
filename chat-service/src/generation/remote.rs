//! Answers another chat-service instance is writing (PostgreSQL, several instances): they
//! are followed, and waited for, through their rows.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use parley_proto::chat::v1::chat_event::Event;

use crate::Error;
use crate::convert;
use crate::ids::MessageId;
use crate::store::{ChatStore, MessageRow, MessageStatus};

/// How often a client watching a generation that runs in another process re-reads its row.
const REMOTE_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Follows an answer being written by another chat-service instance through its row: what it
/// holds now, then what it gains every [`REMOTE_POLL_INTERVAL`], then its end.
pub fn follow_stored(store: ChatStore, first: MessageRow) -> BoxStream<'static, Event> {
    let mut opening = vec![convert::started_event(&first)];
    opening.extend(convert::text_events(&first.reasoning, &first.content));
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
                        let deleted = convert::error_event(tonic::Code::NotFound, "the answer was deleted", None);
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
                if row.status != MessageStatus::Streaming {
                    events.push(convert::final_event(&row));
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

/// Waits (up to `limit`) until the answer is no longer STREAMING: another instance, asked to
/// stop it through its row, has stored its end.
pub async fn wait_not_streaming(store: &ChatStore, message_id: MessageId, limit: Duration) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        match store.message_by_id(message_id).await? {
            Some(row) if row.status == MessageStatus::Streaming => {}
            _ => return Ok(()),
        }
        tokio::time::sleep(REMOTE_POLL_INTERVAL / 5).await;
    }
    tracing::warn!(
        message_id = message_id.0,
        "an answer asked to stop through the database is still streaming"
    );
    Ok(())
}
