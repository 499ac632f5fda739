//! Input limits from the issue, checked before anything changes. Each failure names the field
//! and becomes INVALID_ARGUMENT (`grpc_status::invalid_field`).

/// A rejected field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: String,
}

impl From<InvalidField> for tonic::Status {
    fn from(e: InvalidField) -> Self {
        parley_service_kit::grpc_status::invalid_field(e.field, e.reason)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        reason: reason.into(),
    }
}

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_BASE_URL_CHARS: usize = 500;
pub const MAX_API_KEY_CHARS: usize = 500;
pub const MAX_MODEL_CHARS: usize = 100;
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 20_000;
pub const MAX_CONTENT_CHARS: usize = 100_000;
pub const MAX_PAGE_SIZE: i32 = 100;
/// Used when a request leaves page_size at 0.
pub const DEFAULT_PAGE_SIZE: i32 = 50;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Config, persona and session names: 1–100 characters, not only whitespace.
pub fn name(field: &'static str, value: &str) -> Result<(), InvalidField> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if chars(value) > MAX_NAME_CHARS {
        return Err(invalid(field, format!("must be at most {MAX_NAME_CHARS} characters")));
    }
    Ok(())
}

/// Titles may be empty (untitled) but not longer than a name.
pub fn title(field: &'static str, value: &str) -> Result<(), InvalidField> {
    if chars(value) > MAX_NAME_CHARS {
        return Err(invalid(field, format!("must be at most {MAX_NAME_CHARS} characters")));
    }
    Ok(())
}

pub fn base_url(field: &'static str, value: &str) -> Result<(), InvalidField> {
    if chars(value) > MAX_BASE_URL_CHARS {
        return Err(invalid(
            field,
            format!("must be at most {MAX_BASE_URL_CHARS} characters"),
        ));
    }
    let parsed = url::Url::parse(value).map_err(|_| invalid(field, "must be a valid http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(field, "must be a valid http(s) URL"));
    }
    Ok(())
}

pub fn api_key(field: &'static str, value: &str) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if chars(value) > MAX_API_KEY_CHARS {
        return Err(invalid(
            field,
            format!("must be at most {MAX_API_KEY_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Required on configs; optional (empty = the config's) on sessions.
pub fn model(field: &'static str, value: &str, required: bool) -> Result<(), InvalidField> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if chars(value) > MAX_MODEL_CHARS {
        return Err(invalid(field, format!("must be at most {MAX_MODEL_CHARS} characters")));
    }
    Ok(())
}

pub fn system_prompt(field: &'static str, value: &str) -> Result<(), InvalidField> {
    if chars(value) > MAX_SYSTEM_PROMPT_CHARS {
        return Err(invalid(
            field,
            format!("must be at most {MAX_SYSTEM_PROMPT_CHARS} characters"),
        ));
    }
    Ok(())
}

pub fn content(field: &'static str, value: &str) -> Result<(), InvalidField> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if chars(value) > MAX_CONTENT_CHARS {
        return Err(invalid(
            field,
            format!("must be at most {MAX_CONTENT_CHARS} characters"),
        ));
    }
    Ok(())
}

/// 0 means the default; otherwise 1–100.
pub fn page_size(field: &'static str, value: i32) -> Result<i32, InvalidField> {
    match value {
        0 => Ok(DEFAULT_PAGE_SIZE),
        1..=MAX_PAGE_SIZE => Ok(value),
        _ => Err(invalid(field, format!("must be between 1 and {MAX_PAGE_SIZE}"))),
    }
}

pub fn temperature(field: &'static str, value: f64) -> Result<(), InvalidField> {
    if !(0.0..=2.0).contains(&value) {
        return Err(invalid(field, "must be between 0 and 2"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("name", "work").is_ok());
        assert!(name("name", &"名".repeat(100)).is_ok());
        assert_eq!(name("name", &"a".repeat(101)).map_err(|e| e.field), Err("name"));
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
        assert!(content("content", "").is_err());
        assert!(content("content", &"c".repeat(100_000)).is_ok());
        assert!(content("content", &"c".repeat(100_001)).is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size("page_size", 0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size("page_size", 1), Ok(1));
        assert_eq!(page_size("page_size", 100), Ok(100));
        assert!(page_size("page_size", 101).is_err());
        assert!(page_size("page_size", -1).is_err());
    }

    #[test]
    fn status_names_the_field() {
        let status: tonic::Status = invalid("content", "must not be empty").into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let violations = parley_service_kit::grpc_status::field_violations(&status);
        assert_eq!(violations, vec![("content".to_owned(), "must not be empty".to_owned())]);
    }
}
