//! Access tokens: EdDSA (Ed25519) JWTs signed by user-service and verified locally by every
//! service with the public keys user-service publishes (`GetPublicKeys`).
//!
//! The verifier pins the algorithm, requires the `at+jwt` type (RFC 9068) so no other JWT
//! can pass for an access token, and checks issuer, audience and expiry. It also refuses the
//! tokens of sign-ins and accounts that user-service lists as revoked: a verifier built with
//! [`TokenVerifier::with_source`] fetches keys and revocations in the background every few
//! seconds, so a logout or a deleted account takes effect within about that interval while
//! no request ever waits for a call.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parley_proto::user::v1::GetPublicKeysRequest;
use parley_proto::user::v1::revocation::Subject;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
// Tokio's clock, so tests can move time instead of sleeping.
use tokio::time::Instant;

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
/// How often a verifier fetches keys and revocations unless told otherwise: a revoked token
/// is refused at most about this long (plus one fetch) after its revocation.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The command-line option of a service that verifies access tokens with a
/// [`TokenVerifier::with_source`]: flatten it into the service's flags and build the verifier
/// with [`TokenVerifier::with_source_refreshed_every`]`(source, options.refresh_interval())`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct VerifierOptions {
    /// How often, in milliseconds, access-token keys and revocations are fetched from
    /// user-service: a logged-out session or a deleted account is refused within about this
    /// long, for one call per interval.
    #[arg(
        long = "access-token-refresh-ms",
        env = "PARLEY_ACCESS_TOKEN_REFRESH_MS",
        default_value_t = DEFAULT_REFRESH_INTERVAL.as_millis() as u64,
        value_parser = clap::value_parser!(u64).range(10..),
    )]
    pub access_token_refresh_ms: u64,
}

impl VerifierOptions {
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_millis(self.access_token_refresh_ms)
    }
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self {
            access_token_refresh_ms: DEFAULT_REFRESH_INTERVAL.as_millis() as u64,
        }
    }
}

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

/// A public key that verifies tokens whose header names `key_id`.
#[derive(Clone)]
pub struct VerificationKey {
    pub key_id: String,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
}

/// Access tokens to refuse although they have not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Every token whose `sid` is this sign-in.
    Session { session_id: String },
    /// Every token whose `aid` is this account and that was issued before `revoked_at_ms`
    /// (Unix milliseconds).
    Account { account_id: String, revoked_at_ms: i64 },
}

/// What user-service publishes for verifiers: the keys tokens are accepted with and the
/// revocations still in force.
#[derive(Clone, Default)]
pub struct PublishedKeys {
    pub keys: Vec<VerificationKey>,
    pub revocations: Vec<Revocation>,
}

/// Where a verifier gets the keys and revocations (user-service's `GetPublicKeys`, or
/// user-service's own store).
#[tonic::async_trait]
pub trait PublicKeySource: Send + Sync + 'static {
    async fn fetch(&self) -> Result<PublishedKeys, tonic::Status>;
}

/// Fetches keys and revocations from user-service's `GetPublicKeys`.
pub struct UserServiceKeySource {
    client: UserServiceClient<tonic::transport::Channel>,
}

impl UserServiceKeySource {
    pub fn new(channel: tonic::transport::Channel) -> Self {
        Self {
            client: UserServiceClient::new(channel),
        }
    }
}

#[tonic::async_trait]
impl PublicKeySource for UserServiceKeySource {
    async fn fetch(&self) -> Result<PublishedKeys, tonic::Status> {
        let response = self
            .client
            .clone()
            .get_public_keys(GetPublicKeysRequest {})
            .await?
            .into_inner();
        let keys = response
            .keys
            .into_iter()
            .filter(|k| k.algorithm == "EdDSA")
            .map(|k| VerificationKey {
                key_id: k.key_id,
                public_key: k.public_key,
            })
            .collect();
        let revocations = response
            .revocations
            .into_iter()
            .filter_map(|r| match r.subject? {
                Subject::SessionId(session_id) => Some(Revocation::Session { session_id }),
                Subject::AccountId(account_id) => Some(Revocation::Account {
                    account_id,
                    // Without a time, every token of the account so far.
                    revoked_at_ms: r
                        .revoked_at
                        .as_ref()
                        .map_or(i64::MAX, parley_proto::timestamp::to_unix_millis),
                }),
            })
            .collect();
        Ok(PublishedKeys { keys, revocations })
    }
}

