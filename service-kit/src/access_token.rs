//! Access tokens: EdDSA (Ed25519) JWTs signed by user-service and verified locally by every
//! service with the public keys user-service publishes (`GetPublicKeys`).
//!
//! The verifier pins the algorithm, requires the `at+jwt` type (RFC 9068) so no other JWT
//! can pass for an access token, and checks issuer, audience and expiry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parley_proto::user::v1::GetPublicKeysRequest;
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
}

/// Who made a request, as the auth layer found it. Handlers read it from the request
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub user_id: i64,
    pub role: String,
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
    #[error("access token was signed by an unknown key")]
    UnknownKey,
    #[error("access token has expired")]
    Expired,
    #[error("access token is invalid")]
    Invalid,
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

/// Where a verifier gets keys it does not have yet (e.g. after user-service rotated its key).
#[tonic::async_trait]
pub trait PublicKeySource: Send + Sync + 'static {
    async fn fetch(&self) -> Result<Vec<VerificationKey>, tonic::Status>;
}

/// Fetches keys from user-service's `GetPublicKeys`.
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
    async fn fetch(&self) -> Result<Vec<VerificationKey>, tonic::Status> {
        let response = self.client.clone().get_public_keys(GetPublicKeysRequest {}).await?;
        Ok(response
            .into_inner()
            .keys
            .into_iter()
            .filter(|k| k.algorithm == "EdDSA")
            .map(|k| VerificationKey {
                key_id: k.key_id,
                public_key: k.public_key,
            })
            .collect())
    }
}

/// The least time between two successful fetches of the key set, so a flood of tokens with
/// made-up key ids cannot turn into a flood of calls to user-service.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// After a failed fetch the next one waits this long, doubling with each failure in a row up
/// to [`MIN_REFRESH_INTERVAL`]: an outage of user-service costs it one call per interval, not
/// one per request.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
/// A fetch that takes longer has failed; requests waiting for it are not held any longer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// A key that no fetch has returned for this long is forgotten. Replicas of user-service
/// behind one address may publish different sets during a key rotation, so a fetch adds keys
/// and a key leaves only once it has been missing from every fetch for a while.
pub const KEY_RETENTION: Duration = Duration::from_secs(60 * 60);

struct KnownKey {
    key: DecodingKey,
    /// When a fetch last returned it; `None` for keys the verifier was built with.
    last_seen: Option<Instant>,
}

/// What the last fetch did, so requests that arrive while it is fresh share its outcome.
#[derive(Default)]
struct FetchState {
    /// Failed fetches in a row.
    failures: u32,
    /// No new fetch before this.
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

/// Verifies access tokens locally against a set of Ed25519 keys, adding keys from its source
/// when a token names a key it does not know.
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, KnownKey>>,
    source: Option<Arc<dyn PublicKeySource>>,
    fetch: Mutex<FetchState>,
    /// Fetches done so far (successful or not), counted under `fetch` but read before taking
    /// it, so a request can tell that a fetch ran while it waited.
    fetches_done: AtomicU64,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier with a fixed key set (user-service verifies with its own keys).
    pub fn with_keys(keys: Vec<VerificationKey>) -> Self {
        Self::build(keys, None)
    }

    /// A verifier that loads keys from `source` on first use and whenever an unknown key id
    /// shows up.
    pub fn with_source(source: Arc<dyn PublicKeySource>) -> Self {
        Self::build(Vec::new(), Some(source))
    }

    fn build(keys: Vec<VerificationKey>, source: Option<Arc<dyn PublicKeySource>>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let keys = valid_keys(keys)
            .map(|(key_id, key)| (key_id, KnownKey { key, last_seen: None }))
            .collect();
        Self {
            keys: RwLock::new(keys),
            source,
            fetch: Mutex::new(FetchState::default()),
            fetches_done: AtomicU64::new(0),
            validation,
        }
    }

