//! What llm-service decides: request validation, the egress check, retries before the first
//! token, the three timeouts, reading the provider's stream, and the overhead metrics.

use std::borrow::Cow;
use std::time::Duration;

use parley_proto::llm::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;
use tracing::Instrument;
use url::Url;

use crate::egress::EgressPolicy;
use crate::error::Error;
use crate::openai::{self, ChatCompletionRequest, Role};
use crate::provider::{ApiKey, Incompatibility, ProviderClient, ProviderSettings, read_limited, seconds};
use crate::sse::{Event, SseParser};
use crate::{Config, RetrySettings};

/// The largest single SSE event accepted (a chunk is a few hundred bytes).
const MAX_EVENT_SIZE: usize = 4 << 20;
/// The largest non-streamed completion accepted.
const MAX_COMPLETION_BODY: usize = 16 << 20;

/// The sending half of a StreamChat response.
pub type ChunkSender = mpsc::Sender<Result<pb::StreamChatResponse, Status>>;

/// A validated StreamChat request.
pub struct ChatRequest {
    pub provider: ProviderSettings,
    /// The OpenAI request body.
    pub body: ChatCompletionRequest,
}

pub struct LlmService {
    client: ProviderClient,
    policy: EgressPolicy,
    config: Config,
}

impl LlmService {
    pub fn new(config: Config) -> Result<Self, Error> {
        let policy = EgressPolicy::new(config.allow_private_networks);
        let client = ProviderClient::new(
            policy,
            config.connect_timeout,
            config.extra_ca_certs.as_deref(),
            config.echo_private_provider_errors,
        )?;
        Ok(Self { client, policy, config })
    }

