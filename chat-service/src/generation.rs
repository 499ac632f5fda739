//! Generations: the tasks that write assistant answers, detached from the requests that start
//! them.
//!
//! A [`Generation`] keeps the log of everything it produced (the started row, deltas, the
//! final event). Any number of clients follow it: the one that sent the message from the
//! first event, a reloaded page or a second tab from a snapshot of the content so far. A
//! client going away only drops its follower; the task runs on until it completes, fails,
//! is stopped, or hits the maximum duration. The [`GenerationRegistry`] knows the running
//! generations by session (one per session) and by message, and stops them all on shutdown.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::llm::v1 as llm;
use parley_service_kit::database::now_millis;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Error;
use crate::convert;
use crate::llm_client::{LlmClient, TraceHeaders};
use crate::store::{ChatStore, FinishedAnswer, status};

/// Knobs of how generations run.
#[derive(Debug, Clone)]
pub struct GenerationSettings {
    /// Estimated tokens of history (system prompt included) sent with each question.
    pub context_budget_tokens: usize,
    /// At most this many past messages are read to fill the budget.
    pub history_limit: i64,
    /// How often a growing answer is written to the database.
    pub persist_interval: Duration,
    /// A generation running longer is ended (FAILED, DEADLINE_EXCEEDED, content kept).
    pub max_duration: Duration,
    /// Generations one user may run at once (over all sessions).
    pub max_per_user: usize,
    /// Give untitled sessions a title after their first answer.
    pub generate_titles: bool,
    /// A running answer's row is touched at least this often, even while the model is
    /// silent, so other instances can tell it is alive.
    pub heartbeat_interval: Duration,
    /// A STREAMING row untouched this long belongs to a process that died: it is marked
    /// FAILED (on PostgreSQL, where several instances may share the database; SQLite's file
    /// has one instance, so there every STREAMING row found at start is such a leftover).
    pub stale_after: Duration,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            context_budget_tokens: 8_000,
            history_limit: 200,
            persist_interval: Duration::from_millis(250),
            max_duration: Duration::from_secs(10 * 60),
            max_per_user: 4,
            generate_titles: true,
            heartbeat_interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
        }
    }
}

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
    fn note(self) -> &'static str {
        match self {
            StopReason::User | StopReason::SessionDeleted => "",
            StopReason::Shutdown => "stopped because chat-service shut down",
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct GenerationLog {
    events: Vec<Event>,
    content: String,
    reasoning: String,
    closed: bool,
}

/// One running answer and its event log.
pub struct Generation {
    pub message_id: i64,
    pub session_id: i64,
    pub user_id: i64,
    log: Mutex<GenerationLog>,
    changed: watch::Sender<()>,
    stop: CancellationToken,
    stop_reason: Mutex<Option<StopReason>>,
    /// Cancelled once the row holds its final state.
    finished: CancellationToken,
}

impl Generation {
    /// A generation whose log starts with `assistant_started` for `row`.
    pub fn new(user_id: i64, row: pb::Message) -> Arc<Self> {
        let generation = Arc::new(Self {
            message_id: row.id,
            session_id: row.session_id,
            user_id,
            log: Mutex::new(GenerationLog::default()),
            changed: watch::Sender::new(()),
            stop: CancellationToken::new(),
            stop_reason: Mutex::new(None),
            finished: CancellationToken::new(),
        });
        generation.push(Event::AssistantStarted(row));
        generation
    }

    fn push(&self, event: Event) {
        {
            let mut log = lock(&self.log);
            if log.closed {
                return;
            }
            match &event {
                Event::Delta(text) => log.content.push_str(text),
                Event::ReasoningDelta(text) => log.reasoning.push_str(text),
                _ => {}
            }
            log.events.push(event);
        }
        self.changed.send_replace(());
    }

    fn close(&self) {
        lock(&self.log).closed = true;
        self.changed.send_replace(());
    }

    /// The answer and reasoning so far.
    pub fn text(&self) -> (String, String) {
        let log = lock(&self.log);
        (log.content.clone(), log.reasoning.clone())
    }

    /// The started row with the final state of `answer`.
    fn final_message(&self, answer: &FinishedAnswer<'_>) -> pb::Message {
        let started = lock(&self.log).events.iter().find_map(|e| match e {
            Event::AssistantStarted(row) => Some(row.clone()),
            _ => None,
        });
        let mut message = started.unwrap_or_default();
        message.content = answer.content.to_owned();
        message.reasoning = answer.reasoning.to_owned();
        message.status = convert::message_status(answer.status) as i32;
        message.error = answer.error.to_owned();
        message.usage = match (answer.prompt_tokens, answer.completion_tokens) {
            (None, None) => None,
            (prompt, completion) => Some(pb::TokenUsage {
                prompt_tokens: prompt.unwrap_or_default(),
                completion_tokens: completion.unwrap_or_default(),
            }),
        };
        message.updated_at = Some(parley_proto::timestamp::from_unix_millis(answer.now));
        message
    }

    /// Asks the generation to stop; the first reason given wins.
    pub fn request_stop(&self, reason: StopReason) {
        lock(&self.stop_reason).get_or_insert(reason);
        self.stop.cancel();
    }

    /// Resolves once the answer's final state is stored.
    pub async fn finished(&self) {
        self.finished.cancelled().await;
    }

    /// Every event from the first, then live ones, until the generation ends.
    pub fn follow_from_start(self: Arc<Self>) -> BoxStream<'static, Event> {
        self.follow(0, VecDeque::new())
    }

    /// The content so far as one delta (and one reasoning delta), then live events: what a
    /// client re-attaching to a running generation needs.
    pub fn follow_from_now(self: Arc<Self>) -> BoxStream<'static, Event> {
        let (replay, next) = {
            let log = lock(&self.log);
            let mut replay = VecDeque::new();
            for event in &log.events {
                match event {
                    Event::Delta(_) | Event::ReasoningDelta(_) => {}
                    other => replay.push_back(other.clone()),
                }
            }
            // Right after assistant_started, which is always first.
            let at = replay.len().min(1);
            if !log.content.is_empty() {
                replay.insert(at, Event::Delta(log.content.clone()));
            }
            if !log.reasoning.is_empty() {
                replay.insert(at, Event::ReasoningDelta(log.reasoning.clone()));
            }
            (replay, log.events.len())
        };
        self.follow(next, replay)
    }

    fn follow(self: Arc<Self>, next: usize, pending: VecDeque<Event>) -> BoxStream<'static, Event> {
        let changes = self.changed.subscribe();
        stream::unfold(
            (self, changes, next, pending),
            |(generation, mut changes, mut next, mut pending)| async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        return Some((event, (generation, changes, next, pending)));
                    }
                    // Mark the current version seen before reading, so a push after the read
                    // wakes the wait below.
                    changes.borrow_and_update();
                    let closed = {
                        let log = lock(&generation.log);
                        pending.extend(log.events[next..].iter().cloned());
                        next = log.events.len();
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

enum Slot {
    /// Claimed by a SendMessage that is still storing its messages.
    Reserved {
        user_id: i64,
    },
    Running(Arc<Generation>),
}

impl Slot {
    fn user_id(&self) -> i64 {
        match self {
            Slot::Reserved { user_id } => *user_id,
            Slot::Running(generation) => generation.user_id,
        }
    }
}

#[derive(Default)]
struct RegistryState {
    sessions: HashMap<i64, Slot>,
    messages: HashMap<i64, Arc<Generation>>,
    shutting_down: bool,
}

/// The running generations of this process.
pub struct GenerationRegistry {
    state: Mutex<RegistryState>,
    tasks: TaskTracker,
    /// Cancelled on shutdown: ends the extras (titles) of answers already stored.
    shutdown: CancellationToken,
    max_per_user: usize,
}

impl GenerationRegistry {
    pub fn new(max_per_user: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(RegistryState::default()),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            max_per_user,
        })
    }

    /// Claims `session_id` for a new generation: one per session, a few per user.
    pub fn reserve(self: &Arc<Self>, user_id: i64, session_id: i64) -> Result<Reservation, Error> {
        let mut state = lock(&self.state);
        if state.shutting_down {
            return Err(Error::ShuttingDown);
        }
        if state.sessions.contains_key(&session_id) {
            return Err(Error::GenerationRunning { session_id });
        }
        let running = state.sessions.values().filter(|s| s.user_id() == user_id).count();
        if running >= self.max_per_user {
            return Err(Error::TooManyGenerations {
                limit: self.max_per_user,
            });
        }
        state.sessions.insert(session_id, Slot::Reserved { user_id });
        Ok(Reservation {
            registry: Arc::clone(self),
            session_id,
            started: false,
        })
    }

    /// The running generation writing `message_id`, if it runs here.
    pub fn by_message(&self, message_id: i64) -> Option<Arc<Generation>> {
        lock(&self.state).messages.get(&message_id).cloned()
    }

    /// The running generation of `session_id`, if any.
    pub fn by_session(&self, session_id: i64) -> Option<Arc<Generation>> {
        match lock(&self.state).sessions.get(&session_id) {
            Some(Slot::Running(generation)) => Some(Arc::clone(generation)),
            _ => None,
        }
    }

    /// How many generations are running.
    pub fn running(&self) -> usize {
        lock(&self.state).messages.len()
    }

    fn release(&self, generation: &Arc<Generation>) {
        let mut state = lock(&self.state);
        if matches!(state.sessions.get(&generation.session_id), Some(Slot::Running(g)) if Arc::ptr_eq(g, generation)) {
            state.sessions.remove(&generation.session_id);
        }
        state.messages.remove(&generation.message_id);
    }

    /// Stops every running generation (their answers so far are kept, STOPPED) and refuses
    /// new ones.
    pub fn stop_all(&self) {
        let running: Vec<Arc<Generation>> = {
            let mut state = lock(&self.state);
            state.shutting_down = true;
            state.messages.values().cloned().collect()
        };
        self.shutdown.cancel();
        for generation in running {
            generation.request_stop(StopReason::Shutdown);
        }
    }

    /// Waits until every generation task has ended, up to `deadline`. False on timeout.
    pub async fn wait_idle(&self, deadline: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(deadline, self.tasks.wait()).await.is_ok()
    }
}

