//! Access tokens: EdDSA (Ed25519) JWTs signed by user-service and verified locally by every
//! service with the public keys user-service publishes (`GetPublicKeys`).
//!
//! The verifier pins the algorithm, requires the `at+jwt` type (RFC 9068) so no other JWT
//! can pass for an access token, and checks issuer, audience and expiry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parley_proto::user::v1::GetPublicKeysRequest;
use parley_proto::user::v1::user_service_client::UserServiceClient;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

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

/// The least time between two fetches of the key set, so a flood of tokens with made-up key
/// ids cannot turn into a flood of calls to user-service.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Verifies access tokens locally against a set of Ed25519 keys, refreshing the set from its
/// source when a token names a key it does not know.
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    source: Option<Arc<dyn PublicKeySource>>,
    last_refresh: Mutex<Option<Instant>>,
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
        Self {
            keys: RwLock::new(to_decoding_keys(keys)),
            source,
            last_refresh: Mutex::new(None),
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
        // Bound first so the read guard is released before a refresh takes the write lock.
        let known = self.keys.read().await.get(&key_id).cloned();
        let key = match known {
            Some(key) => key,
            None => self.refresh_for(&key_id).await?,
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

    async fn refresh_for(&self, key_id: &str) -> Result<DecodingKey, TokenError> {
        let Some(source) = &self.source else {
            return Err(TokenError::UnknownKey);
        };
        let mut last = self.last_refresh.lock().await;
        // Another request may have refreshed while this one waited for the lock.
        let known = self.keys.read().await.get(key_id).cloned();
        if let Some(key) = known {
            return Ok(key);
        }
        if last.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL) {
            return Err(TokenError::UnknownKey);
        }
        *last = Some(Instant::now());
        match source.fetch().await {
            Ok(keys) => {
                let keys = to_decoding_keys(keys);
                let found = keys.get(key_id).cloned();
                *self.keys.write().await = keys;
                found.ok_or(TokenError::UnknownKey)
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "could not fetch access-token keys");
                // Let the next request try again instead of waiting out the interval.
                *last = None;
                Err(TokenError::UnknownKey)
            }
        }
    }
}

fn to_decoding_keys(keys: Vec<VerificationKey>) -> HashMap<String, DecodingKey> {
    keys.into_iter()
        .filter(|k| k.public_key.len() == 32)
        .map(|k| (k.key_id, DecodingKey::from_ed_der(&k.public_key)))
        .collect()
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

    struct CountingSource {
        keys: Vec<VerificationKey>,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[tonic::async_trait]
    impl PublicKeySource for CountingSource {
        async fn fetch(&self) -> Result<Vec<VerificationKey>, tonic::Status> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.keys.clone())
        }
    }

    #[tokio::test]
    async fn fetches_unknown_keys_once_and_throttles_refreshes() {
        let (enc, ver) = keypair(5);
        let source = Arc::new(CountingSource {
            keys: vec![ver.clone()],
            calls: Default::default(),
        });
        let verifier = TokenVerifier::with_source(source.clone());
        let token = sign(&enc, &ver.key_id, TOKEN_TYPE, &claims(600));
        assert!(verifier.verify(&token).await.is_ok());
        assert!(verifier.verify(&token).await.is_ok());
        assert_eq!(source.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let bogus = sign(&enc, "made-up", TOKEN_TYPE, &claims(600));
        assert_eq!(verifier.verify(&bogus).await, Err(TokenError::UnknownKey));
        assert_eq!(verifier.verify(&bogus).await, Err(TokenError::UnknownKey));
        // The first unknown id was within the throttle window of the initial fetch.
        assert_eq!(source.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
