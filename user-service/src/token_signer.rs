//! The Ed25519 key user-service signs access tokens with: generated into the data directory
//! on first start (mode 0600), reused afterwards. Its key id is derived from the public key, so
//! the same key always has the same id and a new key a new one.
//!
//! Keys rotate without signing anyone out: the public keys of earlier signing keys (and of a
//! key about to be introduced on other replicas) are kept as `*.pub` files, 64 hex digits
//! each, in the previous-public-keys directory; they are published and accepted next to the
//! current one. [`rotate`] does one step of that on a data directory.

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parley_service_kit::access_token::{self, AccessClaims, ServiceClaims, VerificationKey};
use parley_service_kit::secret_file;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::store::Role;

/// PKCS#8 v1 prefix of a raw Ed25519 seed (RFC 8410), the form jsonwebtoken's signer reads.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Where the signing key lives under the data directory.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("user-service").join("signing-key")
}

/// Where the public keys that are still accepted (earlier signing keys) live.
pub fn previous_keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("user-service").join("previous-public-keys")
}

/// The key id of a raw Ed25519 public key.
pub fn key_id_of(public_key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

/// The signing key plus every public key tokens are accepted with.
pub struct SigningKeys {
    pub signer: TokenSigner,
    /// The current key first, then the previous ones, each once.
    pub accepted: Vec<VerificationKey>,
}

impl SigningKeys {
    /// Loads (or creates) the signing key at `key_path` and reads every `*.pub` file in
    /// `previous_keys_dir` (a missing directory holds none). A file that is not a public key
    /// stops start-up, naming it: a key silently left out would sign people out.
    pub fn load(key_path: &Path, previous_keys_dir: &Path) -> Result<Self, Error> {
        let signer = TokenSigner::load_or_create(key_path)?;
        let mut accepted = vec![signer.verification_key()];
        for public_key in read_public_keys(previous_keys_dir)? {
            let key_id = key_id_of(&public_key);
            if accepted.iter().all(|k| k.key_id != key_id) {
                accepted.push(VerificationKey {
                    key_id,
                    public_key: public_key.to_vec(),
                });
            }
        }
        Ok(Self { signer, accepted })
    }
}

fn read_public_keys(dir: &Path) -> Result<Vec<[u8; 32]>, Error> {
    let failed = |path: &Path, reason: String| Error::SigningKey {
        path: path.display().to_string(),
        reason,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(failed(dir, e.to_string())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "pub"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| failed(path, e.to_string()))?;
            parse_public_key(&text)
                .ok_or_else(|| failed(path, "must hold one Ed25519 public key as 64 hex digits".into()))
        })
        .collect()
}

fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    let key: [u8; 32] = bytes.try_into().ok()?;
    // Only a valid curve point verifies anything.
    ed25519_dalek::VerifyingKey::from_bytes(&key).ok()?;
    Some(key)
}

/// The public key file's contents for a key: 64 hex digits and a newline.
pub fn public_key_file_contents(public_key: &[u8; 32]) -> String {
    format!("{}\n", hex::encode(public_key))
}

/// What [`rotate`] did.
pub struct Rotation {
    pub retired_key_id: String,
    pub new_key_id: String,
}

/// One rotation step: the current signing key's public key joins the previous public keys
/// (so tokens it signed keep working until they expire), and a new signing key replaces it.
/// Run it with the service stopped; the next start signs with the new key.
pub fn rotate(key_path: &Path, previous_keys_dir: &Path) -> Result<Rotation, Error> {
    let current = TokenSigner::load_or_create(key_path)?;
    let failed = |path: &Path, e: std::io::Error| Error::SigningKey {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let public_path = previous_keys_dir.join(format!("{}.pub", current.key_id()));
    match secret_file::write_new(&public_path, public_key_file_contents(current.public_key()).as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(&public_path, e)),
    }
    let seed = new_seed().map_err(|reason| Error::SigningKey {
        path: key_path.display().to_string(),
        reason,
    })?;
    secret_file::replace(key_path, &seed).map_err(|e| failed(key_path, e))?;
    Ok(Rotation {
        retired_key_id: current.key_id().to_string(),
        new_key_id: TokenSigner::from_seed(&seed).key_id().to_string(),
    })
}

fn new_seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    Ok(seed)
}

pub struct TokenSigner {
    encoding: EncodingKey,
    key_id: String,
    public_key: [u8; 32],
}

/// Whom an access token is for.
pub struct TokenSubject<'a> {
    pub user_id: i64,
    /// The account's UUID (`aid`).
    pub account_id: &'a str,
    /// The refresh-token family, i.e. the sign-in (`sid`).
    pub session_id: &'a str,
    pub role: Role,
}

/// A freshly signed access token.
pub struct AccessToken {
    pub token: String,
    pub expires_in_secs: i64,
}

