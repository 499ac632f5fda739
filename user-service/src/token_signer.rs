//! The Ed25519 key user-service signs access tokens with: generated into the data directory
//! on first start (mode 0600), reused afterwards. Its key id is derived from the public key, so
//! the same key always has the same id and a new key a new one.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parley_service_kit::access_token::{self, AccessClaims, VerificationKey};
use parley_service_kit::secret_file;
use sha2::{Digest, Sha256};

use crate::Error;

/// PKCS#8 v1 prefix of a raw Ed25519 seed (RFC 8410), the form jsonwebtoken's signer reads.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Where the signing key lives under the data directory.
pub fn key_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("user-service").join("signing-key")
}

pub struct TokenSigner {
    encoding: EncodingKey,
    key_id: String,
    public_key: [u8; 32],
}

/// A freshly signed access token.
pub struct AccessToken {
    pub token: String,
    pub expires_in_secs: i64,
}

impl TokenSigner {
    /// Loads the key at `path`, generating it on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        let failed = |reason: String| Error::SigningKey {
            path: path.display().to_string(),
            reason,
        };
        let mut generate_error = None;
        let seed = secret_file::load_or_create(path, || {
            let mut seed = vec![0u8; 32];
            if let Err(e) = getrandom::fill(&mut seed) {
                generate_error = Some(e.to_string());
            }
            seed
        })
        .map_err(|e| failed(e.to_string()))?;
        if let Some(reason) = generate_error {
            return Err(failed(format!("no randomness: {reason}")));
        }
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|bytes: Vec<u8>| failed(format!("must hold 32 bytes, holds {}", bytes.len())))?;
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let public_key = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let key_id = hex::encode(&Sha256::digest(public_key)[..8]);
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

    /// Signs a 15-minute access token for `user_id`.
    pub fn sign(&self, user_id: i64, role: &str, now_secs: i64) -> Result<AccessToken, Error> {
        let ttl = access_token::ACCESS_TOKEN_TTL.as_secs() as i64;
        let claims = AccessClaims {
            sub: user_id.to_string(),
            iss: access_token::ISSUER.to_string(),
            aud: access_token::AUDIENCE.to_string(),
            exp: now_secs + ttl,
            iat: now_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            role: role.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use parley_service_kit::access_token::TokenVerifier;

    #[tokio::test]
    async fn signs_tokens_the_shared_verifier_accepts() {
        let signer = TokenSigner::from_seed(&[7; 32]);
        let verifier = TokenVerifier::with_keys(vec![signer.verification_key()]);
        let now = parley_service_kit::database::now_millis() / 1000;
        let token = signer.sign(42, "user", now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token.expires_in_secs, 900);
        let user = verifier.verify(&token.token).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(user.user_id, 42);
        assert_eq!(user.role, "user");
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
}
