//! What a valid username, email, password, display name and avatar URL is, and the normalized
//! forms uniqueness is checked on.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::Error;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;
pub const AVATAR_URL_MAX: usize = 2048;

/// A username as given plus the form its uniqueness is judged on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    pub display: String,
    pub normalized: String,
}

/// An email as given (trimmed) plus the form its uniqueness is judged on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    pub normalized: String,
}

/// NFKC then lowercase, so `Alice`, `ALICE` and fullwidth `ａｌｉｃｅ` are one name.
pub fn normalize(value: &str) -> String {
    value.trim().nfkc().collect::<String>().to_lowercase()
}

pub fn username(field: &'static str, value: &str) -> Result<Username, Error> {
    let display: String = value.nfc().collect();
    let count = display.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&count) {
        return Err(Error::invalid(
            field,
            format!("must be {USERNAME_MIN}–{USERNAME_MAX} characters"),
        ));
    }
    let not_allowed = || Error::invalid(field, "may contain only letters, digits, `_`, `.` and `-`");
    if !username_characters_allowed(&display) {
        return Err(not_allowed());
    }
    let normalized = normalize(&display);
    // NFKC can turn an allowed character into several (e.g. `½` → `1⁄2`); judge the result too.
    if !username_characters_allowed(&normalized) {
        return Err(not_allowed());
    }
    Ok(Username { display, normalized })
}

/// Letters, digits, `_ . -`, and combining marks (vowel signs, viramas, tone marks) that
/// follow a letter: many scripts (Devanagari, Thai, …) cannot write a name without them, while
/// a mark on its own or on punctuation is only a way to make look-alikes.
fn username_characters_allowed(name: &str) -> bool {
    let mut after_letter = false;
    name.chars().all(|c| {
        // Marks first: std counts many of them (e.g. `ा`) as alphabetic.
        if matches!(c.general_category_group(), GeneralCategoryGroup::Mark) {
            // A mark keeps `after_letter` as it is: "क्ष" is letter, virama, letter. Enclosing
            // marks (Me) draw boxes and circles around anything, so they are refused.
            after_letter && c.general_category() != GeneralCategory::EnclosingMark
        } else if c.is_alphanumeric() {
            after_letter = c.is_alphabetic();
            true
        } else {
            after_letter = false;
            matches!(c, '_' | '.' | '-')
        }
    })
}

pub fn email(field: &'static str, value: &str) -> Result<Email, Error> {
    let display = value.trim().to_string();
    if display.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if display.len() > EMAIL_MAX {
        return Err(Error::invalid(field, format!("must be at most {EMAIL_MAX} bytes")));
    }
    let invalid = || Error::invalid(field, "is not a valid email address");
    let (local, domain) = display.rsplit_once('@').ok_or_else(invalid)?;
    if local.is_empty() || local.len() > 64 || local.contains('@') {
        return Err(invalid());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(invalid());
    }
    if !local
        .chars()
        .all(|c| (c.is_alphanumeric() && !c.is_control()) || "!#$%&'*+/=?^_`{|}~.-".contains(c))
    {
        return Err(invalid());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid());
    }
    for label in &labels {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        {
            return Err(invalid());
        }
    }
    let normalized = display.nfkc().collect::<String>().to_lowercase();
    Ok(Email { display, normalized })
}

pub fn password(field: &'static str, value: &str) -> Result<(), Error> {
    let count = value.chars().count();
    if count < PASSWORD_MIN {
        return Err(Error::invalid(
            field,
            format!("must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if count > PASSWORD_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

pub fn display_name(field: &'static str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.chars().count() > DISPLAY_NAME_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {DISPLAY_NAME_MAX} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(value.to_string())
}

/// Empty (no avatar) or an absolute http(s) URL.
pub fn avatar_url(field: &'static str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    if value.len() > AVATAR_URL_MAX {
        return Err(Error::invalid(field, format!("must be at most {AVATAR_URL_MAX} bytes")));
    }
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(value.to_string()),
        _ => Err(Error::invalid(field, "must be an http or https URL")),
    }
}

/// A login (username or email) as the lookups want it: emails contain `@`, usernames never do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Username(String),
    Email(String),
}

impl Login {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        let value = value.trim();
        if value.is_empty() {
            return Err(Error::invalid(field, "must not be empty"));
        }
        if value.len() > EMAIL_MAX {
            return Err(Error::invalid(field, "is too long"));
        }
        Ok(if value.contains('@') {
            Self::Email(normalize(value))
        } else {
            Self::Username(normalize(value))
        })
    }

    /// The normalized login, the same for every spelling of it.
    pub fn key(&self) -> &str {
        match self {
            Self::Username(name) | Self::Email(name) => name,
        }
    }
}

/// A 6-digit verification code as typed.
pub fn code(field: &'static str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.len() != crate::verification::CODE_DIGITS || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            field,
            format!("must be {} digits", crate::verification::CODE_DIGITS),
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_username(s: &str) -> bool {
        username("username", s).is_ok()
    }

    #[test]
    fn usernames() {
        assert!(ok_username("alice"));
        assert!(ok_username("a.b-c_d"));
        assert!(ok_username("张伟".repeat(2).as_str()));
        assert!(ok_username("用户名"));
        assert!(ok_username(&"x".repeat(32)));
        assert!(!ok_username("ab"));
        assert!(!ok_username(&"x".repeat(33)));
        assert!(!ok_username("has space"));
        assert!(!ok_username("semi;colon"));
        assert!(!ok_username("at@sign"));
        assert!(!ok_username("emoji😀"));
        // Combining marks after a letter: Hindi vowel signs and viramas, Thai vowels and tones.
        for name in ["राम", "कृष्ण", "लक्ष्मी", "สมชาย", "น้ำใจ", "王小明", "José", "Zoë_1"]
        {
            assert!(ok_username(name), "{name}");
        }
        // A mark with no letter to sit on.
        for name in [
            "\u{0301}abc",
            "ab-\u{0301}c",
            "abc_\u{093E}",
            "12\u{0E48}3",
            "abc\u{20DD}",
        ] {
            assert!(!ok_username(name), "{name:?}");
        }
        assert_eq!(
            username("u", "ALICE").map(|u| u.normalized).ok(),
            Some("alice".to_string())
        );
        assert_eq!(
            username("u", "ａｌｉｃｅ").map(|u| u.normalized).ok(),
            Some("alice".to_string())
        );
    }

    #[test]
    fn emails() {
        assert!(email("e", "a@example.com").is_ok());
        assert!(email("e", "first.last+tag@sub.example.org").is_ok());
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@@b.com",
            "a b@c.com",
            "a@-x.com",
            "a..b@c.com",
            "a@b..com",
        ] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
        assert_eq!(
            email("e", "Alice@Example.COM").map(|e| e.normalized).ok(),
            Some("alice@example.com".to_string())
        );
    }

    #[test]
    fn passwords_count_characters() {
        assert!(password("p", "1234567").is_err());
        assert!(password("p", "12345678").is_ok());
        assert!(password("p", &"密".repeat(128)).is_ok());
        assert!(password("p", &"x".repeat(129)).is_err());
    }

    #[test]
    fn avatars_and_codes() {
        assert!(avatar_url("a", "").is_ok());
        assert!(avatar_url("a", "https://example.com/me.png").is_ok());
        assert!(avatar_url("a", "javascript:alert(1)").is_err());
        assert!(avatar_url("a", "not a url").is_err());
        assert!(code("c", "123456").is_ok());
        assert!(code("c", "12345").is_err());
        assert!(code("c", "12345a").is_err());
    }
}
