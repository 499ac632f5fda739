//! Generations: the tasks that write assistant answers, detached from the requests that start
//! them.
//!
//! A [`Generation`] keeps the log of everything it produced (the started row, the text as
//! it grew, the final event, a title). Any number of clients follow it: the one that sent the
//! message from the first event, a reloaded page or a second tab from the start too, the text
//! so far replayed as one delta. A client going away only drops its follower; the task runs
//! on until it completes, fails, is stopped, or hits the maximum duration. The
//! [`GenerationRegistry`] knows the running generations by session (one per session) and by
//! message, and stops them all on shutdown.

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
use crate::validation;

/// Knobs of how generations run.
#[derive(Debug, Clone)]
pub struct GenerationSettings {
    /// Estimated tokens of history (system prompt included) sent with each question.
    pub context_budget_tokens: usize,
    /// At most this many past messages are read to fill the budget.
    pub history_limit: i64,
    /// How often a growing answer is written to the database.
    pub persist_interval: Duration,
    /// A generation running longer is ended (FAILED, DEADLINE_EXCEEDED, content kept). Storing
    /// its end, when the database refuses for a while, is retried for as long again.
    pub max_duration: Duration,
    /// Generations one user may run at once (over all sessions; on a shared PostgreSQL
    /// database, over all instances).
    pub max_per_user: usize,
    /// Give untitled sessions a title after their first answer.
    pub generate_titles: bool,
    /// A running answer's row is touched at least this often, even while the model is
    /// silent, so other instances can tell it is alive; the same write reads stop requests
    /// made through other instances.
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
    pub message_id: i64,
    pub session_id: i64,
    pub user_id: i64,
    log: Mutex<GenerationLog>,
    changed: watch::Sender<()>,
    stop: CancellationToken,
    stop_reason: Mutex<Option<StopReason>>,
    /// Cancelled once the row holds its final state (or it could not be stored).
    finished: CancellationToken,
}

