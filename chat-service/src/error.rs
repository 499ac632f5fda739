//! Everything that can go wrong in chat-service, and the one place it becomes a gRPC status.

use std::time::Duration;

use parley_service_kit::{database, grpc_status};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::ids::SessionId;
use crate::key_cipher::KeyCipherError;

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
    /// One generation at a time per session.
    #[error("session {session_id} is already generating an answer; stop it or wait for it to finish")]
    GenerationRunning { session_id: SessionId },
    #[error("too many answers are being generated at once (at most {limit} per user)")]
    TooManyGenerations { limit: usize },
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
    /// A room limit (members per room, rooms per account) is reached.
    #[error("{0}")]
    LimitReached(String),
    #[error("chat-service is shutting down")]
    ShuttingDown,
    /// The caller's account was deleted; its token is still within its lifetime.
    #[error("this account has been deleted")]
    AccountErased,
    /// llm-service (or the provider behind it) answered with an error status.
    #[error("llm-service: {}", .0.message())]
    Llm(Status),
    #[error("{0}")]
    KeyCipher(#[from] KeyCipherError),
    #[error("master key {path}: {reason}")]
    MasterKey { path: String, reason: String },
    #[error("configuration: {0}")]
    Config(String),
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
            Error::ReadOnly(_) => Status::permission_denied(error.to_string()),
            Error::FailedPrecondition(_) | Error::GenerationRunning { .. } => {
                Status::failed_precondition(error.to_string())
            }
            Error::TooManyGenerations { .. } => {
                grpc_status::resource_exhausted(error.to_string(), Duration::from_secs(5))
            }
            Error::PermissionDenied(_) | Error::Muted { .. } => Status::permission_denied(error.to_string()),
            Error::RoomMessageRate { retry_after, .. } => {
                grpc_status::resource_exhausted(error.to_string(), retry_after)
            }
            Error::LimitReached(_) => Status::resource_exhausted(error.to_string()),
            Error::ShuttingDown => Status::unavailable(error.to_string()),
            // As a revoked token is answered, a few seconds later, by the auth layer.
            Error::AccountErased => Status::unauthenticated(error.to_string()),
            Error::Llm(status) => llm_status(status),
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
}
