//! The generation task, detached from the request that started it: it calls the model,
//! appends the text to the log as it streams, saves progress every `persist_interval` (the
//! same write is the heartbeat and reads stops asked for through the row), and writes the end
//! with retries until it is stored. Only then are clients told COMPLETED and the session
//! freed; a first answer then gets its title.

use std::sync::Arc;
use std::time::Duration;

use parley_proto::chat::v1::chat_event::Event;
use parley_proto::llm::v1 as llm;
use parley_service_kit::database::now_millis;
use parley_service_kit::grpc_status::{self, Reason};
use parley_service_kit::trace_context::TraceHeaders;
use tokio_util::sync::CancellationToken;

use super::log::{Generation, StopReason, TextKind};
use super::registry::{GenerationRegistry, Reservation};
use super::settings::GenerationSettings;
use super::title::{self, TitleJob};
use crate::Error;
use crate::convert;
use crate::llm_client::LlmClient;
use crate::store::{ChatStore, FinishedAnswer, MessageStatus, SavedText};
use crate::usage::{UsageCharge, UsageMeter};
use crate::validation;

/// What kind of turn an answer is: what its end does to the conversation.
pub enum Turn {
    /// `SendMessage`: the first answer to a new question. An untitled session gets its title
    /// after it (`title`).
    NewQuestion { title: Option<TitleJob> },
    /// `RegenerateMessage` naming an answer: another version of it (a sibling under its
    /// question); the other versions stay, whatever this one's end.
    RegenerateAnswer,
    /// `RegenerateMessage` naming a question: answers it again (its answer may have been
    /// deleted, or have failed), as another version beside any answer it has.
    AnswerQuestion,
}

impl Turn {
    fn title(&self) -> Option<&TitleJob> {
        match self {
            Turn::NewQuestion { title } => title.as_ref(),
            Turn::RegenerateAnswer | Turn::AnswerQuestion => None,
        }
    }

    /// For logs.
    pub fn name(&self) -> &'static str {
        match self {
            Turn::NewQuestion { .. } => "new question",
            Turn::RegenerateAnswer => "regenerate answer",
            Turn::AnswerQuestion => "answer question",
        }
    }
}

/// Everything one generation task needs.
pub struct GenerationJob {
    pub generation: Arc<Generation>,
    pub store: ChatStore,
    pub llm: LlmClient,
    pub request: llm::StreamChatRequest,
    pub trace: TraceHeaders,
    pub settings: GenerationSettings,
    pub turn: Turn,
    /// Who the answer's tokens are charged to (`token_usage`), and at what price.
    pub usage: UsageMeter,
}

impl Reservation {
    /// Registers the generation and runs `job` as its own task.
    pub fn start(mut self, job: GenerationJob) -> Arc<Generation> {
        let generation = Arc::clone(&job.generation);
        self.register(&generation);
        let registry = Arc::clone(&self.registry);
        let span = tracing::info_span!(
            "generation",
            message_id = generation.message_id.0,
            session_id = generation.session_id.0,
            user_id = generation.user_id.0,
            trace_id = job.trace.trace_id().unwrap_or_default()
        );
        self.registry.tasks.spawn(tracing::Instrument::instrument(
            async move {
                let generation = Arc::clone(&job.generation);
                job.run(&registry).await;
                // A stored answer was marked finished and its session freed already, before
                // the title; an end that could not be stored gets both here. Closing the log
                // ends every follower.
                generation.mark_finished();
                generation.close();
                registry.forget(&generation);
            },
            span,
        ));
        generation
    }
}

