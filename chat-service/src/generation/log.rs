//! One running answer and its event log: the started row, the text as it grew, the final
//! event and a title, replayed to every follower (consecutive deltas merged) and then live.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::convert;
use crate::ids::{MessageId, OwnerId, SessionId};
use crate::store::FinishedAnswer;
use crate::validation;

/// Why a generation was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `StopGeneration`.
    User,
    /// Its session is being deleted.
    SessionDeleted,
    /// chat-service is shutting down.
    Shutdown,
}

impl StopReason {
    /// Stored on the STOPPED row so a reader knows it was not the user's doing.
    pub(super) fn note(self) -> &'static str {
        match self {
            StopReason::User | StopReason::SessionDeleted => "",
            StopReason::Shutdown => "stopped because chat-service shut down",
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One step of the log. Text is held once, in the log's strings; its steps only say how far
/// it had grown.
enum LogEntry {
    /// The answer text grew to this many bytes.
    Content(usize),
    /// The reasoning grew to this many bytes.
    Reasoning(usize),
    Event(Box<Event>),
}

struct GenerationLog {
    /// The row as it was when the generation started.
    started: pb::Message,
    entries: Vec<LogEntry>,
    content: String,
    reasoning: String,
    closed: bool,
}

/// How far one follower has read the log.
#[derive(Default)]
struct FollowerCursor {
    next_entry: usize,
    content: usize,
    reasoning: usize,
}

impl GenerationLog {
    /// Moves everything after `cursor` into `out`, consecutive text steps of one kind merged
    /// into one delta (in order), so a follower that fell behind or came late catches up in a
    /// few events.
    fn read(&self, cursor: &mut FollowerCursor, out: &mut VecDeque<Event>) {
        for entry in &self.entries[cursor.next_entry..] {
            match entry {
                LogEntry::Content(end) => {
                    let more = self.content.get(cursor.content..*end).unwrap_or_default();
                    cursor.content = *end;
                    match out.back_mut() {
                        Some(Event::Delta(text)) => text.push_str(more),
                        _ => out.push_back(Event::Delta(more.to_owned())),
                    }
                }
                LogEntry::Reasoning(end) => {
                    let more = self.reasoning.get(cursor.reasoning..*end).unwrap_or_default();
                    cursor.reasoning = *end;
                    match out.back_mut() {
                        Some(Event::ReasoningDelta(text)) => text.push_str(more),
                        _ => out.push_back(Event::ReasoningDelta(more.to_owned())),
                    }
                }
                LogEntry::Event(event) => out.push_back(event.as_ref().clone()),
            }
        }
        cursor.next_entry = self.entries.len();
    }
}

/// One running answer and its event log.
pub struct Generation {
    pub message_id: MessageId,
    pub session_id: SessionId,
    pub user_id: OwnerId,
    log: Mutex<GenerationLog>,
    changed: watch::Sender<()>,
    stop: CancellationToken,
    stop_reason: Mutex<Option<StopReason>>,
    /// Cancelled once the row holds its final state (or it could not be stored).
    finished: CancellationToken,
}

impl Generation {
    /// A generation whose log starts with `assistant_started` for `row`.
    pub fn new(user_id: OwnerId, row: pb::Message) -> Arc<Self> {
        Arc::new(Self {
            message_id: MessageId(row.id),
            session_id: SessionId(row.session_id),
            user_id,
            log: Mutex::new(GenerationLog {
                entries: vec![LogEntry::Event(Box::new(Event::AssistantStarted(row.clone())))],
                started: row,
                content: String::new(),
                reasoning: String::new(),
                closed: false,
            }),
            changed: watch::Sender::new(()),
            stop: CancellationToken::new(),
            stop_reason: Mutex::new(None),
            finished: CancellationToken::new(),
        })
    }

    /// Appends model output (NUL characters dropped: the database could not store them),
    /// keeping the answer and its reasoning together within `max_bytes`: what would go beyond
    /// is dropped, cut at a character boundary. False once that limit is reached.
    pub(super) fn push_text(&self, kind: TextKind, text: &str, max_bytes: usize) -> bool {
        let text = validation::storable(text);
        let within = {
            let mut log = lock(&self.log);
            if log.closed {
                return true;
            }
            let room = max_bytes.saturating_sub(log.content.len() + log.reasoning.len());
            let mut take = text.len().min(room);
            while !text.is_char_boundary(take) {
                take -= 1;
            }
            let within = take == text.len();
            let text = &text[..take];
            if text.is_empty() {
                return within;
            }
            {
                let entry = match kind {
                    TextKind::Content => {
                        log.content.push_str(text);
                        LogEntry::Content(log.content.len())
                    }
                    TextKind::Reasoning => {
                        log.reasoning.push_str(text);
                        LogEntry::Reasoning(log.reasoning.len())
                    }
                };
                log.entries.push(entry);
            }
            within
        };
        self.changed.send_replace(());
        within
    }

    pub(super) fn push(&self, event: Event) {
        {
            let mut log = lock(&self.log);
            if log.closed {
                return;
            }
            log.entries.push(LogEntry::Event(Box::new(event)));
        }
        self.changed.send_replace(());
    }

    pub(super) fn close(&self) {
        lock(&self.log).closed = true;
        self.changed.send_replace(());
    }

    /// The answer and reasoning so far.
    pub(super) fn text(&self) -> (String, String) {
        let log = lock(&self.log);
        (log.content.clone(), log.reasoning.clone())
    }

    /// What the answer and reasoning gained after their first `content_from` and
    /// `reasoning_from` bytes (offsets an earlier [`Generation::text_since`] or `text` ended
    /// at): what a progress save appends.
    pub(super) fn text_since(&self, content_from: usize, reasoning_from: usize) -> (String, String) {
        let log = lock(&self.log);
        (
            log.content.get(content_from..).unwrap_or_default().to_owned(),
            log.reasoning.get(reasoning_from..).unwrap_or_default().to_owned(),
        )
    }

    /// The started row with the final state of `answer`: the row as `finish_answer` wrote it.
    pub(super) fn final_message(&self, answer: &FinishedAnswer<'_>) -> pb::Message {
        let started = lock(&self.log).started.clone();
        convert::finished_message(started, answer)
    }

    /// Asks the generation to stop; the first reason given wins.
    pub fn request_stop(&self, reason: StopReason) {
        lock(&self.stop_reason).get_or_insert(reason);
        self.stop.cancel();
    }

    /// Resolves once the answer's final state is stored (or could not be).
    pub async fn finished(&self) {
        self.finished.cancelled().await;
    }

    /// Marks the answer's final state stored (or given up on): [`Generation::finished`] resolves.
    pub(super) fn mark_finished(&self) {
        self.finished.cancel();
    }

    /// Resolves once a stop was asked for.
    pub(super) async fn stop_requested(&self) {
        self.stop.cancelled().await;
    }

    /// Why it was stopped, once a stop was asked for.
    pub(super) fn stopped_for(&self) -> Option<StopReason> {
        *lock(&self.stop_reason)
    }

    /// Every event from the first, then live ones, until the generation ends; text that is
    /// already there comes as one delta (and one reasoning delta). What the sender follows,
    /// and what a reloaded page or a second tab re-attaches with.
    pub fn follow(self: Arc<Self>) -> BoxStream<'static, Event> {
        let changes = self.changed.subscribe();
        stream::unfold(
            (self, changes, FollowerCursor::default(), VecDeque::new()),
            |(generation, mut changes, mut cursor, mut pending)| async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        return Some((event, (generation, changes, cursor, pending)));
                    }
                    // Mark the current version seen before reading, so a push after the read
                    // wakes the wait below.
                    changes.borrow_and_update();
                    let closed = {
                        let log = lock(&generation.log);
                        log.read(&mut cursor, &mut pending);
                        log.closed
                    };
                    if !pending.is_empty() {
                        continue;
                    }
                    if closed || changes.changed().await.is_err() {
                        return None;
                    }
                }
            },
        )
        .boxed()
    }
}