impl TokenSigner {
    /// Loads the key at `path`, generating it on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        Self::load_or_create_with(path, new_seed)
    }

    fn load_or_create_with(path: &Path, new_seed: impl FnOnce() -> Result<[u8; 32], String>) -> Result<Self, Error> {
        let failed = |reason: String| Error::SigningKey {
            path: path.display().to_string(),
            reason,
        };
        // Drawn first, even when the key exists (32 bytes): a generator that fails is an error
        // before anything is written, never an empty key file that fails every later start.
        let fresh = new_seed().map_err(&failed)?;
        let seed = secret_file::load_or_create(path, || fresh.to_vec()).map_err(|e| failed(e.to_string()))?;
        let seed: [u8; 32] = seed.try_into().map_err(|bytes: Vec<u8>| {
            failed(format!(
                "must hold 32 bytes, holds {} (a damaged key: remove it to start with a new one)",
                bytes.len()
            ))
        })?;
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let public_key = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let key_id = key_id_of(&public_key);
        Self {
            encoding: EncodingKey::from_ed_der(&der),
            key_id,
            public_key,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    pub fn verification_key(&self) -> VerificationKey {
        VerificationKey {
            key_id: self.key_id.clone(),
            public_key: self.public_key.to_vec(),
        }
    }

    /// Signs a 15-minute access token for a user's sign-in.
    pub fn sign(&self, subject: &TokenSubject<'_>, now_secs: i64) -> Result<AccessToken, Error> {
        let ttl = access_token::ACCESS_TOKEN_TTL.as_secs() as i64;
        let claims = AccessClaims {
            sub: subject.user_id.to_string(),
            iss: access_token::ISSUER.to_string(),
            aud: access_token::AUDIENCE.to_string(),
            exp: now_secs + ttl,
            iat: now_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            role: subject.role.as_str().to_string(),
            sid: subject.session_id.to_string(),
            aid: subject.account_id.to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(access_token::TOKEN_TYPE.to_string());
        header.kid = Some(self.key_id.clone());
        Ok(AccessToken {
            token: jsonwebtoken::encode(&header, &claims, &self.encoding)?,
            expires_in_secs: ttl,
        })
    }
}

impl TokenSigner {
    /// Signs a one-minute service token with which user-service calls another service's
    /// internal method: `audience` names that service, `scope` the one thing it allows.
    pub fn sign_service(&self, audience: &str, scope: &str, now_secs: i64) -> Result<String, Error> {
        let claims = ServiceClaims {
            sub: "user-service".to_string(),
            iss: access_token::ISSUER.to_string(),
            aud: audience.to_string(),
            exp: now_secs + access_token::SERVICE_TOKEN_TTL.as_secs() as i64,
            iat: now_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(access_token::SERVICE_TOKEN_TYPE.to_string());
        header.kid = Some(self.key_id.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_service_kit::access_token::TokenVerifier;

    #[tokio::test]
    async fn signs_tokens_the_shared_verifier_accepts() {
        let signer = TokenSigner::from_seed(&[7; 32]);
        let verifier = TokenVerifier::with_keys(vec![signer.verification_key()]);
        let now = parley_service_kit::database::now_millis() / 1000;
        let subject = TokenSubject {
            user_id: 42,
            account_id: "6f9619ff-8b86-4d11-b42d-00c04fc964ff",
            session_id: "family-1",
            role: Role::User,
        };
        let token = signer.sign(&subject, now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token.expires_in_secs, 900);
        let user = verifier.verify(&token.token).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(user.user_id, 42);
        assert_eq!(user.role, "user");
        assert_eq!(user.account_id, subject.account_id);
        assert_eq!(user.session_id, subject.session_id);
        let header = jsonwebtoken::decode_header(&token.token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(signer.key_id()));
    }

    #[test]
    fn key_is_created_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = key_path(dir.path());
        let first = TokenSigner::load_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        let second = TokenSigner::load_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.key_id(), second.key_id());
        assert_eq!(first.public_key(), second.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode()).unwrap_or(0);
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap_or_else(|e| panic!("{e}"));
        assert!(TokenSigner::load_or_create(&path).is_err());
    }

    #[test]
    fn a_failing_generator_writes_no_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = key_path(dir.path());
        let failed = TokenSigner::load_or_create_with(&path, || Err("no randomness".into()));
        assert!(
            failed.err().is_some_and(|e| e.to_string().contains("no randomness")),
            "the generator's failure is the error"
        );
        assert!(!path.exists(), "a key file was left behind");
        assert!(TokenSigner::load_or_create(&path).is_ok());
    }

    #[test]
    fn rotation_keeps_the_old_public_key_accepted() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (key, previous) = (key_path(dir.path()), previous_keys_dir(dir.path()));
        let first = SigningKeys::load(&key, &previous).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.accepted.len(), 1);
        let rotation = rotate(&key, &previous).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rotation.retired_key_id, first.signer.key_id());
        let second = SigningKeys::load(&key, &previous).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second.signer.key_id(), rotation.new_key_id);
        let ids: Vec<&str> = second.accepted.iter().map(|k| k.key_id.as_str()).collect();
        assert_eq!(
            ids,
            vec![rotation.new_key_id.as_str(), rotation.retired_key_id.as_str()]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).map(|m| m.permissions().mode()).unwrap_or(0);
            assert_eq!(mode & 0o777, 0o600);
        }

        // A file that is not a key stops start-up, naming it.
        std::fs::write(previous.join("broken.pub"), "not hex").unwrap_or_else(|e| panic!("{e}"));
        let error = SigningKeys::load(&key, &previous)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("broken.pub"), "{error}");
        // Other files are not keys and are left alone.
        std::fs::remove_file(previous.join("broken.pub")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(previous.join("README"), "notes").unwrap_or_else(|e| panic!("{e}"));
        assert!(SigningKeys::load(&key, &previous).is_ok());
    }
}