/// A claimed session slot. Dropped without [`Reservation::start`], it frees the slot.
pub struct Reservation {
    registry: Arc<GenerationRegistry>,
    session_id: i64,
    started: bool,
}

impl Reservation {
    /// Registers the generation and runs `job` as its own task.
    pub fn start(mut self, job: GenerationJob) -> Arc<Generation> {
        let generation = Arc::clone(&job.generation);
        let shutting_down = {
            let mut state = lock(&self.registry.state);
            state
                .sessions
                .insert(self.session_id, Slot::Running(Arc::clone(&generation)));
            state.messages.insert(generation.message_id, Arc::clone(&generation));
            state.shutting_down
        };
        self.started = true;
        if shutting_down {
            // Shutdown began while the messages were being stored: end at once, STOPPED.
            generation.request_stop(StopReason::Shutdown);
        }
        let registry = Arc::clone(&self.registry);
        let span = tracing::info_span!(
            "generation",
            message_id = generation.message_id,
            session_id = generation.session_id,
            user_id = generation.user_id,
            trace_id = job.trace.trace_id().unwrap_or_default()
        );
        self.registry.tasks.spawn(tracing::Instrument::instrument(
            async move {
                let generation = Arc::clone(&job.generation);
                job.run(&registry).await;
                // Normally released as soon as the row was final; this covers every other path.
                registry.release(&generation);
                generation.finished.cancel();
                generation.close();
            },
            span,
        ));
        generation
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.started {
            let mut state = lock(&self.registry.state);
            if matches!(state.sessions.get(&self.session_id), Some(Slot::Reserved { .. })) {
                state.sessions.remove(&self.session_id);
            }
        }
    }
}