#[derive(Clone, Copy)]
pub(super) enum TextKind {
    Content,
    Reasoning,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::generation::streaming_answer as row;
    use crate::store::MessageStatus;

    fn kind(event: &Event) -> String {
        match event {
            Event::AssistantStarted(m) => format!("started:{}", m.id),
            Event::Delta(d) => format!("delta:{d}"),
            Event::ReasoningDelta(d) => format!("reasoning:{d}"),
            Event::Completed(m) => format!("completed:{}", m.id),
            Event::Error(e) => format!("error:{}", e.code),
            Event::SessionUpdated(s) => format!("session:{}", s.title),
            Event::UserMessage(_) => "user".into(),
        }
    }

    async fn next_kind(follower: &mut BoxStream<'static, Event>) -> String {
        kind(&follower.next().await.expect("an event"))
    }

    #[tokio::test]
    async fn followers_see_every_step_in_order_and_late_ones_catch_up_compactly() {
        let generation = Generation::new(OwnerId(1), row(10, 5));
        let mut early = Arc::clone(&generation).follow();
        assert_eq!(next_kind(&mut early).await, "started:10");
        generation.push_text(TextKind::Reasoning, "think", usize::MAX);
        assert_eq!(next_kind(&mut early).await, "reasoning:think");
        generation.push_text(TextKind::Content, "Hel", usize::MAX);
        assert_eq!(next_kind(&mut early).await, "delta:Hel");
        generation.push_text(TextKind::Content, "lo", usize::MAX);
        // A follower attaching now gets what is there merged, in order.
        let mut late = Arc::clone(&generation).follow();
        assert_eq!(next_kind(&mut late).await, "started:10");
        assert_eq!(next_kind(&mut late).await, "reasoning:think");
        assert_eq!(next_kind(&mut late).await, "delta:Hello");
        generation.push_text(TextKind::Content, "!", usize::MAX);
        generation.push(Event::Completed(row(10, 5)));
        generation.close();
        let early: Vec<String> = early.map(|e| kind(&e)).collect().await;
        let late: Vec<String> = late.map(|e| kind(&e)).collect().await;
        // The early follower had not read "lo" yet: it comes merged with "!".
        assert_eq!(early, ["delta:lo!", "completed:10"]);
        assert_eq!(late, ["delta:!", "completed:10"]);
        // Text is held once: the log keeps only how far it grew.
        let log = lock(&generation.log);
        assert!(
            log.entries
                .iter()
                .all(|e| !matches!(e, LogEntry::Event(e) if matches!(**e, Event::Delta(_))))
        );
        assert_eq!(log.content, "Hello!");
    }

