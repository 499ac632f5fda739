//! A fake OpenAI-compatible provider: a real HTTP server (axum) on `127.0.0.1`, for every test
//! in the project that needs an LLM, and for demos and benchmarks (the `fake-openai` binary).
//!
//! It serves
//! - `POST /v1/chat/completions`, streaming (SSE, `data: {chunk}` lines ending with
//!   `data: [DONE]`) and non-streaming, the way OpenAI does: `Authorization: Bearer <key>` is
//!   checked (401 `invalid_api_key` otherwise), an unknown model answers 404
//!   `model_not_found`, usage is sent as a last chunk when the request asks for it with
//!   `stream_options.include_usage`;
//! - `GET /v1/models`, listing the configured models (by default `fake-model` and
//!   `fake-reasoner`).
//!
//! # Scripting replies
//! Each chat request that passes the checks (key, model, messages, rejected fields) takes
//! the next [`Reply`] from a queue ([`FakeOpenAi::push_reply`]); when
//! the queue is empty it answers the default reply: `You said: <last user message>. This is
//! the fake provider answering.`, streamed word by word (see [`default_reply_text`]).
//!
//! ```ignore
//! let fake = FakeOpenAi::start().await;
//! fake.push_reply(Reply::text("Hello there").chunk_size(3).chunk_delay(Duration::from_millis(5)));
//! fake.push_reply(Reply::text("thinking done").reasoning("Let me think."));
//! fake.push_reply(Reply::status(401, "bad key"));
//! fake.push_reply(Reply::rate_limited(Duration::from_secs(2)));
//! fake.push_reply(Reply::text("one two three four").cut_after(2)); // connection dropped after 2 chunks
//! // … point the client at fake.base_url() with fake.api_key() …
//! assert_eq!(fake.requests().len(), 5);
//! ```
//!
//! Client disconnects are observable: [`FakeOpenAi::open_streams`] counts streams being sent,
//! [`FakeOpenAi::disconnects`] counts streams the client closed before their end, and
//! [`FakeOpenAi::wait_for_disconnect`] waits for the first one.
//!
//! # Control endpoint (for other processes, e.g. the browser tests)
//! - `POST /__fake/replies` with one [`Reply`] as JSON, or an array of them, appends to the
//!   queue. Fields (all optional): `text` (string; absent = the default echo reply),
//!   `reasoning` (string, sent first as `reasoning_content` deltas), `chunk_size` (characters
//!   per chunk; absent = one word per chunk), `headers_delay_ms`, `first_chunk_delay_ms`,
//!   `chunk_delay_ms` (absent = the server's default), `finish_reason` (string or `null`;
//!   default `"stop"`), `chunk_finish_reason` (the `finish_reason` of the chunks before the
//!   last; default `null`), `usage` (bool, default true), `status` (HTTP status for an error
//!   reply, e.g. 401, 429, 500), `message` (the error message), `error_type` and `error_code`
//!   (the error's `type` and `code`, e.g. `insufficient_quota`), `retry_after_secs` (sent as
//!   `Retry-After`), `retry_after` (sent as `Retry-After` verbatim, e.g. `"0.5"` or an HTTP
//!   date), `cut_after` (drop the connection after that many chunks), `keep_alive` (send
//!   `: keep-alive` comment lines between chunks), `done` (bool, default true: send
//!   `data: [DONE]`), `endless` (bool: after the reasoning, repeat the text's chunks forever,
//!   never finishing, until the client goes away: a model stuck in a loop; streaming only).
//!   Example: `{"text": "Hi!", "chunk_delay_ms": 50}` or `[{"status": 429, "retry_after_secs": 1}, {}]`.
//! - `DELETE /__fake/replies` clears the queue.
//! - `GET /__fake/requests` returns the recorded requests as JSON; `DELETE /__fake/requests`
//!   clears them.
//!
//! The control endpoint needs no key: the fake listens on loopback and holds nothing secret.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

/// The models listed when none are configured.
pub const DEFAULT_MODELS: &[&str] = &["fake-model", "fake-reasoner"];

/// How the fake is started; [`FakeOpenAi::start`] uses the defaults.
#[derive(Clone, Debug)]
pub struct FakeOpenAiConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The key clients must send as `Authorization: Bearer <key>`; `None` generates a unique one.
    pub api_key: Option<String>,
    /// The models `/v1/models` lists and chat completions accept.
    pub models: Vec<String>,
    /// The delay between chunks of replies that do not set their own.
    pub chunk_delay: Duration,
    /// Request fields this server refuses with 400 when a chat request carries them, as
    /// some OpenAI-compatible servers refuse `stream_options` and OpenAI's reasoning models
    /// refuse `max_tokens`.
    pub rejected_fields: Vec<String>,
}

