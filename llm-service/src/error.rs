use std::time::Duration;

use parley_service_kit::grpc_server::ServeError;
use parley_service_kit::grpc_status::{self, Reason};
use tonic::{Code, Status};

/// Everything that can go wrong, each mapped to the status a caller can act on. Messages
/// never contain the API key (provider messages are scrubbed of it before they get here).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or malformed.
    #[error("{field}: {description}")]
    InvalidField { field: &'static str, description: String },
    /// The egress policy refused the provider's address, or the provider redirected (redirects
    /// are never followed, so the new address is never checked or reached).
    #[error("provider.base_url: {0}")]
    EgressDenied(String),
    /// The provider rejected the key (401/403): the user must fix the API configuration.
    /// Never UNAUTHENTICATED, which means Parley's own login.
    #[error("the provider rejected the request: {0}")]
    KeyRejected(String),
    /// The account cannot be used until someone pays (402, or OpenAI's 429
    /// `insufficient_quota`): waiting does not help, so it is neither retried nor a rate limit.
    #[error("{0}")]
    AccountUnusable(String),
    /// 429: try again after `retry_after`.
    #[error("the provider is rate limiting: {message}")]
    RateLimited { message: String, retry_after: Duration },
    /// 5xx with a `Retry-After`: down, expecting to be back after `retry_after`.
    #[error("{message}")]
    Overloaded { message: String, retry_after: Duration },
    /// 400/413/422: the provider refused the request's content or parameters.
    #[error("the provider refused the request: {0}")]
    RequestRefused(String),
    /// The request does not fit the model's context window.
    #[error("the conversation is too long for the model: {0}")]
    ContextTooLong(String),
    /// The model does not exist there.
    #[error("{0}")]
    ModelNotFound(String),
    /// The base URL has no such endpoint.
    #[error("{0}")]
    EndpointNotFound(String),
    /// Connection refused, DNS failure, 5xx, a broken stream, an answer that is not an
    /// OpenAI-compatible response.
    #[error("{0}")]
    Unavailable(String),
    /// Connect, first-token or idle timeout.
    #[error("{0}")]
    Timeout(String),
    /// Any other refusal by the provider (an unexpected 4xx status).
    #[error("{0}")]
    ProviderFailed(String),
    #[error("HTTP client: {0}")]
    HttpClient(String),
    /// A setting would break every call (a start-up error).
    #[error("--{flag} {problem}")]
    Setting { flag: &'static str, problem: &'static str },
    /// The extra CA certificates file cannot be used (a start-up error).
    #[error("extra CA certificates {path}: {problem}")]
    ExtraCaCerts { path: String, problem: String },
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The retry delay a 429 carries when the provider gave none.
pub const DEFAULT_RATE_LIMIT_DELAY: Duration = Duration::from_secs(1);

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        let (status, reason) = match error {
            Error::InvalidField { field, description } => (grpc_status::invalid_field(field, description), None),
            Error::EgressDenied(_) => (Status::permission_denied(message), Some(Reason::ProviderAddressDenied)),
            Error::KeyRejected(_) => (Status::failed_precondition(message), Some(Reason::ProviderAuthFailed)),
            Error::AccountUnusable(_) => (
                Status::failed_precondition(message),
                Some(Reason::ProviderQuotaExhausted),
            ),
            Error::RateLimited { retry_after, .. } => (
                grpc_status::resource_exhausted(message, retry_after),
                Some(Reason::ProviderRateLimited),
            ),
            Error::Overloaded { retry_after, .. } => (
                grpc_status::unavailable(message, retry_after),
                Some(Reason::ProviderUnreachable),
            ),
            Error::RequestRefused(_) => (Status::invalid_argument(message), Some(Reason::ProviderRefusedRequest)),
            Error::ContextTooLong(_) => (Status::invalid_argument(message), Some(Reason::ContextTooLong)),
            Error::ModelNotFound(_) => (Status::not_found(message), Some(Reason::ModelNotFound)),
            Error::EndpointNotFound(_) => (Status::not_found(message), Some(Reason::ProviderEndpointNotFound)),
            Error::Unavailable(_) => (Status::unavailable(message), Some(Reason::ProviderUnreachable)),
            Error::Timeout(_) => (Status::deadline_exceeded(message), Some(Reason::ProviderUnreachable)),
            Error::ProviderFailed(_) => (Status::failed_precondition(message), None),
            Error::HttpClient(_) | Error::Setting { .. } | Error::ExtraCaCerts { .. } | Error::Serve(_) => {
                (Status::new(Code::Internal, message), None)
            }
        };
        match reason {
            Some(reason) => grpc_status::with_reason(status, reason),
            None => status,
        }
    }
}