    /// Checks the provider settings of a request. `model_required`: StreamChat and
    /// CheckProvider need one, ListModels does not.
    pub fn provider_settings(
        &self,
        provider: Option<pb::Provider>,
        model_required: bool,
    ) -> Result<ProviderSettings, Error> {
        let provider = provider.ok_or_else(|| invalid("provider", "is required"))?;
        let base_url = provider.base_url.trim();
        if base_url.is_empty() {
            return Err(invalid("provider.base_url", "is required"));
        }
        let base_url = Url::parse(base_url).map_err(|e| {
            invalid(
                "provider.base_url",
                format!("is not a URL ({e}), e.g. https://api.openai.com/v1"),
            )
        })?;
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(invalid(
                "provider.base_url",
                "must not contain credentials; put the key in the API key",
            ));
        }
        self.policy
            .check_url(&base_url)
            .map_err(|denied| Error::EgressDenied(denied.0))?;
        if !provider.api_key.chars().all(|c| c.is_ascii_graphic()) {
            // It goes into a header. Never echo the key itself.
            return Err(invalid(
                "provider.api_key",
                "must be printable ASCII without spaces or line breaks",
            ));
        }
        let model = provider.model.trim().to_string();
        if model_required && model.is_empty() {
            return Err(invalid("provider.model", "is required"));
        }
        if model.len() > 256 {
            return Err(invalid("provider.model", "must be at most 256 characters"));
        }
        Ok(ProviderSettings {
            base_url,
            api_key: ApiKey::new(provider.api_key),
            model,
        })
    }

    pub fn chat_request(&self, request: pb::StreamChatRequest) -> Result<ChatRequest, Error> {
        let provider = self.provider_settings(request.provider, true)?;
        if request.messages.is_empty() {
            return Err(invalid("messages", "at least one message is required"));
        }
        let mut messages = Vec::with_capacity(request.messages.len());
        for (index, message) in request.messages.iter().enumerate() {
            let role = match pb::ChatRole::try_from(message.role) {
                Ok(pb::ChatRole::System) => Role::System,
                Ok(pb::ChatRole::User) => Role::User,
                Ok(pb::ChatRole::Assistant) => Role::Assistant,
                _ => {
                    return Err(invalid(
                        "messages.role",
                        format!("message {index} needs a role: system, user or assistant"),
                    ));
                }
            };
            messages.push(openai::message(role, message.content.clone()));
        }
        let mut body = openai::streaming_request(provider.model.clone(), messages);
        let params = request.params.unwrap_or_default();
        if let Some(temperature) = params.temperature {
            pb::check_temperature(temperature).map_err(|reason| invalid("params.temperature", reason))?;
            body.temperature = Some(temperature as f32);
        }
        if let Some(top_p) = params.top_p {
            if !(0.0..=1.0).contains(&top_p) {
                return Err(invalid("params.top_p", "must be between 0 and 1"));
            }
            body.top_p = Some(top_p as f32);
        }
        if let Some(max_tokens) = params.max_tokens {
            if max_tokens < 1 {
                return Err(invalid("params.max_tokens", "must be at least 1"));
            }
            set_max_tokens(&mut body, max_tokens.unsigned_abs());
        }
        Ok(ChatRequest { provider, body })
    }

    /// Runs one generation into `tx` until it ends or the caller goes away. When the caller
    /// drops the stream, `tx` closes and the provider request is dropped at once, which closes
    /// its connection.
    pub async fn stream_chat(&self, request: ChatRequest, tx: ChunkSender) {
        let span = tracing::info_span!(
            "llm.stream_chat",
            provider = %request.provider.host(),
            model = %request.provider.model,
            attempts = tracing::field::Empty,
            ttft_ms = tracing::field::Empty,
            provider_wait_ms = tracing::field::Empty,
            caller_wait_ms = tracing::field::Empty,
            added_latency_ms = tracing::field::Empty,
            total_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        async move {
            let mut metrics = StreamMetrics::new();
            let result = tokio::select! {
                biased;
                () = tx.closed() => Ok(Outcome::Cancelled),
                result = self.generate(&request, &tx, &mut metrics) => result,
            };
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(%error, "generation failed");
                    metrics.deliver(&tx, Err(error.into())).await;
                    Outcome::Failed
                }
            };
            metrics.record(outcome);
        }
        .instrument(span)
        .await;
    }

    async fn generate(
        &self,
        request: &ChatRequest,
        tx: &ChunkSender,
        metrics: &mut StreamMetrics,
    ) -> Result<Outcome, Error> {
        let first_token_deadline = metrics.started + self.config.first_token_timeout;
        let first_token_timeout = || {
            Error::Timeout(format!(
                "{} sent no answer within {} (the first-token timeout)",
                request.provider.host(),
                seconds(self.config.first_token_timeout)
            ))
        };
        let response = self
            .send_with_retries(request, first_token_deadline, metrics)
            .await?
            .ok_or_else(first_token_timeout)?;

        // Anything but JSON is read as SSE: some servers label their stream text/plain.
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let mut response = response;
        let mut reader = StreamReader::new(self.config.max_answer_bytes, self.client.may_echo(&response));
        if is_json {
            // A server that ignored `stream: true` answers one JSON completion.
            let waited = Instant::now();
            let read = read_limited(&mut response, MAX_COMPLETION_BODY);
            let (body, complete) = tokio::time::timeout_at(first_token_deadline, read)
                .await
                .map_err(|_| first_token_timeout())?
                .map_err(|e| self.broken_stream(request, &reader, &request.provider.cause(&e)))?;
            metrics.provider_wait += waited.elapsed();
            if !complete {
                return Err(not_openai(request));
            }
            let completion: openai::Completion = serde_json::from_slice(&body).map_err(|_| not_openai(request))?;
            let Some(choice) = completion.choices.first() else {
                return Err(not_openai(request));
            };
            reader.completion(choice, completion.usage.as_ref(), tx, metrics).await;
            return Ok(reader.finish(tx, metrics).await);
        }

        let mut parser = SseParser::new();
        loop {
            let deadline = if reader.received_token {
                Instant::now() + self.config.idle_timeout
            } else {
                first_token_deadline
            };
            let waited = Instant::now();
            let next = tokio::time::timeout_at(deadline, response.chunk()).await;
            metrics.provider_wait += waited.elapsed();
            let bytes = match next {
                Err(_) if reader.received_token => {
                    return Err(Error::Timeout(format!(
                        "{} stopped sending for {} mid-answer (the idle timeout)",
                        request.provider.host(),
                        seconds(self.config.idle_timeout)
                    )));
                }
                Err(_) => return Err(first_token_timeout()),
                Ok(Err(error)) if reader.finish_reason.is_none() => {
                    return Err(self.broken_stream(request, &reader, &request.provider.cause(&error)));
                }
                // The answer was complete; only the usage or `[DONE]` went missing.
                Ok(Err(_)) => return Ok(reader.finish(tx, metrics).await),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(bytes))) => bytes,
            };
            let events = parser.push(&bytes);
            if parser.pending_len() > MAX_EVENT_SIZE {
                return Err(Error::Unavailable(format!(
                    "{} sent a stream event larger than {} MiB",
                    request.provider.host(),
                    MAX_EVENT_SIZE >> 20
                )));
            }
            for event in events {
                match reader.event(request, &event, tx, metrics).await? {
                    Step::Continue => {}
                    Step::Done => return Ok(reader.finish(tx, metrics).await),
                    Step::CallerGone => return Ok(Outcome::Cancelled),
                }
            }
        }

        // The provider closed the stream. A last event without its blank line still counts
        // (some servers send `data: [DONE]` and close).
        if let Some(event) = parser.finish() {
            match reader.event(request, &event, tx, metrics).await? {
                Step::Continue => {}
                Step::Done => return Ok(reader.finish(tx, metrics).await),
                Step::CallerGone => return Ok(Outcome::Cancelled),
            }
        }
        if reader.finish_reason.is_some() {
            // Complete; only the usage or `[DONE]` went missing.
            return Ok(reader.finish(tx, metrics).await);
        }
        if reader.chunks == 0 && !reader.received_token {
            // Not one event: an HTML page or some other API, not a broken stream.
            return Err(not_openai(request));
        }
        Err(self.broken_stream(request, &reader, "the connection closed before the answer finished"))
    }

    /// Sends the request, retrying 429, 5xx and connect errors with backoff (or the provider's
    /// `Retry-After`, up to the cap) while the first-token deadline allows, and sending a
    /// compatible request once when the provider refuses a field it can do without. `None`:
    /// the deadline passed.
    async fn send_with_retries(
        &self,
        request: &ChatRequest,
        first_token_deadline: Instant,
        metrics: &mut StreamMetrics,
    ) -> Result<Option<reqwest::Response>, Error> {
        let retry: &RetrySettings = &self.config.retry;
        let mut body = Cow::Borrowed(&request.body);
        let mut retries_done = 0;
        loop {
            metrics.attempts += 1;
            let waited = Instant::now();
            let sent =
                tokio::time::timeout_at(first_token_deadline, self.client.send_chat(&request.provider, &body)).await;
            metrics.provider_wait += waited.elapsed();
            let failure = match sent {
                Err(_) => return Ok(None),
                Ok(Ok(response)) => return Ok(Some(response)),
                Ok(Err(failure)) => failure,
            };
            // Once per field: the compatible body no longer has it.
            if let Some((incompatibility, compatible)) = failure
                .incompatibility
                .and_then(|i| compatible_body(&body, i).map(|b| (i, b)))
            {
                tracing::info!(?incompatibility, error = %failure.error, "the provider refused a field; sending a compatible request");
                body = Cow::Owned(compatible);
                continue;
            }
            if !failure.retryable || retries_done >= retry.max_retries {
                return Err(failure.error);
            }
            let delay = match failure.retry_after {
                // The provider said when; longer than the cap is not waited for here: the
                // error carries the delay (RetryInfo) and the caller decides.
                Some(asked) if asked > retry.max_delay => return Err(failure.error),
                Some(asked) => asked,
                None => retry
                    .initial_backoff
                    .saturating_mul(2u32.saturating_pow(retries_done))
                    .min(retry.max_delay),
            };
            if Instant::now() + delay >= first_token_deadline {
                return Err(failure.error);
            }
            tracing::info!(attempt = metrics.attempts, delay_ms = delay.as_millis() as u64, error = %failure.error, "retrying the provider");
            let waited = Instant::now();
            tokio::time::sleep(delay).await;
            metrics.provider_wait += waited.elapsed();
            retries_done += 1;
        }
    }

    fn broken_stream(&self, request: &ChatRequest, reader: &StreamReader, cause: &str) -> Error {
        Error::Unavailable(format!(
            "{}'s stream broke off after {} chunks, before the answer finished: {cause}",
            request.provider.host(),
            reader.chunks
        ))
    }

    /// ListModels: the ids the provider lists, within the request timeout.
    pub async fn list_models(&self, provider: &ProviderSettings) -> Result<Vec<String>, Error> {
        let span = tracing::info_span!("llm.list_models", provider = %provider.host());
        tokio::time::timeout(self.config.request_timeout, self.client.list_models(provider))
            .instrument(span)
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "{} did not answer /models within {}",
                    provider.host(),
                    seconds(self.config.request_timeout)
                ))
            })?
    }

    /// CheckProvider: whether the provider answers /models and lists the model, in words a
    /// person can act on, claiming no more than that: /models is public on some providers
    /// (OpenRouter) and Ollama and vLLM ignore keys, so a listing does not prove the key.
    /// Refused URLs stay errors (PERMISSION_DENIED); what the provider says comes back as
    /// `ok: false` with a message.
    pub async fn check_provider(&self, provider: &ProviderSettings) -> Result<pb::CheckProviderResponse, Error> {
        let started = Instant::now();
        let listed = self.list_models(provider).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let model = &provider.model;
        let host = provider.host();
        let (ok, model_available, message) = match listed {
            Ok(ids) if ids.iter().any(|id| same_model(id, model)) => (
                true,
                true,
                format!(
                    "Connected to {host}, which lists model `{model}`. Some providers list their models \
                     to anyone, so a wrong API key may only show in the first chat."
                ),
            ),
            Ok(ids) => {
                let mut listed: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
                if ids.len() > 10 {
                    listed.push("…");
                }
                let listed = if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed.join(", ")
                };
                (
                    false,
                    false,
                    format!("Connected to {host}, but it does not list model `{model}`. It lists: {listed}."),
                )
            }
            Err(error @ (Error::EgressDenied(_) | Error::InvalidField { .. })) => return Err(error),
            Err(Error::KeyRejected(message)) => (
                false,
                false,
                format!("{host} rejected the request: {message}. Check the API key."),
            ),
            Err(Error::Timeout(message)) => (
                false,
                false,
                format!("{message}. Check the base URL and that the provider is running."),
            ),
            Err(Error::Unavailable(message)) => (false, false, format!("Cannot reach the provider: {message}.")),
            Err(Error::Overloaded { message, retry_after }) => (
                false,
                false,
                format!(
                    "Cannot reach the provider: {message}; it expects to be back in {}.",
                    seconds(retry_after)
                ),
            ),
            Err(Error::AccountUnusable(message)) => (
                false,
                false,
                format!("{message}. Check the account's plan and billing with the provider."),
            ),
            Err(Error::RateLimited { message, retry_after }) => (
                false,
                false,
                format!(
                    "{host} is rate limiting this key ({message}); try again in {}.",
                    seconds(retry_after)
                ),
            ),
            Err(other) => (false, false, format!("{other}.")),
        };
        Ok(pb::CheckProviderResponse {
            ok,
            latency_ms,
            model_available,
            message,
        })
    }
}