impl Default for FakeOpenAiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: None,
            models: DEFAULT_MODELS.iter().map(|m| m.to_string()).collect(),
            chunk_delay: Duration::ZERO,
            rejected_fields: Vec::new(),
        }
    }
}

/// One scripted answer to a chat completion request. Build with [`Reply::text`],
/// [`Reply::echo`], [`Reply::status`] or [`Reply::rate_limited`], then adjust.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    /// The answer's text; `None` answers the default echo text.
    pub text: Option<String>,
    /// Reasoning sent before the text as `reasoning_content` deltas (DeepSeek style).
    pub reasoning: Option<String>,
    /// Characters per chunk; `None` sends one word (with its trailing space) per chunk.
    pub chunk_size: Option<usize>,
    /// Delay before the response headers are sent.
    pub headers_delay_ms: u64,
    /// Delay between the headers and the first chunk.
    pub first_chunk_delay_ms: u64,
    /// Delay between chunks; `None` uses the server's default.
    pub chunk_delay_ms: Option<u64>,
    /// The last chunk's `finish_reason`; `None` sends `null`.
    pub finish_reason: Option<String>,
    /// The `finish_reason` of every chunk before the last; `None` sends `null` (some servers
    /// send `""` instead).
    pub chunk_finish_reason: Option<String>,
    /// Send usage when the request asks for it.
    pub usage: bool,
    /// An HTTP error status instead of an answer (401, 404, 429, 500, …).
    pub status: Option<u16>,
    /// The error's message.
    pub message: Option<String>,
    /// The error's `type`; `None` picks OpenAI's for the status (`insufficient_quota` is
    /// OpenAI's 429 for an exhausted balance).
    pub error_type: Option<String>,
    /// The error's `code`; `None` picks OpenAI's for the status.
    pub error_code: Option<String>,
    /// Sent as the `Retry-After` header (seconds).
    pub retry_after_secs: Option<u64>,
    /// Sent as the `Retry-After` header verbatim (any string: `0.5`, `1e20`, an HTTP date);
    /// wins over `retry_after_secs`.
    pub retry_after: Option<String>,
    /// Drop the connection, without ending the response, after this many chunks.
    pub cut_after: Option<usize>,
    /// Send `: keep-alive` SSE comments before every chunk.
    pub keep_alive: bool,
    /// End the stream with `data: [DONE]`.
    pub done: bool,
    /// Never end: after the reasoning, the text's chunks are sent over and over (no finish
    /// reason, no usage, no `[DONE]`) until the client goes away. Streaming requests only: a
    /// non-streamed answer is the text once.
    pub endless: bool,
}

impl Default for Reply {
    fn default() -> Self {
        Self {
            text: None,
            reasoning: None,
            chunk_size: None,
            headers_delay_ms: 0,
            first_chunk_delay_ms: 0,
            chunk_delay_ms: None,
            finish_reason: Some("stop".to_string()),
            chunk_finish_reason: None,
            usage: true,
            status: None,
            message: None,
            error_type: None,
            error_code: None,
            retry_after_secs: None,
            retry_after: None,
            cut_after: None,
            keep_alive: false,
            done: true,
            endless: false,
        }
    }
}

impl Reply {
    /// Answers `text`, one word per chunk, finishing with `stop`.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// The default answer (`You said: …`), adjustable like any other.
    pub fn echo() -> Self {
        Self::default()
    }

    /// An HTTP error with an OpenAI-style error body carrying `message`.
    pub fn status(status: u16, message: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// 429 with `Retry-After` (whole seconds, rounded up).
    pub fn rate_limited(retry_after: Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self {
            status: Some(429),
            message: Some("Rate limit reached for requests".to_string()),
            retry_after_secs: Some(secs),
            ..Self::default()
        }
    }

    /// OpenAI's 429 for an account whose credit is used up: waiting does not help.
    pub fn insufficient_quota() -> Self {
        Self {
            status: Some(429),
            message: Some("You exceeded your current quota, please check your plan and billing details.".to_string()),
            error_type: Some("insufficient_quota".to_string()),
            error_code: Some("insufficient_quota".to_string()),
            ..Self::default()
        }
    }

    /// Sends `value` as the `Retry-After` header, whatever it says.
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }

