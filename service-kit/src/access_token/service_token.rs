//! Service tokens: one service calling another's internal method.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The JWT header `typ` of a service token: one service calling another's internal method
/// (user-service asking chat-service to erase an account). A distinct type, so a service token
/// never passes for a user's access token nor the other way round.
pub const SERVICE_TOKEN_TYPE: &str = "svc+jwt";
/// How long a service token lives: it is signed for each call.
pub const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(60);

/// The claims of a service token (signed by user-service with its access-token key).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceClaims {
    /// The calling service, e.g. `user-service`.
    pub sub: String,
    pub iss: String,
    /// The called service, e.g. `parley-chat-service`.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The one thing the token allows, e.g. `chat.erase-account`.
    pub scope: String,
}

/// The caller of an internal method, as the auth layer found it in a service token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedService {
    /// The calling service (the token's `sub`).
    pub service: String,
    pub scope: String,
}