    #[tokio::test]
    async fn interleaved_text_keeps_its_order() {
        let generation = Generation::new(OwnerId(1), row(10, 5));
        generation.push_text(TextKind::Content, "a", usize::MAX);
        generation.push_text(TextKind::Content, "b", usize::MAX);
        generation.push_text(TextKind::Reasoning, "r", usize::MAX);
        generation.push_text(TextKind::Content, "c", usize::MAX);
        generation.push_text(TextKind::Content, "", usize::MAX);
        generation.close();
        let replay: Vec<String> = Arc::clone(&generation).follow().map(|e| kind(&e)).collect().await;
        assert_eq!(replay, ["started:10", "delta:ab", "reasoning:r", "delta:c"]);
    }

    #[tokio::test]
    async fn model_output_is_stored_without_nul() {
        let generation = Generation::new(OwnerId(1), row(10, 5));
        generation.push_text(TextKind::Content, "a\0b", usize::MAX);
        generation.push_text(TextKind::Reasoning, "\0", usize::MAX);
        generation.close();
        assert_eq!(generation.text(), ("ab".to_owned(), String::new()));
        let replay: Vec<String> = Arc::clone(&generation).follow().map(|e| kind(&e)).collect().await;
        assert_eq!(replay, ["started:10", "delta:ab"]);
    }

    #[test]
    fn answer_and_reasoning_stay_within_the_size_limit() {
        let generation = Generation::new(OwnerId(1), row(10, 5));
        assert!(generation.push_text(TextKind::Reasoning, "abc", 9));
        assert!(generation.push_text(TextKind::Content, "defg", 9));
        // Two bytes of room: "é" is two bytes, so the cut falls before it, not inside it.
        assert!(!generation.push_text(TextKind::Content, "hé and more", 9));
        assert_eq!(generation.text(), ("defgh".to_owned(), "abc".to_owned()));
        // The last byte of room takes one more character; then nothing fits.
        assert!(!generation.push_text(TextKind::Content, "yz", 9));
        assert!(!generation.push_text(TextKind::Reasoning, "!", 9));
        assert_eq!(generation.text(), ("defghy".to_owned(), "abc".to_owned()));
        assert_eq!(generation.text_since(2, 3), ("fghy".to_owned(), String::new()));
    }

    #[tokio::test]
    async fn a_follower_waits_for_live_events() {
        let generation = Generation::new(OwnerId(1), row(10, 5));
        let mut follower = Arc::clone(&generation).follow();
        assert_eq!(next_kind(&mut follower).await, "started:10");
        let pusher = Arc::clone(&generation);
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            pusher.push_text(TextKind::Content, "late", usize::MAX);
            pusher.close();
        });
        assert_eq!(next_kind(&mut follower).await, "delta:late");
        assert!(follower.next().await.is_none());
        task.await.unwrap();
        // Nothing is added after close.
        generation.push_text(TextKind::Content, "ignored", usize::MAX);
        assert_eq!(generation.text().0, "late");
    }

    #[test]
    fn first_stop_reason_wins() {
        let generation = Generation::new(OwnerId(1), row(1, 1));
        generation.request_stop(StopReason::User);
        generation.request_stop(StopReason::Shutdown);
        assert_eq!(generation.stopped_for(), Some(StopReason::User));
        assert!(generation.stop.is_cancelled());
    }

    #[test]
    fn the_final_message_is_the_started_row_with_its_end() {
        let generation = Generation::new(OwnerId(1), row(10, 5));
        let answer = FinishedAnswer {
            content: "partial",
            reasoning: "",
            status: MessageStatus::Stopped,
            prompt_tokens: None,
            completion_tokens: None,
            error: "",
            error_code: 0,
            error_reason: "",
            now: 1_000,
        };
        let message = generation.final_message(&answer);
        assert_eq!((message.id, message.session_id), (10, 5));
        assert_eq!(message.content, "partial");
        assert_eq!(message.status, pb::MessageStatus::Stopped as i32);
        assert_eq!(message.usage, None);
    }
}