    pub fn reasoning(mut self, reasoning: impl Into<String>) -> Self {
        self.reasoning = Some(reasoning.into());
        self
    }

    pub fn chunk_size(mut self, chars: usize) -> Self {
        self.chunk_size = Some(chars.max(1));
        self
    }

    pub fn headers_delay(mut self, delay: Duration) -> Self {
        self.headers_delay_ms = millis(delay);
        self
    }

    pub fn first_chunk_delay(mut self, delay: Duration) -> Self {
        self.first_chunk_delay_ms = millis(delay);
        self
    }

    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay_ms = Some(millis(delay));
        self
    }

    /// The last chunk's `finish_reason` (any string, including `""` or unknown values).
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }

    /// Every chunk before the last carries this `finish_reason` instead of `null` (e.g. `""`).
    pub fn chunk_finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.chunk_finish_reason = Some(reason.into());
        self
    }

    /// The last chunk carries `"finish_reason": null`.
    pub fn no_finish_reason(mut self) -> Self {
        self.finish_reason = None;
        self
    }

    /// Never send usage, even when asked.
    pub fn without_usage(mut self) -> Self {
        self.usage = false;
        self
    }

    /// Drop the connection after `chunks` chunks, without ending the response.
    pub fn cut_after(mut self, chunks: usize) -> Self {
        self.cut_after = Some(chunks);
        self
    }

    pub fn keep_alive_comments(mut self) -> Self {
        self.keep_alive = true;
        self
    }

    /// End the stream without `data: [DONE]` (some servers do).
    pub fn without_done(mut self) -> Self {
        self.done = false;
        self
    }

    /// Never finish: repeat the text's chunks until the client goes away (a model in a loop).
    /// Only the client ends such a stream, so its memory must stay bounded however long it runs.
    pub fn endless(mut self) -> Self {
        self.endless = true;
        self
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The text of the default reply to a conversation whose last user message is `last_user`.
pub fn default_reply_text(last_user: &str) -> String {
    format!("You said: {last_user}. This is the fake provider answering.")
}

/// A request the fake received.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The `Authorization` header as sent, if any.
    pub authorization: Option<String>,
    /// The JSON body (`null` for requests without one).
    pub body: Value,
}

impl RecordedRequest {
    /// Whether the request carried `Authorization: Bearer <key>`.
    pub fn has_bearer(&self, key: &str) -> bool {
        self.authorization.as_deref() == Some(format!("Bearer {key}").as_str())
    }
}

struct Shared {
    api_key: String,
    models: Vec<String>,
    chunk_delay: Duration,
    rejected_fields: Vec<String>,
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    open_streams: AtomicUsize,
    disconnects: watch::Sender<usize>,
    completion_ids: AtomicU64,
}

impl Shared {
    fn record(&self, method: &str, path: &str, headers: &HeaderMap, body: Value) {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.requests.lock().unwrap().push(RecordedRequest {
            method: method.to_string(),
            path: path.to_string(),
            authorization,
            body,
        });
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            == Some(self.api_key.as_str())
    }
}

/// The running fake. Stops when dropped.
pub struct FakeOpenAi {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeOpenAi {
    /// Starts on `127.0.0.1:0` with a unique key and the default models.
    pub async fn start() -> Self {
        Self::start_with(FakeOpenAiConfig::default()).await
    }