/// The user's output limit, as `max_tokens`: OpenAI deprecated it for
/// `max_completion_tokens`, but most OpenAI-compatible servers (DeepSeek, vLLM, Ollama,
/// llama.cpp) know only `max_tokens`; a model that refuses it gets the other (see
/// [`compatible_body`]).
#[allow(deprecated)]
fn set_max_tokens(body: &mut ChatCompletionRequest, max_tokens: u32) {
    body.max_tokens = Some(max_tokens);
}

/// `body` without what the provider refused, if it has it: no `stream_options` (the usage
/// may then be missing), or `max_completion_tokens` instead of `max_tokens`.
#[allow(deprecated)]
fn compatible_body(body: &ChatCompletionRequest, incompatibility: Incompatibility) -> Option<ChatCompletionRequest> {
    let mut compatible = body.clone();
    match incompatibility {
        Incompatibility::StreamOptions => {
            compatible.stream_options.take()?;
        }
        Incompatibility::MaxTokens => {
            compatible.max_completion_tokens = Some(compatible.max_tokens.take()?);
        }
    }
    Some(compatible)
}

/// Whether a listed model id names `model`: Ollama lists `llama3.2:latest` for what people
/// (and its own chat endpoint) call `llama3.2`.
fn same_model(listed: &str, model: &str) -> bool {
    listed == model || listed.strip_suffix(":latest") == Some(model) || model.strip_suffix(":latest") == Some(listed)
}

