//! Encryption of users' provider API keys at rest.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per write (large enough that random nonces
//! never collide in practice) and the `api_configs` row id bound in as associated data, so a
//! ciphertext copied onto another row does not decrypt. Every ciphertext records the version
//! of the master key that wrote it: the newest key writes, every listed key can still read,
//! which is what rotation (re-encrypting old rows under the new key) needs.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// A master key and the version it is stored under.
#[derive(Clone)]
pub struct MasterKey {
    pub version: i64,
    pub key: [u8; MASTER_KEY_LEN],
}

// Never print key material, not even in debug output.
impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// An encrypted API key as stored in its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub key_version: i64,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyCipherError {
    #[error("no master keys configured")]
    NoKeys,
    #[error("the API key of config {row_id} was written with master key version {version}, which is not configured")]
    UnknownVersion { row_id: i64, version: i64 },
    #[error(
        "the API key of config {row_id} does not decrypt with master key version {version} (wrong master key or tampered row)"
    )]
    Undecryptable { row_id: i64, version: i64 },
    #[error("the API key of config {row_id} could not be encrypted")]
    Unencryptable { row_id: i64 },
}

/// Seals and opens API keys with the configured master keys.
#[derive(Clone)]
pub struct KeyCipher {
    /// The highest version: every seal uses it.
    newest: MasterKey,
    /// Every configured key (the newest included), for opening.
    keys: Vec<MasterKey>,
}

impl KeyCipher {
    pub fn new(mut keys: Vec<MasterKey>) -> Result<Self, KeyCipherError> {
        keys.sort_by_key(|k| k.version);
        let newest = keys.last().cloned().ok_or(KeyCipherError::NoKeys)?;
        Ok(Self { newest, keys })
    }

    /// Version the next `seal` writes with.
    pub fn current_version(&self) -> i64 {
        self.newest.version
    }

    /// Encrypts `api_key` for the row `row_id` under the newest master key.
    pub fn seal(&self, row_id: i64, api_key: &str) -> Result<SealedKey, KeyCipherError> {
        let master = &self.newest;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let cipher = XChaCha20Poly1305::new((&master.key).into());
        let aad = row_id.to_be_bytes();
        // Only plaintexts beyond the AEAD's limit (~256 GiB) fail; an error must still never
        // become an empty ciphertext, which would be a key silently lost.
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: api_key.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| KeyCipherError::Unencryptable { row_id })?;
        Ok(SealedKey {
            ciphertext,
            nonce: nonce.to_vec(),
            key_version: master.version,
        })
    }

    /// Decrypts the key stored on row `row_id`.
    pub fn open(&self, row_id: i64, sealed: &SealedKey) -> Result<String, KeyCipherError> {
        let version = sealed.key_version;
        let master = self
            .keys
            .iter()
            .find(|k| k.version == version)
            .ok_or(KeyCipherError::UnknownVersion { row_id, version })?;
        let undecryptable = KeyCipherError::Undecryptable { row_id, version };
        let Ok(nonce) = <[u8; NONCE_LEN]>::try_from(sealed.nonce.as_slice()) else {
            return Err(undecryptable);
        };
        let cipher = XChaCha20Poly1305::new((&master.key).into());
        let aad = row_id.to_be_bytes();
        let plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| undecryptable.clone())?;
        String::from_utf8(plain).map_err(|_| undecryptable)
    }
}

/// What replies show instead of the key: its prefix up to the first dash and its last four
/// characters (`sk-…3f9a`); short keys show only `…` and the last characters they can spare.
pub fn api_key_hint(api_key: &str) -> String {
    let chars: Vec<char> = api_key.chars().collect();
    if chars.len() < 8 {
        // Showing four characters of a tiny key would reveal most of it.
        return "…".to_owned();
    }
    let last: String = chars[chars.len() - 4..].iter().collect();
    let prefix = match api_key.find('-') {
        Some(i) if i <= 6 && api_key[..i].chars().all(|c| c.is_ascii_alphanumeric()) => &api_key[..=i],
        _ => "",
    };
    format!("{prefix}…{last}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(version: i64, byte: u8) -> MasterKey {
        MasterKey {
            version,
            key: [byte; MASTER_KEY_LEN],
        }
    }

    #[test]
    fn seals_and_opens() {
        let cipher = KeyCipher::new(vec![key(1, 7)]).unwrap();
        let sealed = cipher.seal(42, "sk-secret-123456").unwrap();
        assert_eq!(sealed.key_version, 1);
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"));
        assert_eq!(cipher.open(42, &sealed).unwrap(), "sk-secret-123456");
    }

    #[test]
    fn fresh_nonce_per_write() {
        let cipher = KeyCipher::new(vec![key(1, 7)]).unwrap();
        let a = cipher.seal(1, "sk-same-key-0000").unwrap();
        let b = cipher.seal(1, "sk-same-key-0000").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn row_id_is_bound() {
        let cipher = KeyCipher::new(vec![key(1, 7)]).unwrap();
        let sealed = cipher.seal(1, "sk-secret-123456").unwrap();
        assert_eq!(
            cipher.open(2, &sealed),
            Err(KeyCipherError::Undecryptable { row_id: 2, version: 1 })
        );
    }

    #[test]
    fn wrong_master_key_fails_loudly() {
        let sealed = KeyCipher::new(vec![key(1, 7)])
            .unwrap()
            .seal(5, "sk-x-12345678")
            .unwrap();
        let other = KeyCipher::new(vec![key(1, 8)]).unwrap();
        assert_eq!(
            other.open(5, &sealed),
            Err(KeyCipherError::Undecryptable { row_id: 5, version: 1 })
        );
        let newer_only = KeyCipher::new(vec![key(2, 7)]).unwrap();
        assert_eq!(
            newer_only.open(5, &sealed),
            Err(KeyCipherError::UnknownVersion { row_id: 5, version: 1 })
        );
    }

    #[test]
    fn rotation_reads_old_writes_new() {
        let old = KeyCipher::new(vec![key(1, 7)]).unwrap();
        let sealed = old.seal(9, "sk-rotate-me-0001").unwrap();
        let rotated = KeyCipher::new(vec![key(2, 9), key(1, 7)]).unwrap();
        assert_eq!(rotated.current_version(), 2);
        let plain = rotated.open(9, &sealed).unwrap();
        let resealed = rotated.seal(9, &plain).unwrap();
        assert_eq!(resealed.key_version, 2);
        assert_eq!(rotated.open(9, &resealed).unwrap(), "sk-rotate-me-0001");
    }

    #[test]
    fn no_keys_is_an_error() {
        assert!(matches!(KeyCipher::new(vec![]), Err(KeyCipherError::NoKeys)));
    }

    #[test]
    fn hints() {
        assert_eq!(api_key_hint("sk-abcdefgh3f9a"), "sk-…3f9a");
        assert_eq!(api_key_hint("abcdefghijkl"), "…ijkl");
        assert_eq!(api_key_hint("short"), "…");
        assert_eq!(api_key_hint("ollama-local-key"), "ollama-…-key");
    }

    #[test]
    fn debug_hides_key_material() {
        let text = format!("{:?}", key(3, 0xAB));
        assert!(text.contains("version: 3"));
        assert!(!text.contains("171"));
    }
}
