//! Parley's JSON format. One chat:
//!
//! ```json
//! {"format": "parley.chat", "version": 2, "exported_at": "…Z",
//!  "chat": {"title": "…", "system_prompt": "…", "persona": {"name": "…"}, "model": "…",
//!           "top_p": 0.9, "max_tokens": 512, "start_time": "…Z", "current": 3, "messages": [
//!     {"id": 1, "role": "user", "content": "…", "status": "complete", "created_at": "…Z"},
//!     {"id": 2, "role": "assistant", "content": "…", "model": "…", "api_config_name": "…",
//!      "reply_to": 1, "parent": 1, …},
//!     {"id": 3, "role": "assistant", "content": "…", "reply_to": 1, "parent": 1, …}]}}
//! ```
//!
//! or several, as `{"format": "parley.chats", "version": 2, "chats": [chat, …]}`. Message ids
//! are the file's own. Version 2 holds the chat's tree: every message of every branch with the
//! message it follows (`parent`, absent for a first question and its versions), and `current`,
//! the message the shown branch ends at. Version 1 had no `parent`: its messages read as one
//! chain (an answer under the question it replies to, anything else under the message before
//! it), so a question's answers become its versions. `version` grows when a field changes
//! meaning; fields are only ever added, and readers ignore fields they do not know.

use serde::{Deserialize, Serialize};

use super::{ImportedChat, ImportedMessage, invalid, parse_rfc3339, rfc3339};
use crate::Error;
use crate::ids::MessageId;
use crate::store::{MessageRow, MessageStatus, Role, SessionRow};