    pub async fn start_with(config: FakeOpenAiConfig) -> Self {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .unwrap_or_else(|e| panic!("fake-openai cannot listen on {}: {e}", config.listen));
        let address = listener.local_addr().unwrap();
        let api_key = config
            .api_key
            .unwrap_or_else(|| format!("sk-fake-{}", uuid::Uuid::new_v4().simple()));
        let shared = Arc::new(Shared {
            api_key,
            models: config.models,
            chunk_delay: config.chunk_delay,
            rejected_fields: config.rejected_fields,
            replies: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            open_streams: AtomicUsize::new(0),
            disconnects: watch::channel(0).0,
            completion_ids: AtomicU64::new(1),
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(list_models))
            .route(
                "/__fake/replies",
                post(control_push_replies).delete(control_clear_replies),
            )
            .route("/__fake/requests", get(control_requests).delete(control_clear_requests))
            .with_state(Arc::clone(&shared));
        // Without TCP_NODELAY, Nagle + delayed ACK add ~40 ms to the end of every stream.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            address,
            shared,
            stop: Some(stop),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    pub fn api_key(&self) -> String {
        self.shared.api_key.clone()
    }

    pub fn models(&self) -> Vec<String> {
        self.shared.models.clone()
    }

    /// Queues the answer to a coming chat request.
    pub fn push_reply(&self, reply: Reply) {
        self.shared.replies.lock().unwrap().push_back(reply);
    }

    pub fn clear_replies(&self) {
        self.shared.replies.lock().unwrap().clear();
    }

    /// Replies queued and not yet used.
    pub fn pending_replies(&self) -> usize {
        self.shared.replies.lock().unwrap().len()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The chat completion requests received so far.
    pub fn chat_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/v1/chat/completions")
            .collect()
    }

    /// Streams being sent right now.
    pub fn open_streams(&self) -> usize {
        self.shared.open_streams.load(Ordering::SeqCst)
    }

    /// Streams the client closed before their end.
    pub fn disconnects(&self) -> usize {
        *self.shared.disconnects.borrow()
    }

    /// Waits until a client has closed a stream before its end; false after `timeout`.
    pub async fn wait_for_disconnect(&self, timeout: Duration) -> bool {
        let mut watcher = self.shared.disconnects.subscribe();
        tokio::time::timeout(timeout, watcher.wait_for(|count| *count > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn error_response(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, Json(body)).into_response()
}

async fn list_models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.record("GET", "/v1/models", &headers, Value::Null);
    if !shared.authorized(&headers) {
        return unauthorized();
    }
    let data: Vec<Value> = shared
        .models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "parley-fake"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// The 400 a server answers for a request field it does not support, worded as OpenAI words
/// it for `max_tokens` and as other servers word it for the rest.
fn rejected_field(field: &str) -> Response {
    let message = if field == "max_tokens" {
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
            .to_string()
    } else {
        format!("Unrecognized request argument supplied: {field}")
    };
    let body = json!({"error": {
        "message": message, "type": "invalid_request_error", "param": field, "code": "unsupported_parameter",
    }});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn unauthorized() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "Incorrect API key provided. You can find your API key in your provider's dashboard.",
        "invalid_request_error",
        Some("invalid_api_key"),
    )
}

fn last_user_message(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

async fn chat_completions(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            shared.record("POST", "/v1/chat/completions", &headers, Value::Null);
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("We could not parse the JSON body of your request: {e}"),
                "invalid_request_error",
                None,
            );
        }
    };
    shared.record("POST", "/v1/chat/completions", &headers, body.clone());
    if !shared.authorized(&headers) {
        return unauthorized();
    }
    // The checks a real server makes come before the script, so a request that fails one
    // leaves the queued replies to the requests they were meant for.
    let model = body["model"].as_str().unwrap_or("").to_string();
    if !shared.models.contains(&model) {
        return error_response(
            StatusCode::NOT_FOUND,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model_not_found"),
        );
    }
    if body["messages"].as_array().is_none_or(|m| m.is_empty()) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "'messages' must contain at least one message.",
            "invalid_request_error",
            None,
        );
    }
    if let Some(field) = shared.rejected_fields.iter().find(|f| body.get(f.as_str()).is_some()) {
        return rejected_field(field);
    }
    let reply = shared.replies.lock().unwrap().pop_front().unwrap_or_default();
    if reply.headers_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.headers_delay_ms)).await;
    }
    if let Some(status) = reply.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = reply.message.clone().unwrap_or_else(|| format!("fake error {status}"));
        let (kind, code) = match status.as_u16() {
            401 => ("invalid_request_error", Some("invalid_api_key")),
            429 => ("requests", Some("rate_limit_exceeded")),
            400..=499 => ("invalid_request_error", None),
            _ => ("server_error", None),
        };
        let kind = reply.error_type.as_deref().unwrap_or(kind);
        let code = reply.error_code.as_deref().or(code);
        let mut response = error_response(status, &message, kind, code);
        let retry_after = reply
            .retry_after
            .clone()
            .or_else(|| reply.retry_after_secs.map(|secs| secs.to_string()));
        if let Some(value) = retry_after.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }

    let text = reply
        .text
        .clone()
        .unwrap_or_else(|| default_reply_text(&last_user_message(&body)));
    let prompt_tokens = body["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| word_count(m["content"].as_str().unwrap_or("")))
                .sum::<usize>()
        })
        .unwrap_or(0);
    let completion_tokens = word_count(&text) + reply.reasoning.as_deref().map_or(0, word_count);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let id = format!(
        "chatcmpl-fake-{}",
        shared.completion_ids.fetch_add(1, Ordering::Relaxed)
    );

    if body["stream"] != Value::Bool(true) {
        let mut message = json!({"role": "assistant", "content": text});
        if let Some(reasoning) = &reply.reasoning {
            message["reasoning_content"] = json!(reasoning);
        }
        let mut completion = json!({
            "id": id, "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": reply.finish_reason}],
        });
        if reply.usage {
            completion["usage"] = usage;
        }
        return Json(completion).into_response();
    }

    let include_usage = reply.usage && body["stream_options"]["include_usage"] == Value::Bool(true);
    let events = stream_events(&reply, &id, &model, &text, include_usage.then_some(usage));
    // An endless reply repeats its text's chunks; a space stands in for an empty text, so
    // the stream still never stops talking.
    let repeated = if reply.endless {
        let text = if text.is_empty() { " " } else { text.as_str() };
        let pending = json!(reply.chunk_finish_reason);
        split(text, reply.chunk_size)
            .into_iter()
            .map(|piece| stream_chunk(&id, &model, json!({"content": piece}), pending.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let chunk_delay = reply
        .chunk_delay_ms
        .map(Duration::from_millis)
        .unwrap_or(shared.chunk_delay);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let (drained, drained_watch) = watch::channel(0);
    let guard = StreamGuard::new(Arc::clone(&shared));
    tokio::spawn(send_stream(
        StreamSender {
            tx,
            drained: drained_watch,
            sent: 0,
        },
        guard,
        events,
        repeated,
        reply.clone(),
        Duration::from_millis(reply.first_chunk_delay_ms),
        chunk_delay,
    ));
    let body = Body::from_stream(TrackedBody {
        chunks: rx,
        taken: 0,
        drained,
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// One streamed `chat.completion.chunk` with one choice.
fn stream_chunk(id: &str, model: &str, delta: Value, finish_reason: Value) -> String {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
        // Fields clients do not know must not break them.
        "system_fingerprint": "fp_fake", "x_fake_extension": {"ignored": true},
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
    })
    .to_string()
}

/// One SSE event per chunk: reasoning deltas, content deltas, the finish chunk, usage. An
/// endless reply gets the reasoning only: its text is repeated by [`send_stream`].
fn stream_events(reply: &Reply, id: &str, model: &str, text: &str, usage: Option<Value>) -> Vec<String> {
    let chunk = |delta: Value, finish_reason: Value| stream_chunk(id, model, delta, finish_reason);
    let pending = json!(reply.chunk_finish_reason);
    let mut events = Vec::new();
    let mut first = true;
    let mut role = || {
        let was_first = first;
        first = false;
        was_first.then_some("assistant")
    };
    if let Some(reasoning) = &reply.reasoning {
        for piece in split(reasoning, reply.chunk_size) {
            events.push(chunk(
                json!({"role": role(), "content": null, "reasoning_content": piece}),
                pending.clone(),
            ));
        }
    }
    if reply.endless {
        return events;
    }
    for piece in split(text, reply.chunk_size) {
        events.push(chunk(json!({"role": role(), "content": piece}), pending.clone()));
    }
    events.push(chunk(json!({}), json!(reply.finish_reason)));
    if let Some(usage) = usage {
        events.push(
            json!({
                "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                "choices": [], "usage": usage,
            })
            .to_string(),
        );
    }
    events
}

/// Splits into chunks of `size` characters, or into words keeping their trailing whitespace.
fn split(text: &str, size: Option<usize>) -> Vec<String> {
    match size {
        Some(size) => {
            let chars: Vec<char> = text.chars().collect();
            chars.chunks(size.max(1)).map(|c| c.iter().collect()).collect()
        }
        None => {
            let mut pieces = Vec::new();
            let mut current = String::new();
            for c in text.chars() {
                if !c.is_whitespace() && current.ends_with(char::is_whitespace) {
                    pieces.push(std::mem::take(&mut current));
                }
                current.push(c);
            }
            if !current.is_empty() {
                pieces.push(current);
            }
            pieces
        }
    }
}

/// Counts open streams, and streams the client closed before their end.
struct StreamGuard {
    shared: Arc<Shared>,
    ended: bool,
}

impl StreamGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open_streams.fetch_add(1, Ordering::SeqCst);
        Self { shared, ended: false }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.shared.open_streams.fetch_sub(1, Ordering::SeqCst);
        if !self.ended {
            self.shared.disconnects.send_modify(|count| *count += 1);
        }
    }
}

/// The response body: the frames [`send_stream`] queues. Each time it runs dry it publishes
/// how many frames hyper has taken, because hyper flushes what it has written whenever the
/// body has nothing ready: once that count covers every frame sent, they are on the wire.
struct TrackedBody {
    chunks: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    taken: usize,
    drained: watch::Sender<usize>,
}

impl tokio_stream::Stream for TrackedBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.chunks.poll_recv(cx) {
            Poll::Ready(Some(frame)) => {
                this.taken += 1;
                Poll::Ready(Some(frame))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                this.drained.send_replace(this.taken);
                Poll::Pending
            }
        }
    }
}

