//! Password hashing: argon2id at the OWASP parameters (m = 19456 KiB, t = 2, p = 1), stored as
//! a PHC string. Hashing runs on the blocking pool so it never stalls the async workers, and
//! at most a bounded number of hashes run at once: each takes ~19 MiB, so a flood of sign-ins
//! must queue (briefly) and then be refused, never exhaust the memory.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Error;

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
/// How long a request waits for a free hashing slot before it is refused.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// What a refused request is told to wait before trying again.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How many hashes may run at once and how long a request waits for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    pub concurrent: usize,
    pub queue_wait: Duration,
}

impl Default for HashingLimits {
    /// One hash per CPU: more would only share the same cores, with more memory in use.
    fn default() -> Self {
        Self {
            concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue_wait: DEFAULT_QUEUE_WAIT,
        }
    }
}

fn argon2() -> Result<Argon2<'static>, Error> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(|e| Error::PasswordHash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes and verifies passwords. Holds a hash of a random password so that checking a
/// password for a login that does not exist costs the same as for one that does.
#[derive(Clone)]
pub struct PasswordHasher {
    dummy_hash: Arc<str>,
    slots: Arc<Semaphore>,
    queue_wait: Duration,
}

/// The right to run hashes for one request (a password change verifies, then hashes): taken
/// before anything is counted, so a request refused for lack of a slot has used up nothing
/// (no sign-in attempt, no code). The slot frees up when this is dropped.
pub struct HashingSlot {
    _permit: OwnedSemaphorePermit,
    hasher: PasswordHasher,
}

impl PasswordHasher {
    pub async fn new(limits: HashingLimits) -> Result<Self, Error> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| Error::PasswordHash(e.to_string()))?;
        let dummy_hash = hash_blocking(hex::encode(random)).await?;
        Ok(Self {
            dummy_hash: dummy_hash.into(),
            slots: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            queue_wait: limits.queue_wait,
        })
    }

    /// Waits up to the queue wait for a free slot; RESOURCE_EXHAUSTED with a retry delay
    /// when none frees up.
    pub async fn slot(&self) -> Result<HashingSlot, Error> {
        let acquired = tokio::time::timeout(self.queue_wait, Arc::clone(&self.slots).acquire_owned()).await;
        match acquired {
            Ok(Ok(permit)) => Ok(HashingSlot {
                _permit: permit,
                hasher: self.clone(),
            }),
            // The semaphore is never closed; a closed one would mean no slot ever again.
            Ok(Err(_)) | Err(_) => Err(Error::RateLimited {
                message: "the server is busy checking passwords",
                retry_after: BUSY_RETRY_AFTER,
            }),
        }
    }

    /// Takes a slot and hashes.
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        self.slot().await?.hash(password).await
    }
}

impl HashingSlot {
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
        self.verify(password, &self.hasher.dummy_hash).await.map(|_| ())
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
        let hasher = PasswordHasher::new(HashingLimits::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let hash = hasher.hash("correct horse").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let slot = || async { hasher.slot().await.unwrap_or_else(|e| panic!("{e}")) };
        assert!(slot().await.verify("correct horse", &hash).await.unwrap_or(false));
        assert!(!slot().await.verify("wrong horse", &hash).await.unwrap_or(true));
        assert!(
            !slot()
                .await
                .verify("correct horse", "not a phc string")
                .await
                .unwrap_or(true)
        );
    }

    /// With every slot taken, a request waits the queue wait and is refused with a retry
    /// delay; as soon as a slot frees up, requests go through again.
    #[tokio::test(start_paused = true)]
    async fn a_full_hasher_refuses_after_the_queue_wait() {
        let limits = HashingLimits {
            concurrent: 2,
            queue_wait: Duration::from_millis(500),
        };
        let hasher = PasswordHasher::new(limits).await.unwrap_or_else(|e| panic!("{e}"));
        let first = hasher.slot().await.unwrap_or_else(|e| panic!("{e}"));
        let _second = hasher.slot().await.unwrap_or_else(|e| panic!("{e}"));
        let started = tokio::time::Instant::now();
        match hasher.slot().await {
            Err(Error::RateLimited { retry_after, .. }) => assert!(retry_after >= Duration::from_secs(1)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a third slot was handed out"),
        }
        assert_eq!(started.elapsed(), limits.queue_wait);
        assert!(matches!(hasher.hash("x").await, Err(Error::RateLimited { .. })));
        drop(first);
        assert!(hasher.slot().await.is_ok());
    }
}