pub const CHAT_FORMAT: &str = "parley.chat";
pub const CHATS_FORMAT: &str = "parley.chats";
/// The newest version written and read.
pub const VERSION: u32 = 2;
/// The version before messages had parents.
const CHAIN_VERSION: u64 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct ChatFile {
    pub format: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_at: Option<String>,
    pub chat: ChatJson,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChatsFile {
    pub format: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_at: Option<String>,
    pub chats: Vec<ChatJson>,
}

/// The header every Parley file starts with, read first to say what the rest is.
#[derive(Debug, Deserialize)]
struct Header {
    format: serde_json::Value,
    #[serde(default)]
    version: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PersonaJson {
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChatJson {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub system_prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<PersonaJson>,
    /// The name of the API config the chat used (informational: keys never leave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_config: Option<String>,
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub archived: bool,
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// The id of the message the shown branch ends at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    pub messages: Vec<MessageJson>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MessageJson {
    pub id: i64,
    pub role: String,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_config_name: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorJson>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UsageJson {
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorJson {
    #[serde(default)]
    pub message: String,
    /// A google.rpc.Code value.
    #[serde(default)]
    pub code: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A stored chat in the format: `messages` is every message of the chat (every branch),
/// `current` where its shown branch ends.
pub fn chat_json(
    session: &SessionRow,
    persona_name: Option<&str>,
    api_config_name: Option<&str>,
    messages: &[MessageRow],
    current: Option<MessageId>,
) -> ChatJson {
    ChatJson {
        title: session.title.clone(),
        system_prompt: session.system_prompt.clone(),
        persona: persona_name.map(|name| PersonaJson { name: name.to_owned() }),
        api_config: api_config_name.map(str::to_owned),
        model: session.model.clone(),
        temperature: session.temperature,
        top_p: session.top_p,
        max_tokens: session.max_tokens,
        pinned: session.pinned != 0,
        archived: session.archived != 0,
        start_time: rfc3339(session.start_time),
        end_time: session.end_time.map(rfc3339),
        current: current.map(|id| id.0),
        messages: messages
            .iter()
            .map(|m| MessageJson {
                id: m.id.0,
                role: m.role.as_str().to_owned(),
                content: m.content.clone(),
                reasoning: m.reasoning.clone(),
                status: m.status.as_str().to_owned(),
                model: m.model.clone(),
                api_config_name: m.api_config_name.clone(),
                created_at: rfc3339(m.created_at),
                updated_at: Some(rfc3339(m.updated_at)),
                reply_to: m.reply_to_id.map(|id| id.0),
                parent: m.parent_id.map(|id| id.0),
                usage: (m.prompt_tokens.is_some() || m.completion_tokens.is_some()).then_some(UsageJson {
                    prompt_tokens: m.prompt_tokens,
                    completion_tokens: m.completion_tokens,
                }),
                error: (!m.error.is_empty() || m.error_code != 0).then(|| ErrorJson {
                    message: m.error.clone(),
                    code: m.error_code,
                    reason: m.error_reason.clone(),
                }),
            })
            .collect(),
    }
}

/// One chat as a file.
pub fn chat_file(chat: ChatJson, now: i64) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&ChatFile {
        format: CHAT_FORMAT.to_owned(),
        version: VERSION,
        exported_at: Some(rfc3339(now)),
        chat,
    })
}

/// The chats of a Parley file.
pub fn read(text: &str) -> Result<Vec<ImportedChat>, Error> {
    let header: Header = serde_json::from_str(text).map_err(|e| invalid(format!("is not a Parley export: {e}")))?;
    let format = header.format.as_str().unwrap_or_default();
    if format != CHAT_FORMAT && format != CHATS_FORMAT {
        return Err(invalid(format!(
            "has \"format\": {}; a Parley export has \"{CHAT_FORMAT}\" or \"{CHATS_FORMAT}\"",
            header.format
        )));
    }
    let version = match header.version.as_u64() {
        Some(v) if v >= 1 && v <= u64::from(VERSION) => v,
        Some(v) if v > u64::from(VERSION) => {
            return Err(invalid(format!(
                "is version {v} of the Parley format; this server reads up to version {VERSION}: update Parley"
            )));
        }
        _ => {
            return Err(invalid(format!(
                "has \"version\": {}; expected 1 to {VERSION}",
                header.version
            )));
        }
    };
    let chats = if format == CHAT_FORMAT {
        vec![
            serde_json::from_str::<ChatFile>(text)
                .map_err(|e| invalid(format!("is not a valid Parley chat: {e}")))?
                .chat,
        ]
    } else {
        serde_json::from_str::<ChatsFile>(text)
            .map_err(|e| invalid(format!("is not a valid Parley chat list: {e}")))?
            .chats
    };
    chats
        .into_iter()
        .enumerate()
        .map(|(index, chat)| imported(index, chat, version))
        .collect()
}

fn imported(index: usize, chat: ChatJson, version: u64) -> Result<ImportedChat, Error> {
    let at = format!("chat {}", index + 1);
    let time = |what: &str, text: &str| {
        parse_rfc3339(text).ok_or_else(|| invalid(format!("{at}: {what} {text:?} is not an RFC 3339 time")))
    };
    let start_time = time("start_time", &chat.start_time)?;
    let end_time = chat.end_time.as_deref().map(|t| time("end_time", t)).transpose()?;
    let mut ids = std::collections::HashMap::new();
    let mut messages = Vec::with_capacity(chat.messages.len());
    for (i, m) in chat.messages.into_iter().enumerate() {
        let at = format!("{at}, message {}", i + 1);
        let role = Role::try_from(m.role.clone()).map_err(|_| {
            invalid(format!(
                "{at}: role {:?} is not \"user\", \"assistant\" or \"system\"",
                m.role
            ))
        })?;
        let status = match MessageStatus::try_from(m.status.clone()) {
            // An answer exported while it was being written is stored as stopped there.
            Ok(MessageStatus::Streaming) => MessageStatus::Stopped,
            Ok(status) => status,
            Err(_) => {
                return Err(invalid(format!(
                    "{at}: status {:?} is not \"complete\", \"stopped\" or \"failed\"",
                    m.status
                )));
            }
        };
        let created_at = parse_rfc3339(&m.created_at)
            .ok_or_else(|| invalid(format!("{at}: created_at {:?} is not an RFC 3339 time", m.created_at)))?;
        let updated_at = match &m.updated_at {
            Some(t) => {
                parse_rfc3339(t).ok_or_else(|| invalid(format!("{at}: updated_at {t:?} is not an RFC 3339 time")))?
            }
            None => created_at,
        };
        let reply_to = match m.reply_to {
            Some(id) => Some(
                *ids.get(&id)
                    .ok_or_else(|| invalid(format!("{at}: reply_to {id} names no earlier message")))?,
            ),
            None => None,
        };
        let parent = if version == CHAIN_VERSION {
            // One chain: an answer under its question, anything else under the one before.
            match (role, reply_to) {
                (Role::Assistant, Some(question)) => Some(question),
                _ => i.checked_sub(1),
            }
        } else {
            match m.parent {
                Some(id) => Some(
                    *ids.get(&id)
                        .ok_or_else(|| invalid(format!("{at}: parent {id} names no earlier message")))?,
                ),
                None => None,
            }
        };
        if ids.insert(m.id, i).is_some() {
            return Err(invalid(format!("{at}: id {} is used twice", m.id)));
        }
        let (error, error_code, error_reason) = match m.error {
            Some(e) => (e.message, e.code, e.reason),
            None => (String::new(), 0, String::new()),
        };
        let usage = m.usage.unwrap_or(UsageJson {
            prompt_tokens: None,
            completion_tokens: None,
        });
        messages.push(ImportedMessage {
            role,
            content: m.content,
            reasoning: m.reasoning,
            status,
            model: m.model,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            error,
            error_code,
            error_reason,
            reply_to,
            parent,
            api_config_name: m.api_config_name,
            created_at,
            updated_at,
        });
    }
    let current = match chat.current {
        Some(id) => Some(
            *ids.get(&id)
                .ok_or_else(|| invalid(format!("{at}: current {id} names no message of the chat")))?,
        ),
        None => None,
    };
    Ok(ImportedChat {
        title: chat.title,
        system_prompt: chat.system_prompt,
        persona_name: chat.persona.map(|p| p.name),
        model: chat.model,
        temperature: chat.temperature,
        top_p: chat.top_p,
        max_tokens: chat.max_tokens,
        pinned: chat.pinned,
        archived: chat.archived,
        start_time,
        end_time,
        messages,
        current,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"format": "parley.chat", "version": 1, "chat": {
        "title": "Trip", "start_time": "2026-01-02T03:04:05.678Z", "future_field": true,
        "messages": [
          {"id": 7, "role": "user", "content": "Hi", "status": "complete", "created_at": "2026-01-02T03:04:06Z"},
          {"id": 9, "role": "assistant", "content": "Hello", "model": "m", "status": "complete",
           "created_at": "2026-01-02T03:04:07Z", "reply_to": 7, "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
          {"id": 10, "role": "assistant", "content": "", "status": "failed", "created_at": "2026-01-02T03:04:08Z",
           "reply_to": 7, "error": {"message": "down", "code": 14, "reason": "PROVIDER_UNAVAILABLE"}}
        ]}}"#;

    #[test]
    fn reads_a_chat_with_every_version_of_an_answer() {
        let chats = read(FILE).unwrap();
        assert_eq!(chats.len(), 1);
        let chat = &chats[0];
        assert_eq!(chat.title, "Trip");
        assert_eq!(chat.start_time, 1_767_323_045_678);
        assert_eq!(chat.messages.len(), 3);
        assert_eq!(chat.messages[1].reply_to, Some(0));
        assert_eq!(chat.messages[1].prompt_tokens, Some(3));
        assert_eq!(chat.messages[2].reply_to, Some(0));
        assert_eq!(chat.messages[2].status, MessageStatus::Failed);
        assert_eq!(chat.messages[2].error_code, 14);
        // Version 1 reads as one chain: both answers are versions under the question.
        assert_eq!(chat.messages[0].parent, None);
        assert_eq!(chat.messages[1].parent, Some(0));
        assert_eq!(chat.messages[2].parent, Some(0));
        assert_eq!(chat.current, None);
    }

    #[test]
    fn version_2_reads_the_tree_the_settings_and_where_the_branch_ends() {
        let file = FILE
            .replacen("\"version\": 1", "\"version\": 2", 1)
            .replacen(
                "\"future_field\": true",
                "\"top_p\": 0.5, \"max_tokens\": 64, \"current\": 9",
                1,
            )
            .replacen(
                "\"reply_to\": 7, \"usage\"",
                "\"reply_to\": 7, \"parent\": 7, \"api_config_name\": \"work\", \"usage\"",
                1,
            )
            .replacen(
                "\"reply_to\": 7, \"error\"",
                "\"reply_to\": 7, \"parent\": 9, \"error\"",
                1,
            );
        let chat = &read(&file).unwrap()[0];
        assert_eq!(
            (chat.top_p, chat.max_tokens, chat.current),
            (Some(0.5), Some(64), Some(1))
        );
        assert_eq!(chat.messages[1].parent, Some(0));
        assert_eq!(chat.messages[1].api_config_name, "work");
        // As the file says, even an answer under an answer.
        assert_eq!(chat.messages[2].parent, Some(1));
        for (from, to, says) in [
            (
                "\"parent\": 9",
                "\"parent\": 10",
                "message 3: parent 10 names no earlier message",
            ),
            ("\"current\": 9", "\"current\": 11", "current 11 names no message"),
        ] {
            let err = read(&file.replacen(from, to, 1)).unwrap_err().to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
    }

    #[test]
    fn problems_name_where_they_are() {
        for (from, to, says) in [
            ("\"version\": 1", "\"version\": 3", "version 3"),
            ("parley.chat\"", "other\"", "\"format\": \"other\""),
            (
                "\"role\": \"user\"",
                "\"role\": \"tool\"",
                "chat 1, message 1: role \"tool\"",
            ),
            (
                "\"reply_to\": 7, \"usage\"",
                "\"reply_to\": 8, \"usage\"",
                "message 2: reply_to 8",
            ),
            (
                "\"created_at\": \"2026-01-02T03:04:06Z\"",
                "\"created_at\": \"noon\"",
                "message 1: created_at",
            ),
            ("\"id\": 9", "\"id\": 7", "id 7 is used twice"),
            ("\"status\": \"failed\"", "\"status\": \"lost\"", "status \"lost\""),
        ] {
            let file = FILE.replacen(from, to, 1);
            assert_ne!(file, FILE, "{from}");
            let err = read(&file).unwrap_err().to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
        let err = read(r#"{"format": "parley.chat", "version": 1, "chat": {"title": 5}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
