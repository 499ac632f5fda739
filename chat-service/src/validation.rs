//! Input limits from the issue, checked before anything changes. Each failure is
//! [`Error::InvalidField`] naming the field (INVALID_ARGUMENT with a BadRequest violation).
//!
//! No text may hold a NUL character: PostgreSQL's TEXT rejects it (SQLite would store it), so
//! letting one through would answer INTERNAL on one backend and store it on the other.

use crate::Error;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_BASE_URL_CHARS: usize = 500;
pub const MAX_API_KEY_CHARS: usize = 500;
pub const MAX_MODEL_CHARS: usize = 100;
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 20_000;
pub const MAX_CONTENT_CHARS: usize = 100_000;
/// Description of a persona.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
pub const MAX_PAGE_SIZE: i32 = 100;
/// Used when a request leaves page_size at 0.
pub const DEFAULT_PAGE_SIZE: i32 = 50;

/// Text of at most `max` characters, without NUL.
fn text(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// Like [`text`], and not empty or only whitespace.
fn required_text(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    text(field, value, max)
}

/// Config, persona and session names: 1–100 characters, not only whitespace.
pub fn name(field: &'static str, value: &str) -> Result<(), Error> {
    required_text(field, value, MAX_NAME_CHARS)
}

/// Titles may be empty (untitled) but not longer than a name.
pub fn title(field: &'static str, value: &str) -> Result<(), Error> {
    text(field, value, MAX_NAME_CHARS)
}

pub fn base_url(field: &'static str, value: &str) -> Result<(), Error> {
    text(field, value, MAX_BASE_URL_CHARS)?;
    let parsed = url::Url::parse(value).map_err(|_| Error::invalid(field, "must be a valid http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::invalid(field, "must be a valid http(s) URL"));
    }
    Ok(())
}

pub fn api_key(field: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    text(field, value, MAX_API_KEY_CHARS)
}

/// Required on configs; optional (empty = the config's) on sessions.
pub fn model(field: &'static str, value: &str, required: bool) -> Result<(), Error> {
    if required {
        required_text(field, value, MAX_MODEL_CHARS)
    } else {
        text(field, value, MAX_MODEL_CHARS)
    }
}

pub fn system_prompt(field: &'static str, value: &str) -> Result<(), Error> {
    text(field, value, MAX_SYSTEM_PROMPT_CHARS)
}

pub fn description(field: &'static str, value: &str) -> Result<(), Error> {
    text(field, value, MAX_DESCRIPTION_CHARS)
}

pub fn content(field: &'static str, value: &str) -> Result<(), Error> {
    required_text(field, value, MAX_CONTENT_CHARS)
}

/// 0 means the default; otherwise 1–100.
pub fn page_size(field: &'static str, value: i32) -> Result<i32, Error> {
    match value {
        0 => Ok(DEFAULT_PAGE_SIZE),
        1..=MAX_PAGE_SIZE => Ok(value),
        _ => Err(Error::invalid(field, format!("must be between 1 and {MAX_PAGE_SIZE}"))),
    }
}

/// The rule llm-service applies too (`parley_proto::llm::v1::check_temperature`).
pub fn temperature(field: &'static str, value: f64) -> Result<(), Error> {
    parley_proto::llm::v1::check_temperature(value).map_err(|reason| Error::invalid(field, reason))
}

/// Nucleus sampling: 0–1, as llm-service accepts it.
pub fn top_p(field: &'static str, value: f64) -> Result<(), Error> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(field, "must be between 0 and 1"))
    }
}

pub const MAX_MAX_TOKENS: i64 = 1_000_000;

/// The longest answer in tokens: 1–1,000,000 (no model writes more at once).
pub fn max_tokens(field: &'static str, value: i64) -> Result<(), Error> {
    if (1..=MAX_MAX_TOKENS).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("must be between 1 and {MAX_MAX_TOKENS}")))
    }
}

/// Temperature, top-p and max tokens, each within its range when set.
pub fn generation_params(params: &crate::store::GenerationParams) -> Result<(), Error> {
    if let Some(t) = params.temperature {
        temperature("temperature", t)?;
    }
    if let Some(p) = params.top_p {
        top_p("top_p", p)?;
    }
    if let Some(n) = params.max_tokens {
        max_tokens("max_tokens", n)?;
    }
    Ok(())
}

