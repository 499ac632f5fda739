use super::*;
use crate::access_token::*;
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