/// Title generation after the first answer of an untitled session.
pub struct TitleJob {
    pub question: String,
}

/// Everything one generation task needs.
pub struct GenerationJob {
    pub generation: Arc<Generation>,
    pub store: ChatStore,
    pub llm: LlmClient,
    pub request: llm::StreamChatRequest,
    pub trace: TraceHeaders,
    pub settings: GenerationSettings,
    /// A regeneration: the answer this one replaces once it completes.
    pub replaces: Option<i64>,
    /// Other instances share the database and may ask for a stop through the row.
    pub watch_remote_stops: bool,
    pub title: Option<TitleJob>,
}

enum Outcome {
    Complete(Option<llm::Usage>),
    Stopped(StopReason),
    Failed { code: tonic::Code, message: String },
}

impl GenerationJob {
    async fn run(self, registry: &GenerationRegistry) {
        let generation = Arc::clone(&self.generation);
        let outcome = self.stream_answer().await;
        let (content, reasoning) = generation.text();
        let (row_status, usage, error, error_code) = match &outcome {
            Outcome::Complete(usage) => (status::COMPLETE, *usage, String::new(), 0),
            Outcome::Stopped(reason) => (status::STOPPED, None, reason.note().to_owned(), 0),
            Outcome::Failed { code, message } => (status::FAILED, None, message.clone(), *code as i64),
        };
        let answer = FinishedAnswer {
            content: &content,
            reasoning: &reasoning,
            status: row_status,
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
            error: &error,
            error_code,
            now: now_millis(),
        };
        let replaces = matches!(outcome, Outcome::Complete(_))
            .then_some(self.replaces)
            .flatten();
        let stored = match self.persist_final(&answer, replaces).await {
            Ok(()) => self.store.message_by_id(generation.message_id).await.ok().flatten(),
            Err(e) => {
                tracing::error!(error = %e, "could not store the finished answer");
                None
            }
        };
        match &outcome {
            Outcome::Complete(_) | Outcome::Stopped(_) => {
                // As stored; or, when it cannot be read back (its session was just deleted),
                // as it was meant to be stored, so followers still learn how it ended.
                let message = match stored {
                    Some(row) => convert::message(&row),
                    None => generation.final_message(&answer),
                };
                generation.push(Event::Completed(message));
            }
            Outcome::Failed { code, message } => {
                tracing::warn!(code = ?code, error = %message, "generation failed");
                generation.push(Event::Error(pb::ChatError {
                    code: *code as i32,
                    message: message.clone(),
                }));
            }
        }
        // The session is free for the next message as soon as the answer is final; the title
        // (below) is extra.
        registry.release(&generation);
        generation.finished.cancel();
        tracing::info!(status = row_status, chars = content.chars().count(), "generation ended");

        if let (Outcome::Complete(_), Some(title)) = (&outcome, &self.title) {
            let titled = tokio::select! {
                titled = self.generate_title(title, &content) => titled,
                _ = registry.shutdown.cancelled() => None,
            };
            if let Some(session) = titled {
                generation.push(Event::SessionUpdated(session));
            }
        }
        generation.close();
    }

