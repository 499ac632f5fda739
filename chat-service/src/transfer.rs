//! The files chats move in and out as, without I/O: Parley's own JSON format (`parley_json`,
//! written by export and read back by import), Markdown for people (`markdown`), and
//! ChatGPT's `conversations.json` (`chatgpt`, read only). Reading a file gives
//! [`ImportedChat`]s that the service stores, all or nothing; every problem is an error
//! naming where in the file it is.

pub mod chatgpt;
pub mod markdown;
pub mod parley_json;

use crate::Error;
use crate::store::{MessageStatus, Role};

/// The request field every import problem is reported on.
pub const CONTENT_FIELD: &str = "content";

/// A chat read from a file, not yet stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedChat {
    pub title: String,
    pub system_prompt: String,
    /// A persona name to link the new chat to, when the importing user has one by that name.
    pub persona_name: Option<String>,
    pub model: String,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<i64>,
    pub pinned: bool,
    pub archived: bool,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub messages: Vec<ImportedMessage>,
    /// The index of the message the shown branch ends at (`None`: the last message's branch).
    pub current: Option<usize>,
}

/// A message read from a file. `reply_to` is the index (in the chat's `messages`) of the
/// question an answer replies to; `parent` the index of the message it follows in the chat's
/// tree (`None`: a first message).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedMessage {
    pub role: Role,
    pub content: String,
    pub reasoning: String,
    pub status: MessageStatus,
    pub model: String,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error: String,
    pub error_code: i64,
    pub error_reason: String,
    pub reply_to: Option<usize>,
    pub parent: Option<usize>,
    /// The API config an answer was written with, as it was named then.
    pub api_config_name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which format a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    ParleyJson,
    ChatGpt,
}

/// Reads the chats of `content` in `format` (None: told apart by the content). Every chat
/// is checked here (text limits, NUL, references), so storing them cannot fail on input.
pub fn read_chats(content: &[u8], format: Option<ImportFormat>, now: i64) -> Result<Vec<ImportedChat>, Error> {
    let text = std::str::from_utf8(content).map_err(|e| {
        invalid(format!(
            "is not UTF-8 text (byte {} is not); export the file again as JSON",
            e.valid_up_to()
        ))
    })?;
    let format = match format {
        Some(format) => format,
        None => detect(text)?,
    };
    let chats = match format {
        ImportFormat::ParleyJson => parley_json::read(text)?,
        ImportFormat::ChatGpt => chatgpt::read(text, now)?,
    };
    if chats.is_empty() {
        return Err(invalid("holds no chats"));
    }
    for (index, chat) in chats.iter().enumerate() {
        check_chat(index, chat)?;
    }
    Ok(chats)
}

/// ChatGPT's file is a list of conversations with a `mapping`; Parley's names its format.
fn detect(text: &str) -> Result<ImportFormat, Error> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(format!("is not JSON: {e}")))?;
    let first = match &value {
        serde_json::Value::Array(items) => items.first(),
        other => Some(other),
    };
    match first {
        Some(item) if item.get("mapping").is_some() => Ok(ImportFormat::ChatGpt),
        _ if value.get("format").is_some() => Ok(ImportFormat::ParleyJson),
        Some(_) => Err(invalid(
            "is neither a Parley export (it has no \"format\") nor a ChatGPT export (conversations.json: a list of \
             conversations with a \"mapping\")",
        )),
        None => Err(invalid("is an empty list: it holds no chats")),
    }
}

pub fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid(CONTENT_FIELD, reason)
}

/// Longest text of one imported message, in characters (an answer may be longer than what
/// a user may send).
pub const MAX_MESSAGE_CHARS: usize = 1_000_000;

fn check_text(what: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(invalid(format!("{what} contains a NUL character")));
    }
    if value.chars().count() > max {
        return Err(invalid(format!("{what} is longer than {max} characters")));
    }
    Ok(())
}