enum Outcome {
    Complete(Option<llm::Usage>),
    /// The answer reached `max_answer_bytes`: it ends as at the model's own length limit.
    Cut,
    Stopped(StopReason),
    Failed {
        code: tonic::Code,
        message: String,
        reason: Option<Reason>,
    },
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
        let (row_status, usage, error, error_code, error_reason) = match &outcome {
            Outcome::Complete(usage) => (MessageStatus::Complete, *usage, String::new(), 0, None),
            Outcome::Cut => (
                MessageStatus::Complete,
                None,
                format!(
                    "the answer reached the maximum size of {} and was cut off here",
                    describe_bytes(self.settings.max_answer_bytes)
                ),
                0,
                None,
            ),
            Outcome::Stopped(reason) => (MessageStatus::Stopped, None, reason.note().to_owned(), 0, None),
            Outcome::Failed { code, message, reason } => {
                (MessageStatus::Failed, None, message.clone(), *code as i64, *reason)
            }
        };
        let answer = FinishedAnswer {
            content: &content,
            reasoning: &reasoning,
            status: row_status,
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
            error: &error,
            error_code,
            error_reason: error_reason.map(Reason::as_str).unwrap_or_default(),
            now: now_millis(),
        };
        let reported = usage.map(|u| (u.prompt_tokens, u.completion_tokens));
        let charge = self
            .usage
            .charge(reported, &format!("{reasoning}{content}"), answer.now);
        // The session stays claimed until its answer is stored: a next question must not be
        // answered without this answer in its context.
        if let Err(e) = self.persist_final(&answer, charge.as_ref(), &registry.shutdown).await {
            // Never COMPLETED for an answer that is not stored. The row stays STREAMING with
            // the text of its last progress write until the abandoned-answer sweep marks it
            // FAILED. The task's end frees the session and closes the log.
            tracing::error!(error = %e, status = row_status.as_str(), "could not store the finished answer");
            generation.push(convert::error_event(
                tonic::Code::Unavailable,
                "the answer could not be stored: the database is unavailable",
                None,
            ));
            return;
        }
        generation.push(match &outcome {
            // The row as it was just written: no need to read it back.
            Outcome::Complete(_) | Outcome::Cut | Outcome::Stopped(_) => {
                Event::Completed(generation.final_message(&answer))
            }
            Outcome::Failed { code, message, reason } => {
                tracing::warn!(code = ?code, error = %message, "generation failed");
                convert::error_event(*code, message, *reason)
            }
        });
        // The session is free for the next message as soon as the answer is stored; the
        // title (below) is extra, which followers, late ones too, still get.
        registry.release_session(&generation);
        generation.mark_finished();
        tracing::info!(
            status = row_status.as_str(),
            chars = content.chars().count(),
            "generation ended"
        );