    async fn persist_final(&self, answer: &FinishedAnswer<'_>, replaces: Option<i64>) -> Result<(), sqlx::Error> {
        // The final state must not be lost to a brief database hiccup.
        let mut attempt = 0;
        loop {
            match self
                .store
                .finish_answer(self.generation.message_id, answer, replaces)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "storing the finished answer failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn stop_reason(&self) -> StopReason {
        lock(&self.generation.stop_reason).unwrap_or(StopReason::User)
    }

    async fn stream_answer(&self) -> Outcome {
        let generation = &self.generation;
        let deadline = tokio::time::sleep(self.settings.max_duration);
        tokio::pin!(deadline);
        let timed_out = || Outcome::Failed {
            code: tonic::Code::DeadlineExceeded,
            message: format!(
                "the answer took longer than the maximum of {} and was ended",
                describe(self.settings.max_duration)
            ),
        };
        let start = self.llm.stream_chat(self.request.clone(), &self.trace);
        tokio::pin!(start);
        let mut stream = None;
        let mut persist = tokio::time::interval(self.settings.persist_interval);
        persist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        persist.reset();
        let mut unsaved = false;
        let mut last_write = tokio::time::Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = generation.stop.cancelled() => return Outcome::Stopped(self.stop_reason()),
                _ = &mut deadline => return timed_out(),
                _ = persist.tick() => {
                    // New text, or a heartbeat while the model is quiet (it may think for
                    // minutes before the first token).
                    let stop_asked = if unsaved || last_write.elapsed() >= self.settings.heartbeat_interval {
                        let (content, reasoning) = generation.text();
                        match self.store.save_progress(generation.message_id, &content, &reasoning, now_millis()).await {
                            Ok(stop_asked) => {
                                unsaved = false;
                                last_write = tokio::time::Instant::now();
                                stop_asked
                            }
                            // The next tick or the final write tries again.
                            Err(e) => {
                                tracing::warn!(error = %e, "could not store the answer so far");
                                false
                            }
                        }
                    } else if self.watch_remote_stops {
                        self.store.stop_requested(generation.message_id).await.unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "could not check for a stop request");
                            false
                        })
                    } else {
                        false
                    };
                    if stop_asked {
                        tracing::info!("stop requested through another instance");
                        generation.request_stop(StopReason::User);
                    }
                }
                started = &mut start, if stream.is_none() => match started {
                    Ok(started) => stream = Some(started),
                    Err(status) => return failed(status),
                },
                next = next_message(&mut stream) => match next {
                    Ok(Some(llm::StreamChatResponse { chunk: Some(chunk) })) => match chunk {
                        llm::stream_chat_response::Chunk::ContentDelta(text) => {
                            if !text.is_empty() {
                                generation.push(Event::Delta(text));
                                unsaved = true;
                            }
                        }
                        llm::stream_chat_response::Chunk::ReasoningDelta(text) => {
                            if !text.is_empty() {
                                generation.push(Event::ReasoningDelta(text));
                                unsaved = true;
                            }
                        }
                        llm::stream_chat_response::Chunk::Finish(finish) => return Outcome::Complete(finish.usage),
                    },
                    Ok(Some(llm::StreamChatResponse { chunk: None })) => {}
                    Ok(None) => {
                        return Outcome::Failed {
                            code: tonic::Code::Unavailable,
                            message: "the provider's stream ended before the answer was complete".to_owned(),
                        };
                    }
                    Err(status) => return failed(status),
                },
            }
        }
    }

    /// Asks the same model for a short title; None (logged) when that fails.
    async fn generate_title(&self, title: &TitleJob, answer: &str) -> Option<pb::Session> {
        let request = title_request(&self.request, &title.question, answer);
        let generated = tokio::time::timeout(Duration::from_secs(30), async {
            let mut stream = self.llm.stream_chat(request, &self.trace).await?;
            let mut text = String::new();
            while let Some(message) = stream.message().await? {
                match message.chunk {
                    Some(llm::stream_chat_response::Chunk::ContentDelta(delta)) => text.push_str(&delta),
                    Some(llm::stream_chat_response::Chunk::Finish(_)) => break,
                    _ => {}
                }
            }
            Ok::<_, tonic::Status>(text)
        })
        .await;
        let text = match generated {
            Ok(Ok(text)) => text,
            Ok(Err(status)) => {
                tracing::warn!(code = ?status.code(), error = status.message(), "title generation failed");
                return None;
            }
            Err(_) => {
                tracing::warn!("title generation timed out");
                return None;
            }
        };
        let title = clean_title(&text)?;
        let session_id = self.generation.session_id;
        match self.store.set_title_if_untitled(session_id, &title, now_millis()).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "could not store the generated title");
                return None;
            }
        }
        match self.store.session(self.generation.user_id, session_id).await {
            Ok(Some(row)) => Some(convert::session(&row)),
            _ => None,
        }
    }
}

