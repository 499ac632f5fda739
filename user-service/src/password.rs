//! Password hashing: argon2id at the OWASP parameters (m = 19456 KiB, t = 2, p = 1), stored as
//! a PHC string. Hashing runs on the blocking pool so it never stalls the async workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::Error;

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn argon2() -> Result<Argon2<'static>, Error> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(|e| Error::PasswordHash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes and verifies passwords. Holds a hash of a random password so that checking a
/// password for a login that does not exist costs the same as for one that does.
#[derive(Clone)]
pub struct PasswordHasher {
    dummy_hash: String,
}

impl PasswordHasher {
    pub async fn new() -> Result<Self, Error> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| Error::PasswordHash(e.to_string()))?;
        let dummy_hash = hash_blocking(hex::encode(random)).await?;
        Ok(Self { dummy_hash })
    }

    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        hash_blocking(password.to_string()).await
    }

    /// Whether `password` matches `phc`; a malformed stored hash never matches.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, Error> {
        let password = password.to_string();
        let phc = phc.to_string();
        Ok(tokio::task::spawn_blocking(move || verify_now(&password, &phc)).await?)
    }

    /// Spends the time a real verification would, for a login that has no account.
    pub async fn verify_nothing(&self, password: &str) -> Result<(), Error> {
        self.verify(password, &self.dummy_hash).await.map(|_| ())
    }
}

async fn hash_blocking(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::PasswordHash(e.to_string()))
    })
    .await?
}

fn verify_now(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // Parameters come from the stored hash, so hashes made at older settings still verify.
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_phc_at_owasp_parameters() {
        let hasher = PasswordHasher::new().await.unwrap_or_else(|e| panic!("{e}"));
        let hash = hasher.hash("correct horse").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse", &hash).await.unwrap_or(false));
        assert!(!hasher.verify("wrong horse", &hash).await.unwrap_or(true));
        assert!(!hasher.verify("correct horse", "not a phc string").await.unwrap_or(true));
    }
}