/// The sending side of a [`TrackedBody`].
struct StreamSender {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    drained: watch::Receiver<usize>,
    sent: usize,
}

impl StreamSender {
    /// False when the client has gone.
    async fn send(&mut self, frame: Bytes) -> bool {
        let sent = self.tx.send(Ok(frame)).await.is_ok();
        self.sent += usize::from(sent);
        sent
    }

    /// Waits, noticing at once when the client goes away (hyper drops the body).
    async fn pause(&self, delay: Duration) -> bool {
        if delay.is_zero() {
            return !self.tx.is_closed();
        }
        tokio::select! {
            () = self.tx.closed() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }

    /// Drops the connection mid-response: a body error makes hyper abort it without the final
    /// chunk. First hyper must have taken and flushed every frame sent, so the client
    /// receives them before the cut.
    async fn cut(mut self, guard: &mut StreamGuard) {
        guard.ended = true;
        let sent = self.sent;
        let flushed = tokio::select! {
            () = self.tx.closed() => false,
            taken = self.drained.wait_for(|taken| *taken >= sent) => taken.is_ok(),
        };
        if flushed {
            let _ = self.tx.send(Err(std::io::Error::other("cut by the script"))).await;
        }
    }
}

async fn send_stream(
    mut sender: StreamSender,
    mut guard: StreamGuard,
    events: Vec<String>,
    repeated: Vec<String>,
    reply: Reply,
    first_chunk_delay: Duration,
    chunk_delay: Duration,
) {
    if !sender.pause(first_chunk_delay).await {
        return;
    }
    // `repeated` is empty unless the reply is endless, and then it never runs out.
    for (index, event) in events.iter().chain(repeated.iter().cycle()).enumerate() {
        if index > 0 && !sender.pause(chunk_delay).await {
            return;
        }
        if reply.cut_after == Some(index) {
            sender.cut(&mut guard).await;
            return;
        }
        let mut frame = String::new();
        if reply.keep_alive {
            frame.push_str(": keep-alive\n\n");
        }
        frame.push_str("data: ");
        frame.push_str(event);
        frame.push_str("\n\n");
        if !sender.send(Bytes::from(frame)).await {
            return;
        }
    }
    if reply.cut_after.is_some_and(|n| n >= events.len()) {
        sender.cut(&mut guard).await;
        return;
    }
    if reply.done && !sender.send(Bytes::from_static(b"data: [DONE]\n\n")).await {
        return;
    }
    guard.ended = true;
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<Reply>),
    One(Box<Reply>),
}

async fn control_push_replies(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, (StatusCode, String)> {
    let replies = match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::Many(replies)) => replies,
        Ok(OneOrMany::One(reply)) => vec![*reply],
        Err(e) => return Err((StatusCode::BAD_REQUEST, format!("not a reply script: {e}"))),
    };
    let mut queue = shared.replies.lock().unwrap();
    queue.extend(replies);
    Ok(Json(json!({"queued": queue.len()})))
}

async fn control_clear_replies(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.replies.lock().unwrap().clear();
    StatusCode::NO_CONTENT
}

async fn control_requests(State(shared): State<Arc<Shared>>) -> Json<Vec<RecordedRequest>> {
    Json(shared.requests.lock().unwrap().clone())
}

async fn control_clear_requests(State(shared): State<Arc<Shared>>) -> Result<StatusCode, Infallible> {
    shared.requests.lock().unwrap().clear();
    Ok(StatusCode::NO_CONTENT)
}
