//! Everything that can go wrong in chat-service, and the one place it becomes a gRPC status.

use std::time::Duration;

use parley_service_kit::database;
use parley_service_kit::grpc_status::{self, Reason};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::ids::SessionId;
use crate::key_cipher::KeyCipherError;
use crate::quota::QuotaExceeded;
use crate::usage::LimitPeriod;

/// The retry delay given with UNAVAILABLE when the database cannot be reached.
const DATABASE_RETRY_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; nothing was changed.
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// Missing, or owned by someone else: the two are deliberately indistinguishable.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A name the user already gave another of their rows.
    #[error("{field}: {reason}")]
    AlreadyExists { field: &'static str, reason: String },
    /// Built-in rows are shared by everyone and cannot be changed.
    #[error("{0}")]
    ReadOnly(&'static str),
    /// The request is fine but the state does not allow it now (e.g. no API config yet).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The user has no API config, and none was named.
    #[error("no API config to answer with: create one first")]
    NoApiConfig,
    /// One generation at a time per session.
    #[error("session {session_id} is already generating an answer; stop it or wait for it to finish")]
    GenerationRunning { session_id: SessionId },
    /// The session was ended; it takes no new messages or edits until it is reopened.
    #[error("this chat was ended; reopen it to continue")]
    ChatEnded,
    #[error("too many answers are being generated at once (at most {limit} per user)")]
    TooManyGenerations { limit: usize },
    /// A write would take the account past one of its quotas; nothing was changed.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// An administrator's method called with another role's token.
    #[error("only administrators may {0}")]
    AdminOnly(&'static str),
    /// A shared connection's daily or monthly token limit is used up for this user.
    #[error(
        "the {} token limit of {limit} tokens on shared connection {connection:?} is used up; it resets at {resets_at}",
        .period.name()
    )]
    TokenLimitReached {
        connection: String,
        period: LimitPeriod,
        limit: i64,
        /// "2026-12-04T00:00:00Z".
        resets_at: String,
        retry_after: Duration,
    },
    /// Allowed to others, not to the caller (in a room they are a member of).
    #[error("{0}")]
    PermissionDenied(String),
    /// A muted room member tried to post; `until` None: until an admin unmutes them.
    #[error("you are muted in this room {}", match .until {
        Some(until) => format!("until {}", parley_proto::timestamp::from_unix_millis(*until)),
        None => "until an admin unmutes you".to_owned(),
    })]
    Muted { until: Option<i64> },
    #[error("you may post at most {limit} messages a minute to a room")]
    RoomMessageRate { limit: i64, retry_after: Duration },
    /// The room's AI member is writing an answer already (one at a time per room).
    #[error("the room's AI member is answering already; ask again once its answer is finished")]
    RoomAiBusy,
    #[error("the room's AI member answers at most {limit} questions a minute")]
    RoomAiRate { limit: i64, retry_after: Duration },
    /// The AI member's answers count against the room owner's quotas, and one is used up.
    #[error("the room's AI member cannot answer: its owner's {0}")]
    RoomOwnerQuota(QuotaExceeded),
    /// A room limit (members per room, rooms per account) is reached.
    #[error("{0}")]
    LimitReached(String),
    #[error("chat-service is shutting down")]
    ShuttingDown,
    /// The caller's account was deleted; its token is still within its lifetime.
    #[error("this account has been deleted")]
    AccountErased,
    /// user-service's directory (usernames) could not answer.
    #[error("user-service could not look up usernames: {}", .0.message())]
    UserDirectory(Status),
    /// llm-service (or the provider behind it) answered with an error status.
    #[error("llm-service: {}", .0.message())]
    Llm(Status),
    #[error("{0}")]
    KeyCipher(#[from] KeyCipherError),
    #[error("master key {path}: {reason}")]
    MasterKey { path: String, reason: String },
    #[error("configuration: {0}")]
    Config(String),
    /// An export could not be written (a bug: every value exported is serialisable).
    #[error("export: {0}")]
    Export(#[from] serde_json::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    DatabaseSetup(#[from] parley_service_kit::database::DatabaseError),
    #[error("{0}")]
    Serve(#[from] parley_service_kit::grpc_server::ServeError),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidField { field, reason } => grpc_status::invalid_field(field, reason),
            Error::NotFound(_) => Status::not_found(error.to_string()),
            Error::AlreadyExists { field, reason } => Status::with_error_details(
                Code::AlreadyExists,
                format!("{field}: {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            Error::ReadOnly(_) | Error::AdminOnly(_) => Status::permission_denied(error.to_string()),
            Error::QuotaExceeded(exceeded) => quota_status(exceeded),
            Error::FailedPrecondition(_) => Status::failed_precondition(error.to_string()),
            Error::NoApiConfig => grpc_status::with_reason(
                Status::failed_precondition(error.to_string()),
                Reason::ApiConfigRequired,
            ),
            Error::GenerationRunning { .. } => grpc_status::with_reason(
                Status::failed_precondition(error.to_string()),
                Reason::GenerationRunning,
            ),
            Error::ChatEnded => {
                grpc_status::with_reason(Status::failed_precondition(error.to_string()), Reason::ChatEnded)
            }
            Error::TooManyGenerations { .. } => grpc_status::with_reason(
                grpc_status::resource_exhausted(error.to_string(), Duration::from_secs(5)),
                Reason::TooManyGenerations,
            ),
            Error::TokenLimitReached { retry_after, .. } => grpc_status::with_reason(
                grpc_status::resource_exhausted(error.to_string(), retry_after),
                Reason::QuotaExceeded,
            ),
            Error::PermissionDenied(_) | Error::Muted { .. } => Status::permission_denied(error.to_string()),
            Error::RoomMessageRate { retry_after, .. } => grpc_status::with_reason(
                grpc_status::resource_exhausted(error.to_string(), retry_after),
                Reason::RateLimited,
            ),
            Error::RoomAiBusy => grpc_status::with_reason(
                Status::failed_precondition(error.to_string()),
                Reason::GenerationRunning,
            ),
            Error::RoomAiRate { retry_after, .. } => grpc_status::with_reason(
                grpc_status::resource_exhausted(error.to_string(), retry_after),
                Reason::RateLimited,
            ),
            // Not QUOTA_EXCEEDED: that reason tells the caller their own quota is used up.
            Error::RoomOwnerQuota(ref exceeded) => {
                let wait = exceeded
                    .resets_at
                    .map_or(0, |at| at.saturating_sub(parley_service_kit::database::now_millis()))
                    .max(1000);
                grpc_status::resource_exhausted(error.to_string(), Duration::from_millis(wait as u64))
            }
            Error::LimitReached(_) => Status::resource_exhausted(error.to_string()),
            Error::ShuttingDown => Status::unavailable(error.to_string()),
            // As a revoked token is answered, a few seconds later, by the auth layer.
            Error::AccountErased => Status::unauthenticated(error.to_string()),
            Error::Llm(status) => llm_status(status),
            Error::UserDirectory(_) => grpc_status::unavailable(error.to_string(), Duration::from_secs(2)),
            // Nothing was changed and a retry may well work: say so instead of INTERNAL.
            Error::Database(e) if database::is_unreachable(&e) => {
                tracing::error!(error = %e, "database unreachable");
                grpc_status::unavailable("the chat database is unavailable", DATABASE_RETRY_AFTER)
            }
            internal => {
                // The details stay in the log; the caller learns only that it was our fault.
                tracing::error!(error = %internal, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// RESOURCE_EXHAUSTED with reason QUOTA_EXCEEDED; the ErrorInfo metadata names the `quota`,
/// its `limit` and, for daily quotas, `resets_at` (RFC 3339, also as a RetryInfo), so a client
/// can say it in its own words.
fn quota_status(exceeded: QuotaExceeded) -> Status {
    let mut metadata = std::collections::HashMap::from([
        ("quota".to_owned(), exceeded.quota.name().to_owned()),
        ("limit".to_owned(), exceeded.limit.to_string()),
    ]);
    let mut details = ErrorDetails::new();
    if let Some(resets_at) = exceeded.resets_at {
        metadata.insert("resets_at".to_owned(), crate::quota::rfc3339(resets_at));
        let wait = resets_at
            .saturating_sub(parley_service_kit::database::now_millis())
            .max(1000);
        details.set_retry_info(Some(Duration::from_millis(wait as u64)));
    }
    details.set_error_info(Reason::QuotaExceeded.as_str(), grpc_status::ERROR_DOMAIN, metadata);
    Status::with_error_details(Code::ResourceExhausted, exceeded.to_string(), details)
}

/// llm-service's statuses already say what went wrong with the provider (UNAVAILABLE, a
/// rejected key, rate limits with their retry delay); pass them on, except its own internal
/// failures, which the caller can only treat as "the model is unavailable".
fn llm_status(status: Status) -> Status {
    match status.code() {
        Code::Internal | Code::Unknown => Status::unavailable(format!("llm-service: {}", status.message())),
        _ => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_unavailable_with_a_retry_delay() {
        for unreachable in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let status = Status::from(Error::Database(unreachable));
            assert_eq!(status.code(), Code::Unavailable);
            assert_eq!(grpc_status::retry_delay(&status), Some(DATABASE_RETRY_AFTER));
        }
        let status = Status::from(Error::Database(sqlx::Error::RowNotFound));
        assert_eq!(status.code(), Code::Internal);
    }

    #[test]
    fn refusals_a_user_can_act_on_carry_their_reason() {
        let status = Status::from(Error::NoApiConfig);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(grpc_status::reason(&status), Some(Reason::ApiConfigRequired));
        let status = Status::from(Error::TooManyGenerations { limit: 3 });
        assert_eq!(grpc_status::reason(&status), Some(Reason::TooManyGenerations));
        assert_eq!(grpc_status::retry_delay(&status), Some(Duration::from_secs(5)));
        // A provider's reason passes through chat-service untouched.
        let provider = grpc_status::with_reason(Status::failed_precondition("bad key"), Reason::ProviderAuthFailed);
        let status = Status::from(Error::Llm(provider));
        assert_eq!(grpc_status::reason(&status), Some(Reason::ProviderAuthFailed));
        assert_eq!(grpc_status::reason(&Status::from(Error::NotFound("session"))), None);
    }
}
