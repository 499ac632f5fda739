//! Access tokens: EdDSA (Ed25519) JWTs signed by user-service and verified locally by every
//! service with the public keys user-service publishes (`GetPublicKeys`).
//!
//! The verifier pins the algorithm, requires the `at+jwt` type (RFC 9068) so no other JWT
//! can pass for an access token, and checks issuer, audience and expiry. It also refuses the
//! tokens of sign-ins and accounts that user-service lists as revoked: a verifier built with
//! [`TokenVerifier::with_source`] fetches keys and revocations in the background every few
//! seconds, so a logout or a deleted account takes effect within about that interval while
//! no request ever waits for a call.

mod claims;
mod keys;
mod service_token;
mod verifier;

use std::time::Duration;

pub use claims::{AccessClaims, AuthenticatedUser, TokenError};
pub use keys::{PublicKeySource, PublishedKeys, Revocation, UserServiceKeySource, VerificationKey};
pub use service_token::{AuthenticatedService, SERVICE_TOKEN_TTL, SERVICE_TOKEN_TYPE, ServiceClaims};
pub use verifier::{DEFAULT_REFRESH_INTERVAL, TokenVerifier, VerifierOptions};

/// The `iss` claim of every access token.
pub const ISSUER: &str = "parley-user-service";
/// The `aud` claim of every access token.
pub const AUDIENCE: &str = "parley";
/// The JWT header `typ` of an access token (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";
/// How long an access token lives.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// How far a token's `exp` may lie in the past and still pass (clocks differ a little).
pub const EXPIRY_LEEWAY: Duration = Duration::from_secs(30);
