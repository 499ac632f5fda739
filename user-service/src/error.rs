//! Everything that can go wrong in user-service, and the one place it becomes a gRPC status.

use std::time::Duration;

use parley_service_kit::database;
use parley_service_kit::grpc_status::{self, Reason};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What a caller is told to wait when the database cannot be reached.
const DATABASE_RETRY_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; nothing was changed.
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A username someone else already has (or an address verified on another account).
    #[error("{field}: {reason}")]
    AlreadyTaken { field: &'static str, reason: String },
    /// Wrong login or password; deliberately silent about which.
    #[error("invalid login or password")]
    BadCredentials,
    #[error("refresh token is invalid or expired")]
    BadRefreshToken,
    #[error("user not found")]
    UserNotFound,
    #[error("invite code not found")]
    InviteNotFound,
    /// Too many of something (sign-in failures, code sends, password checks right now).
    #[error("{message}")]
    RateLimited {
        message: &'static str,
        retry_after: Duration,
    },
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("the account is awaiting approval by an administrator")]
    AwaitingApproval,
    #[error("only administrators may do this")]
    NotAdministrator,
    /// The request is well-formed but the account is not in a state that allows it.
    #[error("{0}")]
    Precondition(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    DatabaseSetup(#[from] parley_service_kit::database::DatabaseError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("signing key {path}: {reason}")]
    SigningKey { path: String, reason: String },
    #[error("the OS random number generator failed: {0}")]
    Randomness(String),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    #[error("signing an access token failed: {0}")]
    TokenSigning(#[from] jsonwebtoken::errors::Error),
    #[error("{0}")]
    Serve(#[from] parley_service_kit::grpc_server::ServeError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
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
            Error::AlreadyTaken { field, reason } => Status::with_error_details(
                Code::AlreadyExists,
                format!("{field}: {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            Error::BadCredentials => {
                grpc_status::with_reason(Status::unauthenticated(error.to_string()), Reason::BadCredentials)
            }
            Error::BadRefreshToken => Status::unauthenticated(error.to_string()),
            Error::UserNotFound | Error::InviteNotFound => Status::not_found(error.to_string()),
            Error::AccountDisabled => {
                grpc_status::with_reason(Status::permission_denied(error.to_string()), Reason::AccountDisabled)
            }
            Error::NotAdministrator => Status::permission_denied(error.to_string()),
            Error::Precondition(message) => Status::failed_precondition(message),
            Error::AwaitingApproval => {
                grpc_status::with_reason(Status::failed_precondition(error.to_string()), Reason::AccountPending)
            }
            Error::RateLimited { message, retry_after } => grpc_status::with_reason(
                grpc_status::resource_exhausted(message, retry_after),
                Reason::RateLimited,
            ),
            // Nothing was changed and a retry may well work: say so instead of INTERNAL.
            Error::Database(e) if database::is_unreachable(&e) => {
                tracing::error!(error = %e, "database unreachable");
                grpc_status::unavailable("the account database is unavailable", DATABASE_RETRY_AFTER)
            }
            internal => {
                // The details stay in the log; the caller learns only that it was our fault.
                tracing::error!(error = %internal, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_unavailable_with_a_retry_delay() {
        for unreachable in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let status = Status::from(Error::Database(unreachable));
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert_eq!(grpc_status::retry_delay(&status), Some(DATABASE_RETRY_AFTER));
        }
        let status = Status::from(Error::Database(sqlx::Error::RowNotFound));
        assert_eq!(status.code(), Code::Internal, "{status:?}");
    }

    #[test]
    fn account_refusals_carry_their_reason() {
        let reason = |error| grpc_status::reason(&Status::from(error));
        assert_eq!(reason(Error::BadCredentials), Some(Reason::BadCredentials));
        assert_eq!(reason(Error::AccountDisabled), Some(Reason::AccountDisabled));
        assert_eq!(reason(Error::AwaitingApproval), Some(Reason::AccountPending));
        let limited = Status::from(Error::RateLimited {
            message: "too many sign-in attempts",
            retry_after: Duration::from_secs(30),
        });
        assert_eq!(grpc_status::reason(&limited), Some(Reason::RateLimited));
        assert_eq!(grpc_status::retry_delay(&limited), Some(Duration::from_secs(30)));
        assert_eq!(reason(Error::UserNotFound), None);
    }
}