/// The next message of the stream once it has started; until then, never.
async fn next_message(
    stream: &mut Option<tonic::Streaming<llm::StreamChatResponse>>,
) -> Result<Option<llm::StreamChatResponse>, tonic::Status> {
    match stream {
        Some(stream) => stream.message().await,
        None => std::future::pending().await,
    }
}

/// "10 min", "45 s", "600 ms".
fn describe(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 120 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else if secs >= 1 {
        format!("{secs} s")
    } else {
        format!("{} ms", duration.as_millis())
    }
}

fn failed(status: tonic::Status) -> Outcome {
    let message = if status.message().is_empty() {
        format!("the model call failed ({:?})", status.code())
    } else {
        status.message().to_owned()
    };
    Outcome::Failed {
        code: status.code(),
        message,
    }
}

/// Characters of the conversation shown to the model when asking for a title.
const TITLE_EXCERPT_CHARS: usize = 1_000;
/// Titles are cut to this many characters.
pub const MAX_TITLE_CHARS: usize = 60;

fn excerpt(text: &str) -> String {
    text.chars().take(TITLE_EXCERPT_CHARS).collect()
}

fn title_request(answer_request: &llm::StreamChatRequest, question: &str, answer: &str) -> llm::StreamChatRequest {
    llm::StreamChatRequest {
        provider: answer_request.provider.clone(),
        messages: vec![
            llm::ChatMessage {
                role: llm::ChatRole::System as i32,
                content: "You name conversations. Reply with a title of at most six words, in the language of \
                          the conversation, without quotes or a trailing period."
                    .to_owned(),
            },
            llm::ChatMessage {
                role: llm::ChatRole::User as i32,
                content: format!(
                    "Conversation:\nUser: {}\nAssistant: {}\n\nTitle:",
                    excerpt(question),
                    excerpt(answer)
                ),
            },
        ],
        params: Some(llm::GenerationParams {
            temperature: Some(0.3),
            top_p: None,
            max_tokens: Some(24),
        }),
    }
}

