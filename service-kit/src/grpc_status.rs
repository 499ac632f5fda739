//! Statuses with the structured details clients can act on.

use std::time::Duration;

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `google.rpc.ErrorInfo` domain of every reason Parley gives.
pub const ERROR_DOMAIN: &str = "parley.dev";

/// Why a call failed, as a stable code a client can translate into its user's language (the
/// status message stays English, for logs and grpcurl). Sent as `google.rpc.ErrorInfo.reason`
/// in [`ERROR_DOMAIN`]; the web UI keys its sentences on these strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A Parley quota (tokens, messages) is used up for now.
    QuotaExceeded,
    /// Too many requests in a short time, to Parley itself.
    RateLimited,
    /// Too many answers generating at once for this user.
    TooManyGenerations,
    /// The provider rejected the API key (HTTP 401/403).
    ProviderAuthFailed,
    /// The provider's account needs paying (HTTP 402, or a used-up quota there).
    ProviderQuotaExhausted,
    /// The provider is rate limiting the key (HTTP 429).
    ProviderRateLimited,
    /// The provider cannot be reached, failed (5xx) or timed out.
    ProviderUnreachable,
    /// The base URL has no such endpoint (usually a base URL without `/v1`).
    ProviderEndpointNotFound,
    /// The operator's egress policy does not allow the provider's address.
    ProviderAddressDenied,
    /// The provider refused the request's content or parameters.
    ProviderRefusedRequest,
    /// The provider has no such model.
    ModelNotFound,
    /// The conversation is longer than the model's context window.
    ContextTooLong,
    /// There is no API config to answer with.
    ApiConfigRequired,
    /// The session is already generating an answer.
    GenerationRunning,
    /// Wrong login or password.
    BadCredentials,
    /// The account was disabled by an administrator.
    AccountDisabled,
    /// The account awaits an administrator's approval.
    AccountPending,
    /// The chat was ended: it is read-only until reopened.
    ChatEnded,
}

impl Reason {
    pub const ALL: [Reason; 18] = [
        Reason::QuotaExceeded,
        Reason::RateLimited,
        Reason::TooManyGenerations,
        Reason::ProviderAuthFailed,
        Reason::ProviderQuotaExhausted,
        Reason::ProviderRateLimited,
        Reason::ProviderUnreachable,
        Reason::ProviderEndpointNotFound,
        Reason::ProviderAddressDenied,
        Reason::ProviderRefusedRequest,
        Reason::ModelNotFound,
        Reason::ContextTooLong,
        Reason::ApiConfigRequired,
        Reason::GenerationRunning,
        Reason::BadCredentials,
        Reason::AccountDisabled,
        Reason::AccountPending,
        Reason::ChatEnded,
    ];

    /// The UPPER_SNAKE_CASE code sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::QuotaExceeded => "QUOTA_EXCEEDED",
            Reason::RateLimited => "RATE_LIMITED",
            Reason::TooManyGenerations => "TOO_MANY_GENERATIONS",
            Reason::ProviderAuthFailed => "PROVIDER_AUTH_FAILED",
            Reason::ProviderQuotaExhausted => "PROVIDER_QUOTA_EXHAUSTED",
            Reason::ProviderRateLimited => "PROVIDER_RATE_LIMITED",
            Reason::ProviderUnreachable => "PROVIDER_UNREACHABLE",
            Reason::ProviderEndpointNotFound => "PROVIDER_ENDPOINT_NOT_FOUND",
            Reason::ProviderAddressDenied => "PROVIDER_ADDRESS_DENIED",
            Reason::ProviderRefusedRequest => "PROVIDER_REFUSED_REQUEST",
            Reason::ModelNotFound => "MODEL_NOT_FOUND",
            Reason::ContextTooLong => "CONTEXT_TOO_LONG",
            Reason::ApiConfigRequired => "API_CONFIG_REQUIRED",
            Reason::GenerationRunning => "GENERATION_RUNNING",
            Reason::BadCredentials => "BAD_CREDENTIALS",
            Reason::AccountDisabled => "ACCOUNT_DISABLED",
            Reason::AccountPending => "ACCOUNT_PENDING",
            Reason::ChatEnded => "CHAT_ENDED",
        }
    }

    /// The reason a wire code names; `None` for an unknown or empty one.
    pub fn parse(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|reason| reason.as_str() == code)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `status` with a `google.rpc.ErrorInfo` naming `reason`; its code, message, metadata and
/// other standard details (RetryInfo, BadRequest …) are kept.
pub fn with_reason(status: Status, reason: Reason) -> Status {
    let mut details = status.get_error_details();
    details.set_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
    Status::with_error_details_and_metadata(
        status.code(),
        status.message().to_owned(),
        details,
        status.metadata().clone(),
    )
}

/// The reason a status carries, if it has a Parley `google.rpc.ErrorInfo`.
pub fn reason(status: &Status) -> Option<Reason> {
    status
        .get_details_error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
        .and_then(|info| Reason::parse(&info.reason))
}

/// INVALID_ARGUMENT naming the field, with a `google.rpc.BadRequest` violation for it.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` saying when to try again.
pub fn resource_exhausted(message: impl Into<String>, retry_after: Duration) -> Status {
    retry_later(Code::ResourceExhausted, message.into(), retry_after)
}

/// UNAVAILABLE with a `google.rpc.RetryInfo`: something behind us is down and said for how long.
pub fn unavailable(message: impl Into<String>, retry_after: Duration) -> Status {
    retry_later(Code::Unavailable, message.into(), retry_after)
}

/// The delay goes in the details for programs and in the message for people.
fn retry_later(code: Code, message: String, retry_after: Duration) -> Status {
    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    Status::with_error_details(
        code,
        format!("{message} (retry in {secs}s)"),
        ErrorDetails::with_retry_info(Some(retry_after)),
    )
}

/// The retry delay a status carries, if any.
pub fn retry_delay(status: &Status) -> Option<Duration> {
    status.get_details_retry_info().and_then(|info| info.retry_delay)
}

/// The field violations a status carries, as (field, description) pairs.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|br| {
            br.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_round_trip() {
        let status = invalid_field("username", "must be 3–32 characters");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "username: must be 3–32 characters");
        assert_eq!(
            field_violations(&status),
            vec![("username".to_string(), "must be 3–32 characters".to_string())]
        );

        let status = resource_exhausted("too many codes", Duration::from_secs(42));
        assert_eq!(retry_delay(&status), Some(Duration::from_secs(42)));
        assert!(status.message().contains("42s"));
    }

    #[test]
    fn a_reason_joins_the_details_already_there() {
        let status = with_reason(
            resource_exhausted("too many codes", Duration::from_secs(42)),
            Reason::RateLimited,
        );
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().starts_with("too many codes"));
        assert_eq!(reason(&status), Some(Reason::RateLimited));
        assert_eq!(retry_delay(&status), Some(Duration::from_secs(42)));

        let status = with_reason(invalid_field("content", "too long"), Reason::ContextTooLong);
        assert_eq!(reason(&status), Some(Reason::ContextTooLong));
        assert_eq!(field_violations(&status).len(), 1);

        assert_eq!(reason(&Status::not_found("x")), None);
    }

    #[test]
    fn reasons_read_back_from_their_codes() {
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Reason::parse(""), None);
        assert_eq!(Reason::parse("SOMETHING_ELSE"), None);
    }
}