fn invalid(field: &'static str, description: impl Into<String>) -> Error {
    Error::InvalidField {
        field,
        description: description.into(),
    }
}

fn not_openai(request: &ChatRequest) -> Error {
    Error::Unavailable(format!(
        "{} did not answer like an OpenAI-compatible API; check the base URL (usually ending in /v1)",
        request.provider.host()
    ))
}

enum Step {
    Continue,
    Done,
    CallerGone,
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Finished,
    /// Cut off at `max_answer_bytes`, ended as on `length`.
    Truncated,
    Cancelled,
    Failed,
}

/// The finish reason of an answer cut off at the size cap: what a provider says when it
/// stops at `max_tokens`, so callers treat both alike.
const TRUNCATED_REASON: &str = "length";

/// What a stream has delivered so far.
struct StreamReader {
    received_token: bool,
    chunks: u64,
    finish_reason: Option<String>,
    usage: Option<pb::Usage>,
    /// Bytes the answer may still grow by (reasoning and content together).
    room: usize,
    /// The answer reached the size cap and was cut there.
    truncated: bool,
    /// Whether the provider's own words may be passed on ([`ProviderClient::may_echo`]).
    echo_errors: bool,
}

impl StreamReader {
    fn new(max_answer_bytes: usize, echo_errors: bool) -> Self {
        Self {
            echo_errors,
            received_token: false,
            chunks: 0,
            finish_reason: None,
            usage: None,
            room: max_answer_bytes,
            truncated: false,
        }
    }