/// Model output as it may be stored: without NUL characters (see the module comment), which
/// carry nothing a reader could see.
pub fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The field a check rejected.
    fn field_of(result: Result<(), Error>) -> Option<&'static str> {
        match result {
            Err(Error::InvalidField { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn names() {
        assert!(name("name", "work").is_ok());
        assert!(name("name", &"名".repeat(100)).is_ok());
        assert_eq!(field_of(name("name", &"a".repeat(101))), Some("name"));
        assert!(name("name", "  ").is_err());
        assert!(title("title", "").is_ok());
    }

    #[test]
    fn urls() {
        assert!(base_url("base_url", "https://api.openai.com/v1").is_ok());
        assert!(base_url("base_url", "http://127.0.0.1:11434/v1").is_ok());
        assert!(base_url("base_url", "ftp://example.com").is_err());
        assert!(base_url("base_url", "not a url").is_err());
        let long = format!("https://example.com/{}", "a".repeat(490));
        assert!(base_url("base_url", &long).is_err());
    }

    #[test]
    fn keys_models_prompts_content() {
        assert!(api_key("api_key", "").is_err());
        assert!(api_key("api_key", &"k".repeat(500)).is_ok());
        assert!(api_key("api_key", &"k".repeat(501)).is_err());
        assert!(model("model", "", true).is_err());
        assert!(model("model", "", false).is_ok());
        assert!(model("model", &"m".repeat(101), false).is_err());
        assert!(system_prompt("system_prompt", &"s".repeat(20_000)).is_ok());
        assert!(system_prompt("system_prompt", &"s".repeat(20_001)).is_err());
        assert!(description("description", &"d".repeat(1_001)).is_err());
        assert!(content("content", "").is_err());
        assert!(content("content", &"c".repeat(100_000)).is_ok());
        assert!(content("content", &"c".repeat(100_001)).is_err());
    }

    #[test]
    fn no_text_holds_nul() {
        assert_eq!(field_of(name("name", "a\0b")), Some("name"));
        assert_eq!(field_of(title("title", "\0")), Some("title"));
        assert_eq!(
            field_of(base_url("base_url", "https://example.com/\0")),
            Some("base_url")
        );
        assert_eq!(field_of(api_key("api_key", "sk-\0")), Some("api_key"));
        assert_eq!(field_of(model("model", "gpt\0", false)), Some("model"));
        assert_eq!(
            field_of(system_prompt("system_prompt", "be\0nice")),
            Some("system_prompt")
        );
        assert_eq!(field_of(description("description", "\0")), Some("description"));
        assert_eq!(field_of(content("content", "hi\0")), Some("content"));
        assert_eq!(storable("a\0b\0"), "ab");
        assert!(matches!(storable("clean"), std::borrow::Cow::Borrowed("clean")));
    }

    #[test]
    fn sampling_ranges() {
        assert!(top_p("top_p", 0.0).is_ok());
        assert!(top_p("top_p", 1.0).is_ok());
        assert_eq!(field_of(top_p("top_p", 1.01)), Some("top_p"));
        assert_eq!(field_of(top_p("top_p", -0.1)), Some("top_p"));
        assert_eq!(field_of(top_p("top_p", f64::NAN)), Some("top_p"));
        assert!(max_tokens("max_tokens", 1).is_ok());
        assert!(max_tokens("max_tokens", 1_000_000).is_ok());
        assert_eq!(field_of(max_tokens("max_tokens", 0)), Some("max_tokens"));
        assert_eq!(field_of(max_tokens("max_tokens", 1_000_001)), Some("max_tokens"));
        let params = crate::store::GenerationParams {
            temperature: Some(2.5),
            top_p: None,
            max_tokens: None,
        };
        assert_eq!(field_of(generation_params(&params)), Some("temperature"));
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size("page_size", 0).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size("page_size", 1).ok(), Some(1));
        assert_eq!(page_size("page_size", 100).ok(), Some(100));
        assert!(page_size("page_size", 101).is_err());
        assert!(page_size("page_size", -1).is_err());
    }

    #[test]
    fn status_names_the_field() {
        let status: tonic::Status = content("content", "").unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let violations = parley_service_kit::grpc_status::field_violations(&status);
        assert_eq!(violations, vec![("content".to_owned(), "must not be empty".to_owned())]);
    }
}
