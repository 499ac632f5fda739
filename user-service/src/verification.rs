//! Verification codes and the secrets behind tokens: generated from the OS CSPRNG and stored
//! only as SHA-256 hashes.

use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::mailer::Purpose;
use crate::store::SendLimits;

pub const CODE_DIGITS: usize = 6;
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong guesses a code survives.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Code sends per login and purpose (and, silently, per account): one a minute, ten a day.
pub const SEND_LIMITS: SendLimits = SendLimits {
    minute_ms: 60 * 1000,
    per_minute: 1,
    day_ms: 24 * 60 * 60 * 1000,
    per_day: 10,
};

fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Randomness(e.to_string()))?;
    Ok(bytes)
}

/// A uniformly random 6-digit code (rejection sampling, so no digit is favoured).
pub fn new_code() -> Result<String, Error> {
    const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
    loop {
        let value = u32::from_le_bytes(random_bytes::<4>()?);
        if value < LIMIT {
            return Ok(format!("{:06}", value % 1_000_000));
        }
    }
}

/// The stored form of a code: bound to its user, its purpose and the address it was sent to
/// (normalized, empty for none), so a hash says nothing elsewhere and a code stops matching
/// the moment the account's address changes, however the change races with the send.
pub fn code_hash(user_id: i64, purpose: Purpose, address: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!(
        "{user_id}:{}:{address}:{code}",
        purpose.as_str()
    )))
}

/// A 256-bit refresh token, URL-safe.
pub fn new_refresh_token() -> Result<String, Error> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// The stored form of a refresh token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A hash naming a rate-limit bucket without storing the login it counts.
pub fn bucket_key(kind: &str, value: &str) -> String {
    hex::encode(Sha256::digest(format!("{kind}\u{0}{value}")))
}

/// Equal strings compared in time that does not depend on where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..50).map(|_| new_code().unwrap_or_default()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert!(distinct.len() > 40);
    }

    #[test]
    fn tokens_are_256_bits_and_hashes_hide_them() {
        let token = new_refresh_token().unwrap_or_default();
        assert_eq!(token.len(), 43);
        assert_ne!(token_hash(&token), token);
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(
            code_hash(1, Purpose::PasswordReset, "", "123456"),
            code_hash(2, Purpose::PasswordReset, "", "123456")
        );
        assert_ne!(
            code_hash(1, Purpose::EmailVerify, "a@example.com", "123456"),
            code_hash(1, Purpose::EmailVerify, "b@example.com", "123456")
        );
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