/// The least time between two fetches a request triggers (for a key id the verifier does not
/// know), so a flood of tokens with made-up key ids cannot turn into a flood of calls to
/// user-service.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// After a failed fetch the next one a request triggers waits this long, doubling with each
/// failure in a row up to [`MIN_REFRESH_INTERVAL`]: an outage of user-service costs it one
/// call per interval, not one per request.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
/// A fetch that takes longer has failed; requests waiting for it are not held any longer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the verifier trusts: the keys and revocations of the last successful fetch.
#[derive(Default)]
struct Trusted {
    keys: HashMap<String, DecodingKey>,
    revoked_sessions: HashSet<String>,
    /// Account id → tokens issued before this time (Unix ms) are refused.
    revoked_accounts: HashMap<String, i64>,
}

impl Trusted {
    fn is_revoked(&self, claims: &AccessClaims) -> bool {
        self.revoked_sessions.contains(&claims.sid)
            || self
                .revoked_accounts
                .get(&claims.aid)
                // `iat` has whole seconds: a token from the second of the revocation counts
                // as before it (refusing too much for a moment rather than too little).
                .is_some_and(|&revoked_at_ms| claims.iat.saturating_mul(1000) < revoked_at_ms)
    }
}

/// What the last fetch did, so requests that arrive while it is fresh share its outcome.
#[derive(Default)]
struct FetchState {
    /// Failed fetches in a row.
    failures: u32,
    /// No fetch for a request before this.
    next_fetch_at: Option<Instant>,
}

impl FetchState {
    /// The answer for a key the last fetch did not find.
    fn missing_key(&self) -> TokenError {
        if self.failures > 0 {
            TokenError::KeysUnavailable
        } else {
            TokenError::UnknownKey
        }
    }
}

/// Verifies access tokens locally against a set of Ed25519 keys and a list of revocations.
/// With a source it keeps both current: a background task fetches them every refresh
/// interval (while the verifier lives), and a token naming a key the verifier does not know
/// triggers a fetch too (throttled). A successful fetch replaces the keys and revocations;
/// a failed one keeps the last good set.
pub struct TokenVerifier {
    shared: Arc<Shared>,
}

struct Shared {
    trusted: RwLock<Trusted>,
    source: Option<Arc<dyn PublicKeySource>>,
    fetch: Mutex<FetchState>,
    /// Fetches done so far (successful or not), counted under `fetch` but read before taking
    /// it, so a request can tell that a fetch ran while it waited.
    fetches_done: AtomicU64,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier with a fixed key set and no revocations (tests, tools).
    pub fn with_keys(keys: Vec<VerificationKey>) -> Self {
        Self::build(
            None,
            Trusted {
                keys: valid_keys(keys).collect(),
                ..Trusted::default()
            },
        )
    }

    /// A verifier that fetches keys and revocations from `source` every
    /// [`DEFAULT_REFRESH_INTERVAL`], and whenever an unknown key id shows up. Call it inside
    /// a Tokio runtime (the background fetches run on it).
    pub fn with_source(source: Arc<dyn PublicKeySource>) -> Self {
        Self::with_source_refreshed_every(source, DEFAULT_REFRESH_INTERVAL)
    }

