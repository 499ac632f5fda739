//! A provider API key in the clear: held only between the request (or the key cipher) and the
//! call to llm-service. Neither `Debug` nor `Display` prints it, so no log line, error or
//! derived `Debug` of a struct holding one can leak it.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    /// The key itself, for validating, sealing and hinting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key itself, for the request to llm-service.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_never_printed() {
        let key = ApiKey::new("sk-very-secret-1234".to_owned());
        assert!(!format!("{key:?}").contains("secret"));
        assert!(!format!("{key}").contains("secret"));
        assert!(!format!("{:?}", Some(&key)).contains("secret"));
        assert_eq!(key.expose(), "sk-very-secret-1234");
    }
}
