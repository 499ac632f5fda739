//! HTTP to OpenAI-compatible providers: the client (egress-checked resolver, no redirects, no
//! proxies, rustls), requests, and the mapping of every HTTP and transport failure to an
//! [`Error`] a caller can act on.
//!
//! The request body is async-openai's type ([`crate::openai`]); its client is not used
//! (checked against async-openai 0.43's source, `client.rs` and `error.rs`; its
//! bring-your-own-types mode changes the typed structs, not any of this):
//! - An error response keeps its status but loses its headers (`read_error_response`), so a
//!   429's or 503's `Retry-After` cannot reach the caller (its optional retry middleware reads
//!   it only to time its own retries).
//! - A 4xx body that is not OpenAI's error JSON (Ollama, llama.cpp, proxies' HTML) becomes a
//!   deserialization error without the HTTP status, so it cannot be mapped.
//! - It logs provider bodies verbatim (`warn!` of 5xx bodies, `error!` of any body it cannot
//!   parse), and some providers echo the key they rejected.
//! - A body that ends cleanly without `[DONE]` ends its stream exactly as `[DONE]` does, so a
//!   stream the provider closed early would look finished.
//! - The stream is read by a detached `tokio::spawn` into an unbounded channel: nothing slows
//!   the provider down when the caller reads slowly (the whole answer piles up in memory), and
//!   the task runs outside the request's tracing span. (0.43 does stop that task as soon as
//!   the receiver is dropped; older versions noticed only at the next event.)
//!
//! Mapping errors, detecting cut streams and bounding buffers is this service's job, so it
//! reads the HTTP itself, on the same reqwest client async-openai would have been given.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use url::Url;

use crate::egress::{EgressDenied, EgressPolicy, ResolveFailed, is_public};
use crate::error::{DEFAULT_RATE_LIMIT_DELAY, Error};

/// An API key. Its `Debug` never shows it; use [`ApiKey::expose`] only to send it.
#[derive(Clone, Default)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with the key replaced, for messages that came from elsewhere (some providers
    /// echo the key they rejected). A key shorter than 6 characters would match inside
    /// ordinary words, so it is replaced only where it stands as a whole token.
    pub fn scrub(&self, text: &str) -> String {
        let key = self.0.as_str();
        if key.is_empty() {
            return text.to_string();
        }
        if key.len() >= 6 {
            return text.replace(key, "[redacted]");
        }
        let in_token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
        let mut scrubbed = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(key) {
            scrubbed.push_str(&rest[..at]);
            let before = scrubbed.chars().next_back();
            rest = &rest[at + key.len()..];
            let whole = !before.is_some_and(in_token) && !rest.chars().next().is_some_and(in_token);
            scrubbed.push_str(if whole { "[redacted]" } else { key });
        }
        scrubbed.push_str(rest);
        scrubbed
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "ApiKey(none)"
        } else {
            "ApiKey([redacted])"
        })
    }
}

/// Where to send a request: the provider settings of one call.
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    pub base_url: Url,
    pub api_key: ApiKey,
    pub model: String,
}

impl ProviderSettings {
    /// `host[:port]`, for logs and messages.
    pub fn host(&self) -> String {
        let host = self.base_url.host_str().unwrap_or("?");
        match self.base_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// What went wrong in a transport error, in words: its innermost cause ("connection
    /// reset by peer", not reqwest's "error decoding response body"), the key scrubbed out.
    pub fn cause(&self, error: &reqwest::Error) -> String {
        let root = causes(error).last().map(ToString::to_string).unwrap_or_default();
        self.api_key.scrub(&root)
    }

    /// `{base_url}/{path}`, keeping a query string the base URL may carry.
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/{path}"));
        url
    }
}

/// A failed attempt, and whether trying again may help.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub retryable: bool,
    /// What the provider asked for (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The request field the provider refused by name, which a request can do without.
    pub incompatibility: Option<Incompatibility>,
}

impl Failure {
    fn fatal(error: Error) -> Self {
        Self {
            error,
            retryable: false,
            retry_after: None,
            incompatibility: None,
        }
    }

    fn retryable(error: Error, retry_after: Option<Duration>) -> Self {
        Self {
            error,
            retryable: true,
            retry_after,
            incompatibility: None,
        }
    }
}

/// A field of Parley's chat request that some OpenAI-compatible servers refuse with a 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incompatibility {
    /// `stream_options` (`include_usage`), unknown to some older servers.
    StreamOptions,
    /// `max_tokens`, which OpenAI's reasoning models (o-series, gpt-5) refuse for
    /// `max_completion_tokens`.
    MaxTokens,
}