fn check_chat(index: usize, chat: &ImportedChat) -> Result<(), Error> {
    let at = format!("chat {} ({:?})", index + 1, short(&chat.title));
    check_text(
        &format!("{at}: the title"),
        &chat.title,
        crate::validation::MAX_NAME_CHARS,
    )?;
    check_text(
        &format!("{at}: the system prompt"),
        &chat.system_prompt,
        crate::validation::MAX_SYSTEM_PROMPT_CHARS,
    )?;
    check_text(
        &format!("{at}: the model"),
        &chat.model,
        crate::validation::MAX_MODEL_CHARS,
    )?;
    if let Some(t) = chat.temperature {
        parley_proto::llm::v1::check_temperature(t).map_err(|reason| invalid(format!("{at}: temperature {reason}")))?;
    }
    if let Some(p) = chat.top_p {
        crate::validation::top_p("top_p", p).map_err(|e| invalid(format!("{at}: {e}")))?;
    }
    if let Some(n) = chat.max_tokens {
        crate::validation::max_tokens("max_tokens", n).map_err(|e| invalid(format!("{at}: {e}")))?;
    }
    if chat.current.is_some_and(|c| c >= chat.messages.len()) {
        return Err(invalid(format!("{at}: current names no message of the chat")));
    }
    for (i, message) in chat.messages.iter().enumerate() {
        let at = format!("{at}, message {}", i + 1);
        check_text(&format!("{at}: the text"), &message.content, MAX_MESSAGE_CHARS)?;
        check_text(&format!("{at}: the reasoning"), &message.reasoning, MAX_MESSAGE_CHARS)?;
        check_text(
            &format!("{at}: the model"),
            &message.model,
            crate::validation::MAX_MODEL_CHARS,
        )?;
        check_text(
            &format!("{at}: the error"),
            &message.error,
            crate::validation::MAX_CONTENT_CHARS,
        )?;
        check_text(&format!("{at}: the error reason"), &message.error_reason, 100)?;
        if !(0..=16).contains(&message.error_code) {
            return Err(invalid(format!(
                "{at}: error code {} is not a gRPC code (0–16)",
                message.error_code
            )));
        }
        if message.prompt_tokens.is_some_and(|t| t < 0) || message.completion_tokens.is_some_and(|t| t < 0) {
            return Err(invalid(format!("{at}: token counts must not be negative")));
        }
        check_text(
            &format!("{at}: the API config name"),
            &message.api_config_name,
            crate::validation::MAX_NAME_CHARS,
        )?;
        if message.parent.is_some_and(|p| p >= i) {
            return Err(invalid(format!("{at}: its parent is not an earlier message")));
        }
        if let Some(question) = message.reply_to
            && (question >= i || chat.messages[question].role != Role::User)
        {
            return Err(invalid(format!(
                "{at}: it replies to a message that is not an earlier question"
            )));
        }
    }
    Ok(())
}

/// The first 40 characters of a title, for error messages.
fn short(title: &str) -> String {
    let mut short: String = title.chars().take(40).collect();
    if title.chars().count() > 40 {
        short.push('…');
    }
    short
}

/// A file name piece from a title: lowercase letters, digits and dashes, at most 40
/// characters; "chat" when nothing is left.
pub fn file_slug(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.chars().count() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() { "chat".to_owned() } else { slug }
}

/// Unix milliseconds as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(millis: i64) -> String {
    parley_proto::timestamp::from_unix_millis(millis).to_string()
}

/// RFC 3339 back to Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    text.parse::<prost_types::Timestamp>()
        .ok()
        .map(|ts| parley_proto::timestamp::to_unix_millis(&ts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_letters_and_digits() {
        assert_eq!(file_slug("Trip plans: Kyoto 2027!"), "trip-plans-kyoto-2027");
        assert_eq!(file_slug("中英翻译 test"), "中英翻译-test");
        assert_eq!(file_slug("!!!"), "chat");
        assert_eq!(file_slug(""), "chat");
    }

    #[test]
    fn times_round_trip() {
        for millis in [0, 1_700_000_000_123, 1_764_000_000_000] {
            assert_eq!(parse_rfc3339(&rfc3339(millis)), Some(millis));
        }
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn files_that_are_neither_format_say_so() {
        for (content, says) in [
            (&b"\xff\xfe"[..], "not UTF-8"),
            (b"{", "not JSON"),
            (b"[]", "empty list"),
            (b"{\"hello\": 1}", "neither a Parley export"),
        ] {
            let err = read_chats(content, None, 0).unwrap_err();
            assert!(err.to_string().contains(says), "{err} should say {says}");
            assert!(err.to_string().starts_with("content: "), "{err}");
        }
    }
}