    /// [`Self::with_source`] with another refresh interval: how long at most a revoked token
    /// stays accepted (plus one fetch), against one call per interval to the source.
    pub fn with_source_refreshed_every(source: Arc<dyn PublicKeySource>, interval: Duration) -> Self {
        let verifier = Self::build(Some(source), Trusted::default());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(refresh_periodically(Arc::downgrade(&verifier.shared), interval));
            }
            Err(_) => tracing::warn!(
                "token verifier built outside a Tokio runtime: keys and revocations are fetched \
                 only when a token names an unknown key"
            ),
        }
        verifier
    }

    fn build(source: Option<Arc<dyn PublicKeySource>>, trusted: Trusted) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = EXPIRY_LEEWAY.as_secs();
        Self {
            shared: Arc::new(Shared {
                trusted: RwLock::new(trusted),
                source,
                fetch: Mutex::new(FetchState::default()),
                fetches_done: AtomicU64::new(0),
                validation,
            }),
        }
    }

    /// Checks signature, type, issuer, audience, expiry and revocation; answers the caller.
    pub async fn verify(&self, token: &str) -> Result<AuthenticatedUser, TokenError> {
        self.shared.verify(token).await
    }

    /// Checks a service token: signature (the same keys as access tokens), type
    /// [`SERVICE_TOKEN_TYPE`], issuer, `audience`, expiry and that its scope is `scope`.
    pub async fn verify_service(
        &self,
        token: &str,
        audience: &str,
        scope: &str,
    ) -> Result<AuthenticatedService, TokenError> {
        self.shared.verify_service(token, audience, scope).await
    }
}

fn decode_error(e: jsonwebtoken::errors::Error) -> TokenError {
    match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Invalid,
    }
}

impl Shared {
    /// The key that verifies a token whose header is `header`, fetched if need be.
    async fn key_of(&self, header: jsonwebtoken::Header) -> Result<DecodingKey, TokenError> {
        let key_id = header.kid.ok_or(TokenError::UnknownKey)?;
        match self.known_key(&key_id).await {
            Some(key) => Ok(key),
            None => self.fetch_for(&key_id).await,
        }
    }

    async fn verify_service(
        &self,
        token: &str,
        audience: &str,
        scope: &str,
    ) -> Result<AuthenticatedService, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(SERVICE_TOKEN_TYPE) {
            return Err(TokenError::NotAServiceToken);
        }
        let key = self.key_of(header).await?;
        let mut validation = self.validation.clone();
        validation.set_audience(&[audience]);
        let claims = jsonwebtoken::decode::<ServiceClaims>(token, &key, &validation)
            .map_err(decode_error)?
            .claims;
        if claims.scope != scope {
            return Err(TokenError::WrongScope);
        }
        Ok(AuthenticatedService {
            service: claims.sub,
            scope: claims.scope,
        })
    }

    async fn verify(&self, token: &str) -> Result<AuthenticatedUser, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(TokenError::WrongType);
        }
        let key = self.key_of(header).await?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation).map_err(decode_error)?;
        let claims = data.claims;
        let user_id = claims.sub.parse::<i64>().map_err(|_| TokenError::Invalid)?;
        if claims.sid.is_empty() || claims.aid.is_empty() {
            return Err(TokenError::Invalid);
        }
        if self.trusted.read().await.is_revoked(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(AuthenticatedUser {
            user_id,
            role: claims.role,
            account_id: claims.aid,
            session_id: claims.sid,
        })
    }

    async fn known_key(&self, key_id: &str) -> Option<DecodingKey> {
        self.trusted.read().await.keys.get(key_id).cloned()
    }

    /// Fetches the key set for a key id it lacks. One fetch runs at a time, bounded by
    /// [`FETCH_TIMEOUT`]; requests that waited for it take its outcome instead of fetching
    /// again, and after a failure the next fetch waits out a growing delay.
    async fn fetch_for(&self, key_id: &str) -> Result<DecodingKey, TokenError> {
        if self.source.is_none() {
            return Err(TokenError::UnknownKey);
        }
        let fetches_before = self.fetches_done.load(Ordering::Acquire);
        let mut state = self.fetch.lock().await;
        if let Some(key) = self.known_key(key_id).await {
            return Ok(key);
        }
        let now = Instant::now();
        let fetched_meanwhile = self.fetches_done.load(Ordering::Acquire) != fetches_before;
        if fetched_meanwhile || state.next_fetch_at.is_some_and(|at| now < at) {
            // Someone fetched while this request waited, or very recently: no news yet.
            return Err(state.missing_key());
        }
        if self.fetch_now(&mut state).await {
            self.known_key(key_id).await.ok_or(TokenError::UnknownKey)
        } else {
            Err(TokenError::KeysUnavailable)
        }
    }

    /// The scheduled fetch: always runs (after any fetch in progress), and resets the
    /// throttle for requests as any fetch does.
    async fn refresh(&self) {
        let mut state = self.fetch.lock().await;
        self.fetch_now(&mut state).await;
    }

    /// One fetch, under the `fetch` lock; true when it succeeded. Success replaces the keys
    /// and revocations: a key user-service no longer lists is dropped at once.
    async fn fetch_now(&self, state: &mut FetchState) -> bool {
        let Some(source) = &self.source else {
            return false;
        };
        let now = Instant::now();
        let fetched = match tokio::time::timeout(FETCH_TIMEOUT, source.fetch()).await {
            Ok(Ok(published)) => Ok(published),
            Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
            Err(_) => Err(format!("no answer within {FETCH_TIMEOUT:?}")),
        };
        self.fetches_done.fetch_add(1, Ordering::Release);
        match fetched {
            Ok(published) => {
                state.failures = 0;
                state.next_fetch_at = Some(now + MIN_REFRESH_INTERVAL);
                let mut trusted = Trusted {
                    keys: valid_keys(published.keys).collect(),
                    ..Trusted::default()
                };
                for revocation in published.revocations {
                    match revocation {
                        Revocation::Session { session_id } => {
                            trusted.revoked_sessions.insert(session_id);
                        }
                        Revocation::Account {
                            account_id,
                            revoked_at_ms,
                        } => {
                            let at = trusted.revoked_accounts.entry(account_id).or_insert(revoked_at_ms);
                            *at = (*at).max(revoked_at_ms);
                        }
                    }
                }
                *self.trusted.write().await = trusted;
                true
            }
            Err(reason) => {
                state.failures = state.failures.saturating_add(1);
                let delay = FIRST_RETRY_DELAY
                    .saturating_mul(1 << (state.failures - 1).min(16))
                    .min(MIN_REFRESH_INTERVAL);
                state.next_fetch_at = Some(now + delay);
                // One failure is what starting next to user-service looks like (the first
                // background fetch may run before it serves); from the second on it is news.
                if state.failures == 1 {
                    tracing::debug!(%reason, retry_in = ?delay, "could not fetch access-token keys and revocations; keeping the last ones");
                } else {
                    tracing::warn!(%reason, failures = state.failures, retry_in = ?delay, "could not fetch access-token keys and revocations; keeping the last ones");
                }
                false
            }
        }
    }
}

