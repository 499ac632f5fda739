//! What an access token says, who it names, and why one is refused.

use serde::{Deserialize, Serialize};

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user id, as a decimal string.
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// "user" or "admin".
    pub role: String,
    /// The sign-in (refresh-token family) the token was issued to: revoking the sign-in
    /// revokes its access tokens.
    pub sid: String,
    /// The account's random UUID, never reused (unlike `sub`, which a reset database hands
    /// out again).
    pub aid: String,
}

/// Who made a request, as the auth layer found it. Handlers read it from the request
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub user_id: i64,
    pub role: String,
    /// The account's UUID (the `aid` claim): key data that must never pass to another
    /// account by it, since user ids are reused when a database starts over.
    pub account_id: String,
    /// The sign-in the token belongs to (the `sid` claim).
    pub session_id: String,
}

impl AuthenticatedUser {
    /// The caller of an authenticated request, or UNAUTHENTICATED when the auth layer did not
    /// run for it (a public method, or a server built without auth).
    pub fn from_request<T>(request: &tonic::Request<T>) -> Result<Self, tonic::Status> {
        request
            .extensions()
            .get::<AuthenticatedUser>()
            .cloned()
            .ok_or_else(|| tonic::Status::unauthenticated("missing access token"))
    }
}

/// Why a token was refused. The message is safe to show; it never contains the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("access token is malformed")]
    Malformed,
    #[error("access token is not an EdDSA access token")]
    WrongType,
    /// A user's access token (or anything else) where a service token is required.
    #[error("this method takes a service token, not a user's access token")]
    NotAServiceToken,
    /// A service token whose scope is not the one the method needs.
    #[error("the service token's scope does not allow this method")]
    WrongScope,
    #[error("access token was signed by an unknown key")]
    UnknownKey,
    #[error("access token has expired")]
    Expired,
    #[error("access token is invalid")]
    Invalid,
    /// Its sign-in ended (logout, password change or reset) or its account was deleted or
    /// disabled.
    #[error("access token has been revoked; sign in again")]
    Revoked,
    /// The keys could not be fetched (user-service down or restarting): the token may well
    /// be good, so this is UNAVAILABLE, never UNAUTHENTICATED, and the client retries.
    #[error("access-token keys are unavailable; try again shortly")]
    KeysUnavailable,
}