        let titled = match (&outcome, self.turn.title()) {
            (Outcome::Complete(_) | Outcome::Cut, Some(title)) => tokio::select! {
                titled = title::generate(&self.store, &self.llm, &self.trace, &self.request, &generation, title, &content) => titled,
                _ = registry.shutdown.cancelled() => None,
            },
            (Outcome::Failed { .. } | Outcome::Stopped(_), Some(title)) => {
                title::from_question(&self.store, &generation, title).await
            }
            _ => None,
        };
        if let Some(session) = titled {
            generation.push(Event::SessionUpdated(session));
        }
    }

    /// Calls the model and appends what it says to the log until it finishes, fails, is
    /// stopped or runs out of time; saves progress meanwhile.
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
            reason: None,
        };
        let start = self.llm.stream_chat(self.request.clone(), &self.trace);
        tokio::pin!(start);
        let mut stream = None;
        let mut persist = tokio::time::interval(self.settings.persist_interval);
        persist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        persist.reset();
        let mut unsaved = false;
        let mut saved = Saved::default();
        let mut last_write = tokio::time::Instant::now();
        let max_bytes = self.settings.max_answer_bytes;
        loop {
            tokio::select! {
                biased;
                _ = generation.stop_requested() => {
                    return Outcome::Stopped(generation.stopped_for().unwrap_or(StopReason::User));
                }
                _ = &mut deadline => return timed_out(),
                _ = persist.tick() => {
                    // New text, or a heartbeat while the model is quiet (it may think for
                    // minutes before the first token). The same write reads stop requests
                    // made through other instances, so a quiet answer sees them within a
                    // heartbeat; no other query looks for them.
                    if !unsaved && last_write.elapsed() < self.settings.heartbeat_interval {
                        continue;
                    }
                    match self.save_progress(&mut saved).await {
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
                            unsaved = true;
                            if !generation.push_text(TextKind::Content, &text, max_bytes) {
                                return Outcome::Cut;
                            }
                        }
                        llm::stream_chat_response::Chunk::ReasoningDelta(text) => {
                            unsaved = true;
                            if !generation.push_text(TextKind::Reasoning, &text, max_bytes) {
                                return Outcome::Cut;
                            }
                        }
                        llm::stream_chat_response::Chunk::Finish(finish) => return Outcome::Complete(finish.usage),
                    },
                    Ok(Some(llm::StreamChatResponse { chunk: None })) => {}
                    Ok(None) => {
                        return Outcome::Failed {
                            code: tonic::Code::Unavailable,
                            message: "the provider's stream ended before the answer was complete".to_owned(),
                            reason: Some(Reason::ProviderUnreachable),
                        };
                    }
                    Err(status) => return failed(status),
                },
            }
        }
    }

    /// Appends what the answer gained since the last save; should the row not hold what this
    /// generation saved before (a save whose commit went unconfirmed), writes the whole text.
    /// Answers whether a stop was asked for through the row.
    async fn save_progress(&self, saved: &mut Saved) -> Result<bool, sqlx::Error> {
        let generation = &self.generation;
        let (content, reasoning) = generation.text_since(saved.content_bytes, saved.reasoning_bytes);
        let appended = self
            .store
            .append_progress(generation.message_id, &content, &reasoning, saved.stored, now_millis())
            .await?;
        if let Some(stop_asked) = appended {
            saved.advance(&content, &reasoning);
            return Ok(stop_asked);
        }
        let (content, reasoning) = generation.text();
        let stop_asked = self
            .store
            .save_progress(generation.message_id, &content, &reasoning, now_millis())
            .await?;
        *saved = Saved::default();
        saved.advance(&content, &reasoning);
        Ok(stop_asked)
    }

    /// Stores the final state. A database that refuses (down, locked, failing over) is tried
    /// again with growing pauses until it takes the write, for up to the maximum duration of
    /// a generation; shutdown allows one more try.
    async fn persist_final(
        &self,
        answer: &FinishedAnswer<'_>,
        charge: Option<&UsageCharge>,
        shutdown: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
        let give_up_at = tokio::time::Instant::now() + self.settings.max_duration;
        let mut backoff = FINAL_WRITE_FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            let error = match self
                .store
                .finish_answer(self.generation.message_id, answer, charge)
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
}

/// How much of the answer its row holds: bytes to find the new text by, characters for the
/// row's check.
#[derive(Default)]
struct Saved {
    content_bytes: usize,
    reasoning_bytes: usize,
    stored: SavedText,
}

impl Saved {
    fn advance(&mut self, content: &str, reasoning: &str) {
        self.content_bytes += content.len();
        self.reasoning_bytes += reasoning.len();
        self.stored.content_chars += content.chars().count() as i64;
        self.stored.reasoning_chars += reasoning.chars().count() as i64;
    }
}

/// "256 KiB", "1 MiB", "1000 bytes".
fn describe_bytes(bytes: usize) -> String {
    const KIB: usize = 1024;
    if bytes >= KIB * KIB && bytes.is_multiple_of(KIB * KIB) {
        format!("{} MiB", bytes / (KIB * KIB))
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
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
        reason: grpc_status::reason(&status),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

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
        assert_eq!(describe_bytes(256 * 1024), "256 KiB");
        assert_eq!(describe_bytes(2 * 1024 * 1024), "2 MiB");
        assert_eq!(describe_bytes(1000), "1000 bytes");
    }
}
