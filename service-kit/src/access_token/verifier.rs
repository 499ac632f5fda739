//! [`TokenVerifier`]: local verification against fetched keys and revocations.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};
// Tokio's clock, so tests can move time instead of sleeping.
use tokio::time::Instant;

use super::{
    AUDIENCE, AccessClaims, AuthenticatedService, AuthenticatedUser, EXPIRY_LEEWAY, ISSUER, PublicKeySource,
    Revocation, SERVICE_TOKEN_TYPE, ServiceClaims, TOKEN_TYPE, TokenError, VerificationKey,
};

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
mod tests;