/// The first non-empty line, without quotes, a "Title:" prefix or a trailing period, cut to
/// [`MAX_TITLE_CHARS`].
pub fn clean_title(raw: &str) -> Option<String> {
    let line = raw.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line
        .strip_prefix("Title:")
        .or_else(|| line.strip_prefix("title:"))
        .unwrap_or(line)
        .trim();
    let decoration =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '“' | '”' | '「' | '」' | '《' | '》' | '*' | '#');
    // Trailing periods only: a title may well start with one (".NET tips").
    let line = line
        .trim_start_matches(decoration)
        .trim_end_matches(|c: char| decoration(c) || matches!(c, '.' | '。'));
    let title: String = line.chars().take(MAX_TITLE_CHARS).collect();
    let title = title.trim().to_owned();
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn row(id: i64, session_id: i64) -> pb::Message {
        pb::Message {
            id,
            session_id,
            role: pb::MessageRole::Assistant as i32,
            status: pb::MessageStatus::Streaming as i32,
            ..Default::default()
        }
    }

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

    #[tokio::test]
    async fn followers_from_start_and_from_now_see_the_same_text() {
        let generation = Generation::new(1, row(10, 5));
        generation.push(Event::ReasoningDelta("think".into()));
        generation.push(Event::Delta("Hel".into()));
        let first = Arc::clone(&generation).follow_from_start();
        generation.push(Event::Delta("lo".into()));
        let second = Arc::clone(&generation).follow_from_now();
        generation.push(Event::Delta("!".into()));
        generation.push(Event::Completed(row(10, 5)));
        generation.close();
        let first: Vec<String> = first.map(|e| kind(&e)).collect().await;
        let second: Vec<String> = second.map(|e| kind(&e)).collect().await;
        assert_eq!(
            first,
            [
                "started:10",
                "reasoning:think",
                "delta:Hel",
                "delta:lo",
                "delta:!",
                "completed:10"
            ]
        );
        assert_eq!(
            second,
            [
                "started:10",
                "reasoning:think",
                "delta:Hello",
                "delta:!",
                "completed:10"
            ]
        );
    }

    #[tokio::test]
    async fn a_follower_waits_for_live_events() {
        let generation = Generation::new(1, row(10, 5));
        let mut follower = Arc::clone(&generation).follow_from_now();
        assert_eq!(kind(&follower.next().await.unwrap()), "started:10");
        let pusher = Arc::clone(&generation);
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            pusher.push(Event::Delta("late".into()));
            pusher.close();
        });
        assert_eq!(kind(&follower.next().await.unwrap()), "delta:late");
        assert!(follower.next().await.is_none());
        task.await.unwrap();
        // Nothing is added after close.
        generation.push(Event::Delta("ignored".into()));
        assert_eq!(generation.text().0, "late");
    }

    #[test]
    fn one_generation_per_session_and_a_few_per_user() {
        let registry = GenerationRegistry::new(2);
        let first = registry.reserve(1, 100).unwrap();
        assert!(matches!(
            registry.reserve(1, 100),
            Err(Error::GenerationRunning { session_id: 100 })
        ));
        let _second = registry.reserve(1, 101).unwrap();
        assert!(matches!(
            registry.reserve(1, 102),
            Err(Error::TooManyGenerations { limit: 2 })
        ));
        // Another user is not affected.
        let _other = registry.reserve(2, 200).unwrap();
        // A reservation that never started frees its slot.
        drop(first);
        assert!(registry.reserve(1, 100).is_ok());
    }

    #[test]
    fn shutdown_refuses_new_generations() {
        let registry = GenerationRegistry::new(2);
        registry.stop_all();
        assert!(matches!(registry.reserve(1, 1), Err(Error::ShuttingDown)));
    }

    #[test]
    fn first_stop_reason_wins() {
        let generation = Generation::new(1, row(1, 1));
        generation.request_stop(StopReason::User);
        generation.request_stop(StopReason::Shutdown);
        assert_eq!(*lock(&generation.stop_reason), Some(StopReason::User));
        assert!(generation.stop.is_cancelled());
    }

    #[test]
    fn the_final_message_without_a_stored_row() {
        let generation = Generation::new(1, row(10, 5));
        let answer = FinishedAnswer {
            content: "partial",
            reasoning: "",
            status: status::STOPPED,
            prompt_tokens: None,
            completion_tokens: None,
            error: "",
            error_code: 0,
            now: 1_000,
        };
        let message = generation.final_message(&answer);
        assert_eq!((message.id, message.session_id), (10, 5));
        assert_eq!(message.content, "partial");
        assert_eq!(message.status, pb::MessageStatus::Stopped as i32);
        assert_eq!(message.usage, None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(describe(Duration::from_secs(600)), "10 min");
        assert_eq!(describe(Duration::from_secs(45)), "45 s");
        assert_eq!(describe(Duration::from_millis(600)), "600 ms");
    }

    #[test]
    fn titles_are_cleaned() {
        assert_eq!(
            clean_title("\"Rust borrow checker\".\n").as_deref(),
            Some("Rust borrow checker")
        );
        assert_eq!(
            clean_title("\n  Title: Trip to Kyoto").as_deref(),
            Some("Trip to Kyoto")
        );
        assert_eq!(clean_title("《翻译练习》。").as_deref(), Some("翻译练习"));
        assert_eq!(clean_title("   \n "), None);
        assert_eq!(clean_title(&"x".repeat(200)).map(|t| t.len()), Some(MAX_TITLE_CHARS));
    }
}