    /// Checks signature, type, issuer, audience and expiry; answers the caller.
    pub async fn verify(&self, token: &str) -> Result<AuthenticatedUser, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(TokenError::WrongType);
        }
        let key_id = header.kid.ok_or(TokenError::UnknownKey)?;
        let known = self.known_key(&key_id).await;
        let key = match known {
            Some(key) => key,
            None => self.fetch_for(&key_id).await?,
        };
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        let user_id = data.claims.sub.parse::<i64>().map_err(|_| TokenError::Invalid)?;
        Ok(AuthenticatedUser {
            user_id,
            role: data.claims.role,
        })
    }

    async fn known_key(&self, key_id: &str) -> Option<DecodingKey> {
        self.keys.read().await.get(key_id).map(|k| k.key.clone())
    }

    /// Fetches the key set for a key id it lacks. One fetch runs at a time, bounded by
    /// [`FETCH_TIMEOUT`]; requests that waited for it take its outcome instead of fetching
    /// again, and after a failure the next fetch waits out a growing delay.
    async fn fetch_for(&self, key_id: &str) -> Result<DecodingKey, TokenError> {
        let Some(source) = &self.source else {
            return Err(TokenError::UnknownKey);
        };
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
        let fetched = match tokio::time::timeout(FETCH_TIMEOUT, source.fetch()).await {
            Ok(Ok(keys)) => Ok(keys),
            Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
            Err(_) => Err(format!("no answer within {FETCH_TIMEOUT:?}")),
        };
        self.fetches_done.fetch_add(1, Ordering::Release);
        match fetched {
            Ok(keys) => {
                state.failures = 0;
                state.next_fetch_at = Some(now + MIN_REFRESH_INTERVAL);
                self.merge(keys, now).await;
                self.known_key(key_id).await.ok_or(TokenError::UnknownKey)
            }
            Err(reason) => {
                state.failures = state.failures.saturating_add(1);
                let delay = FIRST_RETRY_DELAY
                    .saturating_mul(1 << (state.failures - 1).min(16))
                    .min(MIN_REFRESH_INTERVAL);
                state.next_fetch_at = Some(now + delay);
                tracing::warn!(%reason, failures = state.failures, retry_in = ?delay, "could not fetch access-token keys");
                Err(TokenError::KeysUnavailable)
            }
        }
    }

    /// Adds the fetched keys and forgets fetched keys no fetch has returned for
    /// [`KEY_RETENTION`].
    async fn merge(&self, fetched: Vec<VerificationKey>, now: Instant) {
        let mut keys = self.keys.write().await;
        for (key_id, key) in valid_keys(fetched) {
            keys.insert(
                key_id,
                KnownKey {
                    key,
                    last_seen: Some(now),
                },
            );
        }
        keys.retain(|_, k| k.last_seen.is_none_or(|seen| now.duration_since(seen) < KEY_RETENTION));
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
                role: "user".into()
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
            r#"{{"sub":"{}","iss":"{}","aud":"{}","exp":{},"iat":{},"jti":"{}","role":"{}"}}"#,
            c.sub, c.iss, c.aud, c.exp, c.iat, c.jti, c.role
        )
    }

    /// One scripted answer of a key source: `None` never answers.
    type Answer = Option<Result<Vec<VerificationKey>, tonic::Status>>;

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
        async fn fetch(&self) -> Result<Vec<VerificationKey>, tonic::Status> {
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
        Some(Ok(keys.iter().map(|k| (*k).clone()).collect()))
    }

    #[tokio::test(start_paused = true)]
    async fn fetches_unknown_keys_once_and_throttles_refreshes() {
        let (enc, ver) = keypair(5);
        let source = ScriptedSource::new(vec![up(&[&ver])]);
        let verifier = TokenVerifier::with_source(source.clone());
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
        let verifier = Arc::new(TokenVerifier::with_source(source.clone()));
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
        let verifier = TokenVerifier::with_source(source.clone());
        let token = sign(&enc, &ver.key_id, TOKEN_TYPE, &claims(600));
        let started = Instant::now();
        assert_eq!(verifier.verify(&token).await, Err(TokenError::KeysUnavailable));
        assert_eq!(started.elapsed(), FETCH_TIMEOUT);
    }

    /// During a key rotation the replicas behind one address publish different sets; keys
    /// from every fetch are kept, and only keys missing from fetches for KEY_RETENTION go.
    #[tokio::test(start_paused = true)]
    async fn fetched_keys_are_merged_and_old_ones_retire_slowly() {
        let (old_enc, old) = keypair(8);
        let (new_enc, new) = keypair(9);
        let (_, third) = keypair(10);
        // Replica B (old key only), replica A (both), then B again, then a set without `old`.
        let source = ScriptedSource::new(vec![up(&[&old]), up(&[&new, &old]), up(&[&old]), up(&[&new, &third])]);
        let verifier = TokenVerifier::with_source(source.clone());
        let old_token = sign(&old_enc, &old.key_id, TOKEN_TYPE, &claims(600));
        let new_token = sign(&new_enc, &new.key_id, TOKEN_TYPE, &claims(600));
        assert!(verifier.verify(&old_token).await.is_ok());
        tokio::time::advance(MIN_REFRESH_INTERVAL).await;
        assert!(verifier.verify(&new_token).await.is_ok());
        // A fetch that answers B's smaller set keeps the new key.
        tokio::time::advance(MIN_REFRESH_INTERVAL).await;
        let unknown = sign(&new_enc, "unknown", TOKEN_TYPE, &claims(600));
        assert_eq!(verifier.verify(&unknown).await, Err(TokenError::UnknownKey));
        assert_eq!(source.calls(), 3);
        assert!(verifier.verify(&new_token).await.is_ok());
        assert!(verifier.verify(&old_token).await.is_ok());
        // `old` is missing from fetches for longer than the retention: it goes.
        tokio::time::advance(KEY_RETENTION).await;
        assert_eq!(verifier.verify(&unknown).await, Err(TokenError::UnknownKey));
        assert_eq!(source.calls(), 4);
        assert!(verifier.verify(&new_token).await.is_ok());
        tokio::time::advance(MIN_REFRESH_INTERVAL).await;
        assert_eq!(verifier.verify(&old_token).await, Err(TokenError::UnknownKey));
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
}