impl Generation {
    /// A generation whose log starts with `assistant_started` for `row`.
    pub fn new(user_id: i64, row: pb::Message) -> Arc<Self> {
        Arc::new(Self {
            message_id: row.id,
            session_id: row.session_id,
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

    /// Appends model output (NUL characters dropped: the database could not store them).
    fn push_text(&self, kind: TextKind, text: &str) {
        let text = validation::storable(text);
        if text.is_empty() {
            return;
        }
        {
            let mut log = lock(&self.log);
            if log.closed {
                return;
            }
            let entry = match kind {
                TextKind::Content => {
                    log.content.push_str(&text);
                    LogEntry::Content(log.content.len())
                }
                TextKind::Reasoning => {
                    log.reasoning.push_str(&text);
                    LogEntry::Reasoning(log.reasoning.len())
                }
            };
            log.entries.push(entry);
        }
        self.changed.send_replace(());
    }

    fn push(&self, event: Event) {
        {
            let mut log = lock(&self.log);
            if log.closed {
                return;
            }
            log.entries.push(LogEntry::Event(Box::new(event)));
        }
        self.changed.send_replace(());
    }

    fn close(&self) {
        lock(&self.log).closed = true;
        self.changed.send_replace(());
    }

    /// The answer and reasoning so far.
    fn text(&self) -> (String, String) {
        let log = lock(&self.log);
        (log.content.clone(), log.reasoning.clone())
    }

    /// The started row with the final state of `answer`: the row as `finish_answer` wrote it.
    fn final_message(&self, answer: &FinishedAnswer<'_>) -> pb::Message {
        let mut message = lock(&self.log).started.clone();
        message.content = answer.content.to_owned();
        message.reasoning = answer.reasoning.to_owned();
        message.status = convert::message_status(answer.status) as i32;
        message.error = answer.error.to_owned();
        message.error_code = answer.error_code as i32;
        message.usage = convert::token_usage(answer.prompt_tokens, answer.completion_tokens);
        message.updated_at = Some(parley_proto::timestamp::from_unix_millis(answer.now));
        message
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
enum TextKind {
    Content,
    Reasoning,
}

/// A stop asked for while the session's slot was still only reserved.
#[derive(Clone, Copy)]
struct PendingStop {
    /// The answer to stop; `None`: whichever starts (its session is being deleted).
    message_id: Option<i64>,
    reason: StopReason,
}

enum Slot {
    /// Claimed by a request that is still storing its messages.
    Reserved {
        user_id: i64,
        /// Every stop asked for meanwhile, oldest first: one may name another answer than the
        /// one that starts, so none may be dropped for an earlier one.
        stops: Vec<PendingStop>,
    },
    Running(Arc<Generation>),
}

impl Slot {
    fn user_id(&self) -> i64 {
        match self {
            Slot::Reserved { user_id, .. } => *user_id,
            Slot::Running(generation) => generation.user_id,
        }
    }
}

/// What asking for a stop reached.
pub enum StopTarget {
    /// The generation, running here; it was asked to stop.
    Running(Arc<Generation>),
    /// A request here is still starting a generation in the session; it stops as soon as it
    /// starts.
    Starting,
    /// Nothing runs here: the answer is finished, or another instance writes it.
    NotHere,
}

#[derive(Default)]
struct RegistryState {
    /// The slot of each session that is generating (or about to).
    sessions: HashMap<i64, Slot>,
    /// Generations by message, until their log is closed: after the answer is stored a
    /// generation may still add the session's new title, which late followers should see.
    messages: HashMap<i64, Arc<Generation>>,
    shutting_down: bool,
}

/// The running generations of this process.
pub struct GenerationRegistry {
    state: Mutex<RegistryState>,
    tasks: TaskTracker,
    /// Cancelled on shutdown: ends the extras (titles) of answers already stored, and the
    /// retrying of final writes.
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
        state.sessions.insert(
            session_id,
            Slot::Reserved {
                user_id,
                stops: Vec::new(),
            },
        );
        Ok(Reservation {
            registry: Arc::clone(self),
            session_id,
            started: false,
        })
    }

    /// The most generations one user may run at once.
    pub fn max_per_user(&self) -> usize {
        self.max_per_user
    }

    /// The generation of `message_id`, if it runs here (or is adding its title).
    pub fn by_message(&self, message_id: i64) -> Option<Arc<Generation>> {
        lock(&self.state).messages.get(&message_id).cloned()
    }

    /// Stops the answer `message_id` of `session_id`, if it runs here or is starting here.
    pub fn stop_message(&self, session_id: i64, message_id: i64, reason: StopReason) -> StopTarget {
        self.stop(session_id, Some(message_id), reason)
    }

    /// Stops whatever generates in `session_id` here, running or starting.
    pub fn stop_session(&self, session_id: i64, reason: StopReason) -> StopTarget {
        self.stop(session_id, None, reason)
    }

    fn stop(&self, session_id: i64, message_id: Option<i64>, reason: StopReason) -> StopTarget {
        let running = {
            let mut state = lock(&self.state);
            let by_message = message_id.and_then(|id| state.messages.get(&id).cloned());
            match (by_message, state.sessions.get_mut(&session_id)) {
                (Some(generation), _) => generation,
                (None, Some(Slot::Running(generation))) if message_id.is_none_or(|id| id == generation.message_id) => {
                    Arc::clone(generation)
                }
                (None, Some(Slot::Reserved { stops, .. })) => {
                    stops.push(PendingStop { message_id, reason });
                    return StopTarget::Starting;
                }
                _ => return StopTarget::NotHere,
            }
        };
        running.request_stop(reason);
        StopTarget::Running(running)
    }

    /// How many generations are running.
    pub fn running(&self) -> usize {
        lock(&self.state)
            .sessions
            .values()
            .filter(|slot| matches!(slot, Slot::Running(_)))
            .count()
    }

    /// Frees the generation's session for the next message.
    fn release_session(&self, generation: &Arc<Generation>) {
        let mut state = lock(&self.state);
        if matches!(state.sessions.get(&generation.session_id), Some(Slot::Running(g)) if Arc::ptr_eq(g, generation)) {
            state.sessions.remove(&generation.session_id);
        }
    }

    /// Forgets a generation whose log is closed.
    fn forget(&self, generation: &Arc<Generation>) {
        self.release_session(generation);
        let mut state = lock(&self.state);
        if matches!(state.messages.get(&generation.message_id), Some(g) if Arc::ptr_eq(g, generation)) {
            state.messages.remove(&generation.message_id);
        }
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
    /// Puts the generation into the slot. A stop asked for while the slot was only reserved
    /// (or shutdown, begun meanwhile) applies at once.
    fn register(&mut self, generation: &Arc<Generation>) {
        let stop = {
            let mut state = lock(&self.registry.state);
            let pending = match state
                .sessions
                .insert(self.session_id, Slot::Running(Arc::clone(generation)))
            {
                Some(Slot::Reserved { stops, .. }) => stops,
                _ => Vec::new(),
            };
            state.messages.insert(generation.message_id, Arc::clone(generation));
            if state.shutting_down {
                Some(StopReason::Shutdown)
            } else {
                // The first stop that is for this answer (or for whatever starts) wins.
                pending
                    .into_iter()
                    .find(|p| p.message_id.is_none_or(|id| id == generation.message_id))
                    .map(|p| p.reason)
            }
        };
        self.started = true;
        if let Some(reason) = stop {
            generation.request_stop(reason);
        }
    }

    /// Registers the generation and runs `job` as its own task.
    pub fn start(mut self, job: GenerationJob) -> Arc<Generation> {
        let generation = Arc::clone(&job.generation);
        self.register(&generation);
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
                // A stored answer was marked finished and its session freed already, before
                // the title; an end that could not be stored gets both here. Closing the log
                // ends every follower.
                generation.finished.cancel();
                generation.close();
                registry.forget(&generation);
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
    /// A regeneration: the question it answers anew. Once this answer is COMPLETE or STOPPED
    /// it is the question's only answer (the others are deleted); a FAILED one leaves the
    /// previous answer in place.
    pub regenerates_answer_to: Option<i64>,
    pub title: Option<TitleJob>,
}

enum Outcome {
    Complete(Option<llm::Usage>),
    Stopped(StopReason),
    Failed { code: tonic::Code, message: String },
}

/// The first retry of a final write that failed waits this long; later ones twice as long as
/// the one before, up to [`FINAL_WRITE_MAX_BACKOFF`].
const FINAL_WRITE_FIRST_BACKOFF: Duration = Duration::from_millis(100);
const FINAL_WRITE_MAX_BACKOFF: Duration = Duration::from_secs(5);

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
        let sole_answer_to = match outcome {
            Outcome::Complete(_) | Outcome::Stopped(_) => self.regenerates_answer_to,
            Outcome::Failed { .. } => None,
        };
        // The session stays claimed until its answer is stored: a next question must not be
        // answered without this answer in its context.
        if let Err(e) = self.persist_final(&answer, sole_answer_to, &registry.shutdown).await {
            // Never COMPLETED for an answer that is not stored. The row stays STREAMING with
            // the text of its last progress write until the abandoned-answer sweep marks it
            // FAILED. The task's end frees the session and closes the log.
            tracing::error!(error = %e, status = row_status, "could not store the finished answer");
            generation.push(Event::Error(pb::ChatError {
                code: tonic::Code::Unavailable as i32,
                message: "the answer could not be stored: the database is unavailable".to_owned(),
            }));
            return;
        }
        generation.push(match &outcome {
            // The row as it was just written: no need to read it back.
            Outcome::Complete(_) | Outcome::Stopped(_) => Event::Completed(generation.final_message(&answer)),
            Outcome::Failed { code, message } => {
                tracing::warn!(code = ?code, error = %message, "generation failed");
                Event::Error(pb::ChatError {
                    code: *code as i32,
                    message: message.clone(),
                })
            }
        });
        // The session is free for the next message as soon as the answer is stored; the
        // title (below) is extra, which followers, late ones too, still get.
        registry.release_session(&generation);
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
    }

    /// Stores the final state. A database that refuses (down, locked, failing over) is tried
    /// again with growing pauses until it takes the write, for up to the maximum duration of
    /// a generation; shutdown allows one more try.
    async fn persist_final(
        &self,
        answer: &FinishedAnswer<'_>,
        sole_answer_to: Option<i64>,
        shutdown: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
        let give_up_at = tokio::time::Instant::now() + self.settings.max_duration;
        let mut backoff = FINAL_WRITE_FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            let error = match self
                .store
                .finish_answer(self.generation.message_id, answer, sole_answer_to)
                .await
            {
                Ok(()) => {
                    if attempt > 0 {
                        tracing::info!(attempts = attempt + 1, "stored the finished answer after retrying");
                    }
                    return Ok(());
                }
                Err(e) => e,
            };
            attempt += 1;
            if shutdown.is_cancelled() || tokio::time::Instant::now() + backoff > give_up_at {
                return Err(error);
            }
            tracing::warn!(error = %error, attempt, retry_in = ?backoff, "storing the finished answer failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => {}
            }
            backoff = (backoff * 2).min(FINAL_WRITE_MAX_BACKOFF);
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
                    // minutes before the first token). The same write reads stop requests
                    // made through other instances, so a quiet answer sees them within a
                    // heartbeat; no other query looks for them.
                    if !unsaved && last_write.elapsed() < self.settings.heartbeat_interval {
                        continue;
                    }
                    let (content, reasoning) = generation.text();
                    match self.store.save_progress(generation.message_id, &content, &reasoning, now_millis()).await {
                        Ok(stop_asked) => {
                            unsaved = false;
                            last_write = tokio::time::Instant::now();
                            if stop_asked {
                                tracing::info!("stop requested through the database");
                                generation.request_stop(StopReason::User);
                            }
                        }
                        // The next tick or the final write tries again.
                        Err(e) => tracing::warn!(error = %e, "could not store the answer so far"),
                    }
                }
                started = &mut start, if stream.is_none() => match started {
                    Ok(started) => stream = Some(started),
                    Err(status) => return failed(status),
                },
                next = next_message(&mut stream) => match next {
                    Ok(Some(llm::StreamChatResponse { chunk: Some(chunk) })) => match chunk {
                        llm::stream_chat_response::Chunk::ContentDelta(text) => {
                            generation.push_text(TextKind::Content, &text);
                            unsaved = true;
                        }
                        llm::stream_chat_response::Chunk::ReasoningDelta(text) => {
                            generation.push_text(TextKind::Reasoning, &text);
                            unsaved = true;
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

    /// Asks the same model for a short title; when it gives none (it failed, or spent its
    /// tokens reasoning), the title is made from the question. None when nothing could be
    /// stored (logged), or the user named the session meanwhile.
    async fn generate_title(&self, title: &TitleJob, answer: &str) -> Option<pb::Session> {
        let request = title_request(&self.request, &title.question, answer);
        let generated = tokio::time::timeout(TITLE_TIMEOUT, async {
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
        let from_model = match generated {
            Ok(Ok(text)) => clean_title(&text),
            Ok(Err(status)) => {
                tracing::warn!(code = ?status.code(), error = status.message(), "title generation failed");
                None
            }
            Err(_) => {
                tracing::warn!("title generation timed out");
                None
            }
        };
        let title = match from_model {
            Some(title) => title,
            None => title_from_question(&title.question)?,
        };
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

/// A failed model call, with the status clients get for llm-service's errors everywhere
/// (the same mapping as unary calls: [`Error::Llm`]).
fn failed(status: tonic::Status) -> Outcome {
    let status = tonic::Status::from(Error::Llm(status));
    let message = if status.message().is_empty() {
        format!("the model call failed ({:?})", status.code())
    } else {
        validation::storable(status.message()).into_owned()
    };
    Outcome::Failed {
        code: status.code(),
        message,
    }
}

/// Characters of the conversation shown to the model when asking for a title.
const TITLE_EXCERPT_CHARS: usize = 1_000;
/// Titles are cut to this many characters.
const MAX_TITLE_CHARS: usize = 60;
/// Room for the title and, from a reasoning model, the reasoning before it.
const TITLE_MAX_TOKENS: i32 = 512;
const TITLE_TIMEOUT: Duration = Duration::from_secs(30);

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
            max_tokens: Some(TITLE_MAX_TOKENS),
        }),
    }
}

/// Text without the reasoning some models write inline (`<think>…</think>`); an unclosed
/// block runs to the end.
fn without_inline_reasoning(text: &str) -> String {
    let mut rest = text;
    let mut kept = String::new();
    while let Some(open) = rest.find("<think>") {
        kept.push_str(&rest[..open]);
        match rest[open..].find("</think>") {
            Some(close) => rest = &rest[open + close + "</think>".len()..],
            None => return kept,
        }
    }
    kept.push_str(rest);
    kept
}

/// The first non-empty line outside inline reasoning, without quotes, a "Title:" prefix, a
/// trailing period or NUL characters, cut to [`MAX_TITLE_CHARS`].
fn clean_title(raw: &str) -> Option<String> {
    let text = without_inline_reasoning(&validation::storable(raw));
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
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

/// A title made from the question when the model gives none: its first line, cut at a word
/// boundary to at most [`MAX_TITLE_CHARS`] (with "…" when cut).
fn title_from_question(question: &str) -> Option<String> {
    let line = question.lines().map(str::trim).find(|l| !l.is_empty())?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= MAX_TITLE_CHARS {
        return Some(line);
    }
    let budget = MAX_TITLE_CHARS - 1;
    let cut: String = line.chars().take(budget).collect();
    // Back to the last space, unless that would drop most of the text (one long word).
    let cut = match cut.rfind(' ') {
        Some(space) if space >= cut.len() / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    Some(format!("{}…", cut.trim_end()))
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

    async fn next_kind(follower: &mut BoxStream<'static, Event>) -> String {
        kind(&follower.next().await.expect("an event"))
    }

    #[tokio::test]
    async fn followers_see_every_step_in_order_and_late_ones_catch_up_compactly() {
        let generation = Generation::new(1, row(10, 5));
        let mut early = Arc::clone(&generation).follow();
        assert_eq!(next_kind(&mut early).await, "started:10");
        generation.push_text(TextKind::Reasoning, "think");
        assert_eq!(next_kind(&mut early).await, "reasoning:think");
        generation.push_text(TextKind::Content, "Hel");
        assert_eq!(next_kind(&mut early).await, "delta:Hel");
        generation.push_text(TextKind::Content, "lo");
        // A follower attaching now gets what is there merged, in order.
        let mut late = Arc::clone(&generation).follow();
        assert_eq!(next_kind(&mut late).await, "started:10");
        assert_eq!(next_kind(&mut late).await, "reasoning:think");
        assert_eq!(next_kind(&mut late).await, "delta:Hello");
        generation.push_text(TextKind::Content, "!");
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
        let generation = Generation::new(1, row(10, 5));
        generation.push_text(TextKind::Content, "a");
        generation.push_text(TextKind::Content, "b");
        generation.push_text(TextKind::Reasoning, "r");
        generation.push_text(TextKind::Content, "c");
        generation.push_text(TextKind::Content, "");
        generation.close();
        let replay: Vec<String> = Arc::clone(&generation).follow().map(|e| kind(&e)).collect().await;
        assert_eq!(replay, ["started:10", "delta:ab", "reasoning:r", "delta:c"]);
    }

    #[tokio::test]
    async fn model_output_is_stored_without_nul() {
        let generation = Generation::new(1, row(10, 5));
        generation.push_text(TextKind::Content, "a\0b");
        generation.push_text(TextKind::Reasoning, "\0");
        generation.close();
        assert_eq!(generation.text(), ("ab".to_owned(), String::new()));
        let replay: Vec<String> = Arc::clone(&generation).follow().map(|e| kind(&e)).collect().await;
        assert_eq!(replay, ["started:10", "delta:ab"]);
    }

    #[tokio::test]
    async fn a_follower_waits_for_live_events() {
        let generation = Generation::new(1, row(10, 5));
        let mut follower = Arc::clone(&generation).follow();
        assert_eq!(next_kind(&mut follower).await, "started:10");
        let pusher = Arc::clone(&generation);
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            pusher.push_text(TextKind::Content, "late");
            pusher.close();
        });
        assert_eq!(next_kind(&mut follower).await, "delta:late");
        assert!(follower.next().await.is_none());
        task.await.unwrap();
        // Nothing is added after close.
        generation.push_text(TextKind::Content, "ignored");
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

    fn register(reservation: Reservation, generation: &Arc<Generation>) {
        let mut reservation = reservation;
        reservation.register(generation);
    }

    #[test]
    fn a_stop_reaches_a_generation_that_is_still_starting() {
        let registry = GenerationRegistry::new(2);
        let reservation = registry.reserve(1, 5).unwrap();
        assert!(matches!(
            registry.stop_message(5, 10, StopReason::User),
            StopTarget::Starting
        ));
        let generation = Generation::new(1, row(10, 5));
        register(reservation, &generation);
        assert!(generation.stop.is_cancelled());
        assert_eq!(*lock(&generation.stop_reason), Some(StopReason::User));
        // Registered, it is found by its message.
        assert!(matches!(
            registry.stop_message(5, 10, StopReason::User),
            StopTarget::Running(g) if Arc::ptr_eq(&g, &generation)
        ));
    }

    #[test]
    fn a_pending_stop_for_another_answer_does_not_stop_this_one() {
        let registry = GenerationRegistry::new(2);
        let reservation = registry.reserve(1, 5).unwrap();
        // A stop of answer 9 (written elsewhere) while this instance reserves the session.
        assert!(matches!(
            registry.stop_message(5, 9, StopReason::User),
            StopTarget::Starting
        ));
        let generation = Generation::new(1, row(10, 5));
        register(reservation, &generation);
        assert!(!generation.stop.is_cancelled());
        // Deleting the session stops whatever starts in it.
        let reservation = registry.reserve(1, 6).unwrap();
        assert!(matches!(
            registry.stop_session(6, StopReason::SessionDeleted),
            StopTarget::Starting
        ));
        let other = Generation::new(1, row(11, 6));
        register(reservation, &other);
        assert_eq!(*lock(&other.stop_reason), Some(StopReason::SessionDeleted));
        assert!(matches!(
            registry.stop_session(7, StopReason::SessionDeleted),
            StopTarget::NotHere
        ));
    }

    #[test]
    fn a_stop_for_another_answer_does_not_hide_a_later_one_for_this_answer() {
        let registry = GenerationRegistry::new(2);
        let reservation = registry.reserve(1, 5).unwrap();
        // First a stop of answer 9 (finished, or written elsewhere), then of the one starting.
        registry.stop_message(5, 9, StopReason::User);
        registry.stop_message(5, 10, StopReason::User);
        let generation = Generation::new(1, row(10, 5));
        register(reservation, &generation);
        assert!(generation.stop.is_cancelled());
        // Likewise a session being deleted after such a stop.
        let reservation = registry.reserve(1, 6).unwrap();
        registry.stop_message(6, 9, StopReason::User);
        registry.stop_session(6, StopReason::SessionDeleted);
        let other = Generation::new(1, row(11, 6));
        register(reservation, &other);
        assert_eq!(*lock(&other.stop_reason), Some(StopReason::SessionDeleted));
    }

    #[test]
    fn a_generation_adding_its_title_frees_its_session_but_is_still_followed() {
        let registry = GenerationRegistry::new(1);
        let reservation = registry.reserve(1, 5).unwrap();
        let generation = Generation::new(1, row(10, 5));
        register(reservation, &generation);
        assert_eq!(registry.running(), 1);
        registry.release_session(&generation);
        assert_eq!(registry.running(), 0);
        assert!(registry.reserve(1, 5).is_ok(), "the session is free");
        assert!(registry.by_message(10).is_some(), "late followers still find it");
        registry.forget(&generation);
        assert!(registry.by_message(10).is_none());
    }

    #[test]
    fn the_final_message_is_the_started_row_with_its_end() {
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
    fn llm_service_errors_map_as_in_unary_calls() {
        let code = |status: tonic::Status| match failed(status) {
            Outcome::Failed { code, .. } => code,
            _ => unreachable!(),
        };
        // llm-service's own failures: the model is unavailable.
        assert_eq!(code(tonic::Status::internal("boom")), tonic::Code::Unavailable);
        assert_eq!(code(tonic::Status::unknown("h2 error")), tonic::Code::Unavailable);
        // Its provider statuses pass as they are.
        assert_eq!(
            code(tonic::Status::failed_precondition("bad key")),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            code(tonic::Status::resource_exhausted("slow down")),
            tonic::Code::ResourceExhausted
        );
        let Outcome::Failed { message, .. } = failed(tonic::Status::unavailable("down\0")) else {
            unreachable!()
        };
        assert_eq!(message, "down");
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
        // Inline reasoning is not the title.
        assert_eq!(
            clean_title("<think>The user asks about Kyoto.\nMaybe…</think>\nKyoto Trip").as_deref(),
            Some("Kyoto Trip")
        );
        assert_eq!(clean_title("<think>still thinking when the tokens ran out"), None);
        assert_eq!(clean_title("Nul\0 Title").as_deref(), Some("Nul Title"));
    }

    #[test]
    fn titles_from_the_question() {
        assert_eq!(
            title_from_question("\n  How do   lifetimes work?\nMore detail").as_deref(),
            Some("How do lifetimes work?")
        );
        let long = "Please explain in detail how the borrow checker decides when a reference outlives its owner";
        let title = title_from_question(long).unwrap();
        assert!(
            title.ends_with('…') && title.chars().count() <= MAX_TITLE_CHARS,
            "{title}"
        );
        assert!(long.starts_with(title.trim_end_matches('…')), "{title}");
        let one_word = "x".repeat(200);
        assert_eq!(title_from_question(&one_word).unwrap().chars().count(), MAX_TITLE_CHARS);
        assert_eq!(title_from_question(" \n "), None);
    }
}