impl Incompatibility {
    /// What a 400 body says was refused, if it names one of the fields.
    fn of(body: &[u8], message: &str) -> Option<Self> {
        let param = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|json| json["error"]["param"].as_str().map(str::to_string));
        let lower = message.to_lowercase();
        let names = |field: &str| param.as_deref() == Some(field) || lower.contains(field);
        if names("stream_options") {
            // Nothing else about stream_options can be wrong: Parley always sends the same.
            return Some(Self::StreamOptions);
        }
        // "max_tokens is too large" is a real limit, not an unknown field.
        let refused = [
            "max_completion_tokens",
            "unsupported",
            "not supported",
            "unrecognized",
            "not permitted",
        ]
        .iter()
        .any(|word| lower.contains(word));
        (names("max_tokens") && refused).then_some(Self::MaxTokens)
    }
}

#[derive(Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
    connect_timeout: Duration,
    /// Pass on the error text of providers on loopback and private addresses too.
    echo_private_errors: bool,
}

impl ProviderClient {
    /// `extra_ca_certs`: a PEM file of CA certificates trusted besides Mozilla's roots.
    /// `echo_private_errors`: see [`crate::Config::echo_private_provider_errors`].
    pub fn new(
        policy: EgressPolicy,
        connect_timeout: Duration,
        extra_ca_certs: Option<&Path>,
        echo_private_errors: bool,
    ) -> Result<Self, Error> {
        let tls = tls_config(extra_ca_certs)?;
        let http = reqwest::Client::builder()
            .dns_resolver(policy.resolver())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("parley-llm-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::HttpClient(e.to_string()))?;
        Ok(Self {
            http,
            connect_timeout,
            echo_private_errors,
        })
    }

    /// Whether what the provider behind `response` says may be passed on to the caller: yes
    /// when it is at a public address; for one on the operator's own network (loopback,
    /// private, link-local …) or at an address not known, only when configured to. Otherwise
    /// a user allowed to reach private networks could make Parley call a service there and
    /// read back its answers as error messages.
    pub fn may_echo(&self, response: &reqwest::Response) -> bool {
        self.echo_private_errors || response.remote_addr().is_some_and(|peer| is_public(peer.ip()))
    }

    /// Sends a streaming chat completion request; `Ok` once the provider answered 2xx.
    pub async fn send_chat(
        &self,
        settings: &ProviderSettings,
        body: &crate::openai::ChatCompletionRequest,
    ) -> Result<reqwest::Response, Failure> {
        let request = self
            .http
            .post(settings.endpoint("chat/completions"))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(body);
        self.send(settings, request, "chat/completions").await
    }

    /// `GET {base_url}/models`: the ids the provider lists.
    pub async fn list_models(&self, settings: &ProviderSettings) -> Result<Vec<String>, Error> {
        let request = self.http.get(settings.endpoint("models"));
        let mut response = self.send(settings, request, "models").await.map_err(|f| f.error)?;
        let (bytes, complete) = read_limited(&mut response, MAX_MODELS_BODY)
            .await
            .map_err(|e| self.transport_error(settings, &e).error)?;
        if !complete {
            return Err(Error::Unavailable(format!(
                "{} answered /models with more than {} MiB",
                settings.host(),
                MAX_MODELS_BODY >> 20
            )));
        }
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| {
            Error::Unavailable(format!(
                "{} answered /models with something that is not JSON; is the base URL an OpenAI-compatible API (usually ending in /v1)?",
                settings.host()
            ))
        })?;
        // OpenAI: {"data": [{"id": …}]}; a few servers use "models" and "name".
        let list = json["data"]
            .as_array()
            .or_else(|| json["models"].as_array())
            .ok_or_else(|| Error::Unavailable(format!("{} answered /models without a model list", settings.host())))?;
        let mut ids: Vec<String> = Vec::new();
        for model in list {
            if let Some(id) = model["id"].as_str().or_else(|| model["name"].as_str())
                && !ids.iter().any(|known| known == id)
            {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }

    async fn send(
        &self,
        settings: &ProviderSettings,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<reqwest::Response, Failure> {
        let request = if settings.api_key.is_empty() {
            request
        } else {
            request.bearer_auth(settings.api_key.expose())
        };
        let response = request.send().await.map_err(|e| self.transport_error(settings, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let echo = self.may_echo(&response);
        let peer = response.remote_addr();
        // The start of an error body says what went wrong; the rest is not worth waiting for.
        let mut response = response;
        let body = read_limited(&mut response, MAX_ERROR_BODY)
            .await
            .map(|(body, _)| body)
            .unwrap_or_default();
        let failure = http_failure(settings, path, status, &headers, &body, echo);
        if !echo {
            tracing::debug!(
                status = status.as_u16(),
                ?peer,
                provider_says = %settings.api_key.scrub(&error_message(&body).unwrap_or_default()),
                "a provider on a private address failed; its text is not passed on"
            );
        }
        Err(failure)
    }

    fn transport_error(&self, settings: &ProviderSettings, error: &reqwest::Error) -> Failure {
        let host = settings.host();
        for cause in causes(error) {
            if let Some(denied) = cause.downcast_ref::<EgressDenied>() {
                return Failure::fatal(Error::EgressDenied(denied.0.clone()));
            }
            if let Some(failed) = cause.downcast_ref::<ResolveFailed>() {
                return Failure::fatal(Error::Unavailable(failed.to_string()));
            }
        }
        let root = settings.cause(error);
        if error.is_connect() && error.is_timeout() {
            return Failure::fatal(Error::Timeout(format!(
                "connecting to {host} timed out after {}",
                seconds(self.connect_timeout)
            )));
        }
        if error.is_connect() {
            return Failure::retryable(Error::Unavailable(format!("cannot connect to {host}: {root}")), None);
        }
        if error.is_timeout() {
            return Failure::fatal(Error::Timeout(format!("the request to {host} timed out")));
        }
        Failure::fatal(Error::Unavailable(format!("the request to {host} failed: {root}")))
    }
}

/// `error` and the errors beneath it, outermost first.
fn causes(error: &reqwest::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| e.source())
}

/// The most of a /models answer read (OpenRouter lists a few hundred models in ~1 MiB).
const MAX_MODELS_BODY: usize = 16 << 20;
/// The most of an error body read.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Reads a body up to `limit` bytes; `false` when it had more (which is left unread).
pub async fn read_limited(response: &mut reqwest::Response, limit: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            let room = limit - body.len();
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// rustls on ring with Mozilla's roots (plus `extra_ca_certs`), handed to reqwest whole: reqwest
/// is built with `rustls-no-provider` (ring is already in the build; aws-lc-rs, its default,
/// is a long C build), and a preconfigured TLS backend needs no process-wide provider.
fn tls_config(extra_ca_certs: Option<&Path>) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca_certs {
        add_extra_roots(&mut roots, path)?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::HttpClient(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Adds every certificate of a PEM file to `roots`; a file that cannot be read, holds no
/// certificate or a certificate that is not a usable CA is an error naming the file.
fn add_extra_roots(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let problem = |problem: String| Error::ExtraCaCerts {
        path: path.display().to_string(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| problem(format!("cannot be read ({e})")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(format!("is not valid PEM ({e})")))?;
    if certificates.is_empty() {
        return Err(problem(
            "holds no certificate (expected PEM blocks starting -----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    for (index, certificate) in certificates.into_iter().enumerate() {
        roots
            .add(certificate)
            .map_err(|e| problem(format!("certificate {} cannot be a CA ({e})", index + 1)))?;
    }
    Ok(())
}

/// `1.5s`, `30s`.
pub fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0}s")
    } else {
        format!("{secs:.1}s")
    }
}

/// The message of an error body: OpenAI's `{"error": {"message"}}`, `{"error": "…"}`,
/// `{"message"}`, FastAPI's `{"detail"}`, or the text itself.
pub fn error_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let message = match serde_json::from_str::<Value>(text) {
        Ok(json) => [
            &json["error"]["message"],
            &json["error"],
            &json["message"],
            &json["detail"],
            &json["detail"][0]["msg"],
        ]
        .into_iter()
        .find_map(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| text.to_string()),
        Err(_) => text.to_string(),
    };
    Some(truncate(&message, 500))
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Whether an error body says the model does not exist (OpenAI's `model_not_found`, and the
/// wordings of DeepSeek, Ollama, vLLM and others).
fn names_missing_model(body: &[u8], message: &str) -> bool {
    let code = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|json| json["error"]["code"].as_str().map(str::to_string));
    if code.as_deref() == Some("model_not_found") {
        return true;
    }
    let lower = message.to_lowercase();
    lower.contains("model")
        && (lower.contains("not found")
            || lower.contains("not exist")
            || lower.contains("does not exist")
            || lower.contains("unknown model")
            || lower.contains("no such model"))
}

/// The longest `Retry-After` believed; a provider asking for more (`1e20`) gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses `Retry-After`: seconds (fractions too, as some providers send), or an HTTP date;
/// at most [`MAX_RETRY_AFTER`]. Negative, NaN and unparsable values count as absent.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<f64>() {
        Ok(secs) if secs.is_nan() || secs < 0.0 => return None,
        // Too large for a Duration (or infinite): as long as is believed.
        Ok(secs) => Duration::try_from_secs_f64(secs).unwrap_or(MAX_RETRY_AFTER),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// OpenAI's `type`/`code` for a 429 that waiting does not cure: the account's credit is
/// used up.
fn is_quota_exhausted(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|json| {
        let error = &json["error"];
        error["type"] == "insufficient_quota" || error["code"] == "insufficient_quota"
    })
}

/// Whether a refusal says the conversation does not fit the model's context window, in the
/// words OpenAI, vLLM, llama.cpp, Ollama, DeepSeek and DashScope use.
fn exceeds_context(body: &[u8], said: &str) -> bool {
    let body = String::from_utf8_lossy(body).to_ascii_lowercase();
    let said = said.to_ascii_lowercase();
    [
        "context_length_exceeded",
        "maximum context length",
        "context length",
        "context window",
        "exceed_context_size",
        "prompt is too long",
        "input is too long",
        "range of input length",
    ]
    .iter()
    .any(|words| body.contains(words) || said.contains(words))
}

/// What stands in for the text of a provider whose text is not passed on (see
/// [`ProviderClient::may_echo`]): the status only.
pub fn withheld(status: reqwest::StatusCode) -> String {
    format!(
        "HTTP {}{}; the text of a provider on a private address is not passed on",
        status.as_u16(),
        status.canonical_reason().map(|r| format!(" {r}")).unwrap_or_default()
    )
}

/// `echo`: whether the provider's own words (its message, a redirect's target) may be passed
/// on; when not, the body still decides the status, and the message names the HTTP status only.
fn http_failure(
    settings: &ProviderSettings,
    path: &str,
    status: reqwest::StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    echo: bool,
) -> Failure {
    let host = settings.host();
    let code = status.as_u16();
    let message = settings
        .api_key
        .scrub(&error_message(body).unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_string()));
    let model = &settings.model;
    // Classified by what the provider said; worded without it.
    let said = message.clone();
    let message = if echo { message } else { withheld(status) };
    let error = match code {
        300..=399 => {
            let location = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .filter(|_| echo)
                .unwrap_or("another address");
            Error::EgressDenied(format!(
                "{host} redirected to {location}; redirects are not followed (set the base URL to the final address)"
            ))
        }
        401 => Error::KeyRejected(format!("the API key was not accepted ({message})")),
        403 => Error::KeyRejected(format!("access denied ({message})")),
        402 => Error::AccountUnusable(format!("the provider wants payment ({message})")),
        429 if is_quota_exhausted(body) => {
            Error::AccountUnusable(format!("the account's quota at {host} is used up ({message})"))
        }
        404 | 400 | 422 if names_missing_model(body, &said) => {
            Error::ModelNotFound(format!("the provider has no model `{model}` ({message})"))
        }
        404 => Error::EndpointNotFound(format!(
            "{host} has no /{path} endpoint; check the base URL (usually ending in /v1) ({message})"
        )),
        400 | 413 | 422 if exceeds_context(body, &said) => Error::ContextTooLong(message),
        400 | 422 => {
            let incompatibility = Incompatibility::of(body, &said);
            return Failure {
                incompatibility,
                ..Failure::fatal(Error::RequestRefused(message))
            };
        }
        413 => Error::RequestRefused(message),
        408 => Error::Timeout(format!("{host} timed out the request ({message})")),
        429 => {
            let delay = retry_after(headers);
            let error = Error::RateLimited {
                message,
                retry_after: delay.unwrap_or(DEFAULT_RATE_LIMIT_DELAY),
            };
            return Failure::retryable(error, delay);
        }
        500..=599 => {
            let delay = retry_after(headers);
            let message = format!("{host} failed with HTTP {code} ({message})");
            // The provider said when it expects to be back: the caller hears it too.
            let error = match delay {
                Some(retry_after) => Error::Overloaded { message, retry_after },
                None => Error::Unavailable(message),
            };
            return Failure::retryable(error, delay);
        }
        _ => Error::ProviderFailed(format!("{host} answered HTTP {code} ({message})")),
    };
    Failure::fatal(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_from_every_dialect() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad key","code":"invalid_api_key"}}"#).as_deref(),
            Some("bad key")
        );
        assert_eq!(
            error_message(br#"{"error":"model 'x' not found"}"#).as_deref(),
            Some("model 'x' not found")
        );
        assert_eq!(
            error_message(br#"{"detail":"Not Found"}"#).as_deref(),
            Some("Not Found")
        );
        assert_eq!(
            error_message(b"upstream connect error").as_deref(),
            Some("upstream connect error")
        );
        assert_eq!(error_message(b"  "), None);
        assert!(error_message("é".repeat(600).as_bytes()).is_some_and(|m| m.chars().count() == 501));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "3".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        headers.insert(RETRY_AFTER, later.parse().unwrap_or_else(|_| unreachable!()));
        let delay = retry_after(&headers).unwrap_or_default();
        assert!(
            delay > Duration::from_secs(100) && delay <= Duration::from_secs(120),
            "{delay:?}"
        );
        for (value, expected) in [
            ("soon", None),
            ("-1", None),
            ("NaN", None),
            ("0.25", Some(Duration::from_millis(250))),
            ("1e20", Some(MAX_RETRY_AFTER)),
            ("inf", Some(MAX_RETRY_AFTER)),
            ("Wed, 21 Oct 2065 07:28:00 GMT", Some(MAX_RETRY_AFTER)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(Duration::ZERO)),
        ] {
            headers.insert(RETRY_AFTER, value.parse().unwrap_or_else(|_| unreachable!()));
            assert_eq!(retry_after(&headers), expected, "{value}");
        }
    }

    #[test]
    fn refused_fields_are_recognised_and_real_limits_are_not() {
        let of = |body: &str| Incompatibility::of(body.as_bytes(), &error_message(body.as_bytes()).unwrap_or_default());
        assert_eq!(
            of(r#"{"error":{"message":"Unrecognized request argument supplied: stream_options","param":null}}"#),
            Some(Incompatibility::StreamOptions)
        );
        assert_eq!(
            of(r#"{"detail":[{"msg":"Extra inputs are not permitted","loc":["body","stream_options"]}]}"#),
            None,
            "pydantic's message does not name the field"
        );
        assert_eq!(
            of(r#"{"error":{"message":"Extra inputs are not permitted","param":"stream_options"}}"#),
            Some(Incompatibility::StreamOptions)
        );
        assert_eq!(
            of(
                r#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","param":"max_tokens","code":"unsupported_parameter"}}"#
            ),
            Some(Incompatibility::MaxTokens)
        );
        assert_eq!(of(r#"{"error":{"message":"max_tokens is too large: 100000"}}"#), None);
        assert_eq!(of(r#"{"error":{"message":"temperature must be at most 2"}}"#), None);
    }

    #[test]
    fn keys_are_scrubbed_and_never_debug_printed() {
        let key = ApiKey::new("sk-very-secret-123");
        assert_eq!(
            key.scrub("Incorrect API key provided: sk-very-secret-123."),
            "Incorrect API key provided: [redacted]."
        );
        assert!(!format!("{key:?}").contains("secret"));
        let short = ApiKey::new("ab1");
        assert_eq!(
            short.scrub("key ab1 rejected (\"ab1\"); tab1e ab12 xab1 ab1"),
            "key [redacted] rejected (\"[redacted]\"); tab1e ab12 xab1 [redacted]"
        );
        assert_eq!(short.scrub("ab1ab1"), "ab1ab1");
        assert_eq!(ApiKey::new("").scrub("text"), "text");
        let settings = ProviderSettings {
            base_url: Url::parse("http://example.com/v1/").unwrap_or_else(|_| unreachable!()),
            api_key: key,
            model: "m".into(),
        };
        assert!(!format!("{settings:?}").contains("secret"));
        assert_eq!(settings.endpoint("models").as_str(), "http://example.com/v1/models");
    }

    #[test]
    fn missing_models_in_several_wordings() {
        for body in [
            br#"{"error":{"message":"x","code":"model_not_found"}}"#.as_slice(),
            br#"{"error":{"message":"Model Not Exist"}}"#,
            br#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
        ] {
            let message = error_message(body).unwrap_or_default();
            assert!(names_missing_model(body, &message), "{message}");
        }
        assert!(!names_missing_model(b"{}", "temperature must be at most 2"));
    }
}