    /// Sends a delta, cut to the room the answer has left; `Done` once the cap is reached,
    /// so the provider request is dropped and the answer ends as on `length`.
    async fn text(
        &mut self,
        tx: &ChunkSender,
        text: &str,
        chunk: fn(String) -> pb::stream_chat_response::Chunk,
        metrics: &mut StreamMetrics,
    ) -> Step {
        if text.is_empty() {
            return Step::Continue;
        }
        let fits = char_floor(text, self.room);
        let part = &text[..fits];
        self.room -= part.len();
        if !part.is_empty() && !self.send(tx, chunk(part.to_string()), metrics).await {
            return Step::CallerGone;
        }
        if part.len() < text.len() {
            self.truncated = true;
            self.finish_reason = Some(TRUNCATED_REASON.to_string());
            tracing::info!(
                "the answer reached --max-answer-bytes; ending it as on length and dropping the provider request"
            );
            return Step::Done;
        }
        Step::Continue
    }

    async fn event(
        &mut self,
        request: &ChatRequest,
        event: &Event,
        tx: &ChunkSender,
        metrics: &mut StreamMetrics,
    ) -> Result<Step, Error> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Step::Done);
        }
        if data.is_empty() {
            return Ok(Step::Continue);
        }
        let chunk: openai::Chunk = serde_json::from_str(data).map_err(|_| {
            Error::Unavailable(format!(
                "{} sent a stream event that is not JSON of a chat completion chunk after {} chunks",
                request.provider.host(),
                self.chunks
            ))
        })?;
        if event.name == "error" || chunk.error.is_some() {
            let message = crate::provider::error_message(data.as_bytes()).unwrap_or_default();
            let message = request.provider.api_key.scrub(&message);
            let message = if self.echo_errors {
                message
            } else {
                tracing::debug!(provider_says = %message, "a provider on a private address failed mid-stream; its text is not passed on");
                "the text of a provider on a private address is not passed on".to_string()
            };
            return Err(Error::Unavailable(format!(
                "{} reported an error mid-stream: {message}",
                request.provider.host(),
            )));
        }
        self.chunks += 1;
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.into());
        }
        let Some(choice) = chunk.first_choice() else {
            return Ok(Step::Continue);
        };
        let delta = &choice.delta;
        if let Some(reasoning) = delta.reasoning() {
            match self
                .text(tx, reasoning, pb::stream_chat_response::Chunk::ReasoningDelta, metrics)
                .await
            {
                Step::Continue => {}
                end => return Ok(end),
            }
        }
        if let Some(content) = &delta.content {
            match self
                .text(tx, content, pb::stream_chat_response::Chunk::ContentDelta, metrics)
                .await
            {
                Step::Continue => {}
                end => return Ok(end),
            }
        }
        // `""` is read as none (see `openai::finish_reason`): a later null does not undo it.
        if let Some(reason) = &choice.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
        Ok(Step::Continue)
    }

    /// A non-streaming completion, sent as one delta of each kind.
    async fn completion(
        &mut self,
        choice: &openai::CompletionChoice,
        usage: Option<&openai::Usage>,
        tx: &ChunkSender,
        metrics: &mut StreamMetrics,
    ) {
        let message = &choice.message;
        self.usage = usage.map(Into::into);
        self.finish_reason = Some(choice.finish_reason.clone().unwrap_or_default());
        if let Some(reasoning) = message.reasoning()
            && !matches!(
                self.text(tx, reasoning, pb::stream_chat_response::Chunk::ReasoningDelta, metrics)
                    .await,
                Step::Continue
            )
        {
            return;
        }
        if let Some(content) = &message.content {
            self.text(tx, content, pb::stream_chat_response::Chunk::ContentDelta, metrics)
                .await;
        }
    }

    /// False when the caller has gone.
    async fn send(
        &mut self,
        tx: &ChunkSender,
        chunk: pb::stream_chat_response::Chunk,
        metrics: &mut StreamMetrics,
    ) -> bool {
        if !self.received_token {
            self.received_token = true;
            metrics.first_token = Some(metrics.started.elapsed());
        }
        metrics
            .deliver(tx, Ok(pb::StreamChatResponse { chunk: Some(chunk) }))
            .await
    }

    async fn finish(&mut self, tx: &ChunkSender, metrics: &mut StreamMetrics) -> Outcome {
        let finish = pb::Finish {
            reason: self.finish_reason.take().unwrap_or_default(),
            usage: self.usage.take(),
        };
        let chunk = Some(pb::stream_chat_response::Chunk::Finish(finish));
        if !metrics.deliver(tx, Ok(pb::StreamChatResponse { chunk })).await {
            Outcome::Cancelled
        } else if self.truncated {
            Outcome::Truncated
        } else {
            Outcome::Finished
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn char_floor(text: &str, max: usize) -> usize {
    if max >= text.len() {
        return text.len();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

impl From<&openai::Usage> for pb::Usage {
    fn from(usage: &openai::Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }
    }
}

/// Parley's own overhead: the time to first token, and the added latency (the total minus
/// the time spent waiting on the provider and on the caller), recorded on the
/// `llm.stream_chat` span.
struct StreamMetrics {
    started: Instant,
    attempts: u32,
    first_token: Option<Duration>,
    provider_wait: Duration,
    /// Time blocked handing chunks to a caller that reads slower than the provider sends
    /// (the stream's buffer was full): the caller's pace, not Parley's overhead.
    caller_wait: Duration,
}

impl StreamMetrics {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            attempts: 0,
            first_token: None,
            provider_wait: Duration::ZERO,
            caller_wait: Duration::ZERO,
        }
    }

    /// Hands one message to the caller; false when the caller has gone.
    async fn deliver(&mut self, tx: &ChunkSender, message: Result<pb::StreamChatResponse, Status>) -> bool {
        let waited = Instant::now();
        let sent = tx.send(message).await.is_ok();
        self.caller_wait += waited.elapsed();
        sent
    }

    fn record(&self, outcome: Outcome) {
        let total = self.started.elapsed();
        let added = total.saturating_sub(self.provider_wait + self.caller_wait);
        let span = tracing::Span::current();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        span.record("attempts", self.attempts);
        if let Some(first_token) = self.first_token {
            span.record("ttft_ms", ms(first_token));
        }
        span.record("provider_wait_ms", ms(self.provider_wait));
        span.record("caller_wait_ms", ms(self.caller_wait));
        span.record("added_latency_ms", ms(added));
        span.record("total_ms", ms(total));
        span.record("outcome", format!("{outcome:?}").to_lowercase());
        tracing::info!(
            outcome = ?outcome,
            attempts = self.attempts,
            ttft_ms = self.first_token.map(ms),
            total_ms = ms(total),
            provider_wait_ms = ms(self.provider_wait),
            caller_wait_ms = ms(self.caller_wait),
            added_latency_ms = ms(added),
            "stream ended"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cut_on_character_boundaries() {
        assert_eq!(char_floor("abc", 10), 3);
        assert_eq!(char_floor("abc", 3), 3);
        assert_eq!(char_floor("abc", 2), 2);
        assert_eq!(char_floor("abc", 0), 0);
        // "é" is two bytes and "語" three: a cut inside one keeps none of it.
        assert_eq!(char_floor("aé", 2), 1);
        assert_eq!(char_floor("語語", 5), 3);
        assert_eq!(char_floor("語", 2), 0);
    }
}