/// Fetches every `interval` until the verifier is dropped.
async fn refresh_periodically(shared: Weak<Shared>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.refresh().await;
    }
}

fn valid_keys(keys: Vec<VerificationKey>) -> impl Iterator<Item = (String, DecodingKey)> {
    keys.into_iter()
        .filter(|k| k.public_key.len() == 32)
        .map(|k| (k.key_id, DecodingKey::from_ed_der(&k.public_key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    /// PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410), as jsonwebtoken's signer wants it.
    fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ];
        der.extend_from_slice(seed);
        der
    }

    fn keypair(seed: u8) -> (EncodingKey, VerificationKey) {
        let seed = [seed; 32];
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        (
            EncodingKey::from_ed_der(&pkcs8(&seed)),
            VerificationKey {
                key_id: format!("k{}", seed[0]),
                public_key: signing.verifying_key().to_bytes().to_vec(),
            },
        )
    }

    fn claims(exp_offset: i64) -> AccessClaims {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        AccessClaims {
            sub: "42".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: now + exp_offset,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            role: "user".into(),
            sid: "session-1".into(),
            aid: "account-42".into(),
        }
    }

    fn sign(key: &EncodingKey, kid: &str, typ: &str, claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        header.typ = Some(typ.into());
        jsonwebtoken::encode(&header, claims, key).unwrap_or_default()
    }

    #[tokio::test]
    async fn accepts_a_good_token_and_refuses_tampering() {
        let (enc, ver) = keypair(1);
        let verifier = TokenVerifier::with_keys(vec![ver.clone()]);
        let token = sign(&enc, &ver.key_id, TOKEN_TYPE, &claims(600));
        assert_eq!(
            verifier.verify(&token).await,
            Ok(AuthenticatedUser {
                user_id: 42,
                role: "user".into(),
                account_id: "account-42".into(),
                session_id: "session-1".into(),
            })
        );

        let mut forged = claims(600);
        forged.sub = "43".into();
        let forged_payload = sign(&enc, &ver.key_id, TOKEN_TYPE, &forged);
        let parts: Vec<&str> = token.split('.').collect();
        let forged_parts: Vec<&str> = forged_payload.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_parts[1], parts[2]);
        assert_eq!(verifier.verify(&tampered).await, Err(TokenError::Invalid));
    }

    #[tokio::test]
    async fn refuses_expired_wrong_audience_wrong_type_and_unknown_keys() {
        let (enc, ver) = keypair(2);
        let verifier = TokenVerifier::with_keys(vec![ver.clone()]);
        assert_eq!(
            verifier
                .verify(&sign(&enc, &ver.key_id, TOKEN_TYPE, &claims(-600)))
                .await,
            Err(TokenError::Expired)
        );
        let mut wrong_aud = claims(600);
        wrong_aud.aud = "someone-else".into();
        assert_eq!(
            verifier.verify(&sign(&enc, &ver.key_id, TOKEN_TYPE, &wrong_aud)).await,
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verifier.verify(&sign(&enc, &ver.key_id, "JWT", &claims(600))).await,
            Err(TokenError::WrongType)
        );
        let (other_enc, _) = keypair(3);
        assert_eq!(
            verifier.verify(&sign(&other_enc, "k3", TOKEN_TYPE, &claims(600))).await,
            Err(TokenError::UnknownKey)
        );
        // Signed by another key but claiming ours.
        assert_eq!(
            verifier
                .verify(&sign(&other_enc, &ver.key_id, TOKEN_TYPE, &claims(600)))
                .await,
            Err(TokenError::Invalid)
        );
    }

    #[tokio::test]
    async fn refuses_alg_none() {
        let (_, ver) = keypair(4);
        let verifier = TokenVerifier::with_keys(vec![ver]);
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"at+jwt","kid":"k4"}"#);
        let body = b64.encode(serde_json_claims(&claims(600)).as_bytes());
        assert!(verifier.verify(&format!("{header}.{body}.")).await.is_err());
    }

    fn serde_json_claims(c: &AccessClaims) -> String {
        format!(
            r#"{{"sub":"{}","iss":"{}","aud":"{}","exp":{},"iat":{},"jti":"{}","role":"{}","sid":"{}","aid":"{}"}}"#,
            c.sub, c.iss, c.aud, c.exp, c.iat, c.jti, c.role, c.sid, c.aid
        )
    }

    /// One scripted answer of a key source: `None` never answers.
    type Answer = Option<Result<PublishedKeys, tonic::Status>>;

    /// A verifier that fetches only when a token names an unknown key (no background task,
    /// so the tests count every call).
    fn on_demand(source: Arc<dyn PublicKeySource>) -> TokenVerifier {
        TokenVerifier::build(Some(source), Trusted::default())
    }

    /// A key source that answers from a script, one answer per fetch (the last one repeats),
    /// and counts its calls. `None` never answers.
    struct ScriptedSource {
        answers: std::sync::Mutex<std::collections::VecDeque<Answer>>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl ScriptedSource {
        fn new(answers: Vec<Answer>) -> Arc<Self> {
            Arc::new(Self {
                answers: std::sync::Mutex::new(answers.into()),
                calls: Default::default(),
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[tonic::async_trait]
    impl PublicKeySource for ScriptedSource {
        async fn fetch(&self) -> Result<PublishedKeys, tonic::Status> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = {
                let mut answers = self.answers.lock().unwrap_or_else(|e| panic!("{e}"));
                if answers.len() > 1 {
                    answers.pop_front()
                } else {
                    answers.front().cloned()
                }
            };
            match answer.flatten() {
                Some(answer) => answer,
                None => std::future::pending().await,
            }
        }
    }

    fn down() -> Answer {
        Some(Err(tonic::Status::unavailable("connection refused")))
    }

    fn up(keys: &[&VerificationKey]) -> Answer {
        up_revoking(keys, Vec::new())
    }

    fn up_revoking(keys: &[&VerificationKey], revocations: Vec<Revocation>) -> Answer {
        Some(Ok(PublishedKeys {
            keys: keys.iter().map(|k| (*k).clone()).collect(),
            revocations,
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn fetches_unknown_keys_once_and_throttles_refreshes() {
        let (enc, ver) = keypair(5);
        let source = ScriptedSource::new(vec![up(&[&ver])]);
        let verifier = on_demand(source.clone());
        let token = sign(&enc, &ver.key_id, TOKEN_TYPE, &claims(600));
        assert!(verifier.verify(&token).await.is_ok());
        assert!(verifier.verify(&token).await.is_ok());
        assert_eq!(source.calls(), 1);
        let bogus = sign(&enc, "made-up", TOKEN_TYPE, &claims(600));
        assert_eq!(verifier.verify(&bogus).await, Err(TokenError::UnknownKey));
        assert_eq!(verifier.verify(&bogus).await, Err(TokenError::UnknownKey));
        // The first unknown id was within the throttle window of the initial fetch.
        assert_eq!(source.calls(), 1);
        tokio::time::advance(MIN_REFRESH_INTERVAL).await;
        assert_eq!(verifier.verify(&bogus).await, Err(TokenError::UnknownKey));
        assert_eq!(source.calls(), 2);
    }

    /// user-service restarting must not sign browsers out: keys that cannot be fetched answer
    /// KeysUnavailable (UNAVAILABLE), one fetch serves every waiting request, and retries back
    /// off instead of running one after another.
    #[tokio::test(start_paused = true)]
    async fn an_outage_is_unavailable_with_one_fetch_and_a_growing_delay() {
        let (enc, ver) = keypair(6);
        let source = ScriptedSource::new(vec![down(), down(), up(&[&ver])]);
        let verifier = Arc::new(on_demand(source.clone()));
        let token = sign(&enc, &ver.key_id, TOKEN_TYPE, &claims(600));

        let waiting: Vec<_> = (0..20)
            .map(|_| {
                let (verifier, token) = (Arc::clone(&verifier), token.clone());
                tokio::spawn(async move { verifier.verify(&token).await })
            })
            .collect();
        for request in waiting {
            assert_eq!(request.await.ok(), Some(Err(TokenError::KeysUnavailable)));
        }
        assert_eq!(source.calls(), 1, "every request retried the fetch");

        // Within the delay: answered at once, no call.
        tokio::time::advance(FIRST_RETRY_DELAY / 2).await;
        assert_eq!(verifier.verify(&token).await, Err(TokenError::KeysUnavailable));
        assert_eq!(source.calls(), 1);
        // After it: one more try, which fails, and the next delay is twice as long.
        tokio::time::advance(FIRST_RETRY_DELAY).await;
        assert_eq!(verifier.verify(&token).await, Err(TokenError::KeysUnavailable));
        assert_eq!(source.calls(), 2);
        tokio::time::advance(FIRST_RETRY_DELAY * 3 / 2).await;
        assert_eq!(verifier.verify(&token).await, Err(TokenError::KeysUnavailable));
        assert_eq!(source.calls(), 2);
        tokio::time::advance(FIRST_RETRY_DELAY).await;
        assert!(verifier.verify(&token).await.is_ok());
        assert_eq!(source.calls(), 3);
    }

    /// A source that never answers holds requests for at most the fetch timeout.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_fetch_times_out() {
        let (enc, ver) = keypair(7);
        let source = ScriptedSource::new(vec![None]);
        let verifier = on_demand(source.clone());
        let token = sign(&enc, &ver.key_id, TOKEN_TYPE, &claims(600));
        let started = Instant::now();
        assert_eq!(verifier.verify(&token).await, Err(TokenError::KeysUnavailable));
        assert_eq!(started.elapsed(), FETCH_TIMEOUT);
    }

    /// A key user-service stops listing is refused from the next successful fetch on, not
    /// kept for an hour; a failed fetch keeps the last good set.
    #[tokio::test(start_paused = true)]
    async fn a_key_no_longer_listed_is_dropped_by_the_next_fetch() {
        let (old_enc, old) = keypair(8);
        let (new_enc, new) = keypair(9);
        let source = ScriptedSource::new(vec![up(&[&new, &old]), down(), up(&[&new])]);
        let verifier = on_demand(source.clone());
        let old_token = sign(&old_enc, &old.key_id, TOKEN_TYPE, &claims(600));
        let new_token = sign(&new_enc, &new.key_id, TOKEN_TYPE, &claims(600));
        assert!(verifier.verify(&old_token).await.is_ok());
        // user-service unreachable: both keys stay.
        verifier.shared.refresh().await;
        assert_eq!(source.calls(), 2);
        assert!(verifier.verify(&old_token).await.is_ok());
        assert!(verifier.verify(&new_token).await.is_ok());
        // It answers again without `old`: gone at once.
        verifier.shared.refresh().await;
        assert_eq!(source.calls(), 3);
        assert!(verifier.verify(&new_token).await.is_ok());
        tokio::time::advance(MIN_REFRESH_INTERVAL).await;
        assert_eq!(verifier.verify(&old_token).await, Err(TokenError::UnknownKey));
    }

    /// The background task fetches every interval without any request asking, and stops
    /// once the verifier is dropped.
    #[tokio::test(start_paused = true)]
    async fn the_background_refresh_runs_every_interval_while_the_verifier_lives() {
        let (old_enc, old) = keypair(12);
        let (_, new) = keypair(13);
        let source = ScriptedSource::new(vec![up(&[&old]), up(&[&old]), up(&[&new])]);
        let interval = Duration::from_secs(3);
        let verifier = TokenVerifier::with_source_refreshed_every(source.clone(), interval);
        let old_token = sign(&old_enc, &old.key_id, TOKEN_TYPE, &claims(600));
        tokio::task::yield_now().await;
        assert_eq!(source.calls(), 1, "the first fetch runs at once");
        assert!(verifier.verify(&old_token).await.is_ok());
        // Just past each tick, so the fetch due at the tick has run.
        let step = interval + Duration::from_millis(1);
        tokio::time::sleep(step).await;
        assert_eq!(source.calls(), 2);
        assert!(verifier.verify(&old_token).await.is_ok());
        tokio::time::sleep(interval).await;
        assert_eq!(source.calls(), 3);
        assert_eq!(verifier.verify(&old_token).await, Err(TokenError::UnknownKey));
        drop(verifier);
        tokio::time::sleep(interval * 3).await;
        assert_eq!(source.calls(), 3, "a dropped verifier still fetches");
    }

    /// Tokens of a revoked sign-in, and tokens of a revoked account issued before its
    /// revocation, are refused; others are not. A revocation that leaves the list (it
    /// outlived every token it was about) stops applying.
    #[tokio::test(start_paused = true)]
    async fn refuses_revoked_sessions_and_accounts() {
        let (enc, ver) = keypair(14);
        let now_ms = claims(0).iat * 1000;
        let revoked = vec![
            Revocation::Session {
                session_id: "signed-out".into(),
            },
            Revocation::Account {
                account_id: "deleted".into(),
                revoked_at_ms: now_ms - 10_000,
            },
        ];
        let source = ScriptedSource::new(vec![up_revoking(&[&ver], revoked), up(&[&ver])]);
        let verifier = on_demand(source.clone());
        let token = |sid: &str, aid: &str, issued_ago: i64| {
            let mut c = claims(600);
            c.sid = sid.into();
            c.aid = aid.into();
            c.iat -= issued_ago;
            sign(&enc, &ver.key_id, TOKEN_TYPE, &c)
        };
        assert!(verifier.verify(&token("session-1", "account-42", 0)).await.is_ok());
        assert_eq!(
            verifier.verify(&token("signed-out", "account-42", 0)).await,
            Err(TokenError::Revoked)
        );
        assert_eq!(
            verifier.verify(&token("session-2", "deleted", 60)).await,
            Err(TokenError::Revoked)
        );
        // Issued after the account's revocation (it was enabled again and signed in).
        assert!(verifier.verify(&token("session-3", "deleted", 0)).await.is_ok());
        // A token without the claims is not an access token of this version.
        assert_eq!(
            verifier.verify(&token("", "account-42", 0)).await,
            Err(TokenError::Invalid)
        );
        verifier.shared.refresh().await;
        assert!(verifier.verify(&token("signed-out", "account-42", 0)).await.is_ok());
    }

    #[test]
    fn the_refresh_option_defaults_to_five_seconds_and_refuses_zero() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            verifier: VerifierOptions,
        }
        let parsed = Cli::try_parse_from(["svc"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.verifier, VerifierOptions::default());
        assert_eq!(parsed.verifier.refresh_interval(), DEFAULT_REFRESH_INTERVAL);
        let parsed = Cli::try_parse_from(["svc", "--access-token-refresh-ms", "250"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.verifier.refresh_interval(), Duration::from_millis(250));
        let refused = Cli::try_parse_from(["svc", "--access-token-refresh-ms", "0"]).err();
        assert!(refused.is_some_and(|e| e.to_string().contains("access-token-refresh-ms")));
    }

    /// An HS256 token whose HMAC key is the public key's bytes (the classic algorithm
    /// confusion) is refused: the algorithm is pinned to EdDSA.
    #[tokio::test]
    async fn refuses_hs256_signed_with_the_public_key() {
        let (_, ver) = keypair(11);
        let verifier = TokenVerifier::with_keys(vec![ver.clone()]);
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(ver.key_id.clone());
        header.typ = Some(TOKEN_TYPE.into());
        let forged = jsonwebtoken::encode(&header, &claims(600), &EncodingKey::from_secret(&ver.public_key))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verifier.verify(&forged).await, Err(TokenError::WrongType));
    }

    fn service_claims(audience: &str, scope: &str, exp_offset: i64) -> ServiceClaims {
        let now = claims(0).iat;
        ServiceClaims {
            sub: "user-service".into(),
            iss: ISSUER.into(),
            aud: audience.into(),
            exp: now + exp_offset,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.into(),
        }
    }

    /// Service tokens and access tokens never pass for each other; a service token counts
    /// only for its audience and scope.
    #[tokio::test]
    async fn service_tokens_are_checked_for_type_audience_and_scope() {
        let (enc, ver) = keypair(12);
        let verifier = TokenVerifier::with_keys(vec![ver.clone()]);
        let sign_service = |claims: &ServiceClaims, typ: &str| {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(ver.key_id.clone());
            header.typ = Some(typ.into());
            jsonwebtoken::encode(&header, claims, &enc).unwrap_or_else(|e| panic!("{e}"))
        };
        let good = sign_service(&service_claims("chat", "erase", 60), SERVICE_TOKEN_TYPE);
        assert_eq!(
            verifier.verify_service(&good, "chat", "erase").await,
            Ok(AuthenticatedService {
                service: "user-service".into(),
                scope: "erase".into()
            })
        );
        assert_eq!(
            verifier.verify_service(&good, "chat", "other").await,
            Err(TokenError::WrongScope)
        );
        assert_eq!(
            verifier.verify_service(&good, "other-service", "erase").await,
            Err(TokenError::Invalid)
        );
        // A service token is no access token.
        assert_eq!(verifier.verify(&good).await, Err(TokenError::WrongType));
        // A user's access token is no service token.
        let user = sign(&enc, &ver.key_id, TOKEN_TYPE, &claims(600));
        assert_eq!(
            verifier.verify_service(&user, "chat", "erase").await,
            Err(TokenError::NotAServiceToken)
        );
        let expired = sign_service(&service_claims("chat", "erase", -600), SERVICE_TOKEN_TYPE);
        assert_eq!(
            verifier.verify_service(&expired, "chat", "erase").await,
            Err(TokenError::Expired)
        );
        let (other_enc, _) = keypair(13);
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(ver.key_id.clone());
        header.typ = Some(SERVICE_TOKEN_TYPE.into());
        let forged = jsonwebtoken::encode(&header, &service_claims("chat", "erase", 60), &other_enc)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            verifier.verify_service(&forged, "chat", "erase").await,
            Err(TokenError::Invalid)
        );
    }
}
