//! ChatGPT's export (`conversations.json`): a list of conversations, each a tree of nodes
//! (`mapping`: id → {message, parent, children}) whose `current_node` is the last message
//! of the branch the user saw last. That branch is imported: from `current_node` up through
//! `parent` to the root, then oldest first. Hidden messages (system and tool messages,
//! ones marked hidden, empty ones) and parts that are not text (images, files) are left out.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::{ImportedChat, ImportedMessage, invalid};
use crate::Error;
use crate::store::{MessageStatus, Role};

#[derive(Debug, Deserialize)]
struct Conversation {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    create_time: Option<f64>,
    mapping: HashMap<String, Node>,
    #[serde(default)]
    current_node: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Node {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    parent: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    author: Author,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Author {
    role: String,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Option<Vec<serde_json::Value>>,
    /// Some content types (code, execution output) carry `text` instead of parts.
    #[serde(default)]
    text: Option<String>,
}

pub fn read(text: &str, now: i64) -> Result<Vec<ImportedChat>, Error> {
    let not_chatgpt = |e: serde_json::Error| {
        invalid(format!(
            "is not a ChatGPT export (conversations.json: a list of conversations, each with a \"mapping\"): {e}"
        ))
    };
    // conversations.json is a list; one conversation on its own is taken too.
    let conversations: Vec<Conversation> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(not_chatgpt)?
    } else {
        vec![serde_json::from_str(text).map_err(not_chatgpt)?]
    };
    conversations
        .into_iter()
        .enumerate()
        .map(|(index, conversation)| chat(index, conversation, now))
        .collect()
}

fn millis(seconds: Option<f64>) -> Option<i64> {
    seconds
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| (s * 1000.0).round() as i64)
}

fn chat(index: usize, conversation: Conversation, now: i64) -> Result<ImportedChat, Error> {
    let title = conversation.title.unwrap_or_default();
    let at = format!("conversation {} ({:?})", index + 1, super::short(&title));
    let start_time = millis(conversation.create_time).unwrap_or(now);
    // The branch shown: from current_node up to the root. Without current_node, the node no
    // other node names as parent and that has the newest message.
    let current = match conversation.current_node {
        Some(id) => id,
        None => latest_leaf(&conversation.mapping)
            .ok_or_else(|| invalid(format!("{at}: it has no messages (its \"mapping\" is empty)")))?,
    };
    let mut branch = Vec::new();
    let mut seen = HashSet::new();
    let mut next = Some(current);
    while let Some(id) = next {
        if !seen.insert(id.clone()) {
            return Err(invalid(format!("{at}: its nodes' parents form a loop at {id:?}")));
        }
        let node = conversation
            .mapping
            .get(&id)
            .ok_or_else(|| invalid(format!("{at}: node {id:?} is named but not in its \"mapping\"")))?;
        branch.push(node);
        next = node.parent.clone();
    }
    branch.reverse();
    let mut messages: Vec<ImportedMessage> = Vec::new();
    let mut last_question = None;
    let mut last_time = start_time;
    for message in branch.iter().filter_map(|node| node.message.as_ref()) {
        let role = match message.author.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => continue,
        };
        if hidden(message) {
            continue;
        }
        let text = text_of(message);
        if text.trim().is_empty() {
            continue;
        }
        // Times never go backwards, so the messages list in the branch's order.
        let created_at = millis(message.create_time).unwrap_or(last_time).max(last_time);
        last_time = created_at;
        let model = message
            .metadata
            .as_ref()
            .and_then(|m| m.get("model_slug"))
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        let reply_to = match role {
            Role::Assistant => last_question,
            _ => None,
        };
        // Consecutive assistant parts of one answer (tool use splits them) are one answer.
        if role == Role::Assistant
            && let Some(previous) = messages.last_mut()
            && previous.role == Role::Assistant
        {
            previous.content.push_str("\n\n");
            previous.content.push_str(&text);
            previous.updated_at = created_at;
            continue;
        }
        if role == Role::User {
            last_question = Some(messages.len());
        }
        messages.push(ImportedMessage {
            role,
            content: text,
            reasoning: String::new(),
            status: MessageStatus::Complete,
            model: if role == Role::Assistant {
                model.to_owned()
            } else {
                String::new()
            },
            prompt_tokens: None,
            completion_tokens: None,
            error: String::new(),
            error_code: 0,
            error_reason: String::new(),
            reply_to,
            // The branch at current_node, one message after another.
            parent: messages.len().checked_sub(1),
            api_config_name: String::new(),
            created_at,
            updated_at: created_at,
        });
    }
    Ok(ImportedChat {
        title,
        system_prompt: String::new(),
        persona_name: None,
        model: String::new(),
        temperature: None,
        top_p: None,
        max_tokens: None,
        pinned: false,
        archived: false,
        start_time,
        end_time: None,
        messages,
        current: None,
    })
}

fn hidden(message: &Message) -> bool {
    message
        .metadata
        .as_ref()
        .and_then(|m| m.get("is_visually_hidden_from_conversation"))
        .and_then(|h| h.as_bool())
        .unwrap_or(false)
}

/// The text parts joined by blank lines; other parts (images, files) are left out.
fn text_of(message: &Message) -> String {
    let Some(content) = &message.content else {
        return String::new();
    };
    if let Some(parts) = &content.parts {
        parts
            .iter()
            .filter_map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n")
    } else {
        content.text.clone().unwrap_or_default()
    }
}

/// The leaf with the newest message, for files without `current_node`.
fn latest_leaf(mapping: &HashMap<String, Node>) -> Option<String> {
    let parents: HashSet<&str> = mapping.values().filter_map(|n| n.parent.as_deref()).collect();
    mapping
        .iter()
        .filter(|(id, _)| !parents.contains(id.as_str()))
        .max_by(|(a_id, a), (b_id, b)| {
            let time = |n: &Node| n.message.as_ref().and_then(|m| m.create_time).unwrap_or(0.0);
            time(a).total_cmp(&time(b)).then_with(|| b_id.cmp(a_id))
        })
        .map(|(id, _)| id.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// Two branches after the first answer: the user edited their second question; the
    /// current one is "Kyoto?".
    pub const SAMPLE: &str = r#"[{
      "title": "Japan trip", "create_time": 1700000000.5, "current_node": "a2b",
      "mapping": {
        "root": {"id": "root", "message": null, "parent": null, "children": ["sys"]},
        "sys": {"id": "sys", "parent": "root", "children": ["u1"], "message": {"id": "sys",
          "author": {"role": "system"}, "content": {"content_type": "text", "parts": [""]},
          "create_time": null, "metadata": {"is_visually_hidden_from_conversation": true}}},
        "u1": {"id": "u1", "parent": "sys", "children": ["a1"], "message": {"id": "u1",
          "author": {"role": "user"}, "content": {"content_type": "text", "parts": ["Plan a trip"]},
          "create_time": 1700000001.0, "metadata": {}}},
        "a1": {"id": "a1", "parent": "u1", "children": ["u2a", "u2b"], "message": {"id": "a1",
          "author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Where to?"]},
          "create_time": 1700000002.0, "metadata": {"model_slug": "gpt-4o"}}},
        "u2a": {"id": "u2a", "parent": "a1", "children": ["a2a"], "message": {"id": "u2a",
          "author": {"role": "user"}, "content": {"content_type": "text", "parts": ["Osaka?"]},
          "create_time": 1700000003.0}},
        "a2a": {"id": "a2a", "parent": "u2a", "children": [], "message": {"id": "a2a",
          "author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Osaka!"]},
          "create_time": 1700000004.0}},
        "u2b": {"id": "u2b", "parent": "a1", "children": ["a2b"], "message": {"id": "u2b",
          "author": {"role": "user"}, "content": {"content_type": "multimodal_text",
          "parts": [{"content_type": "image_asset_pointer"}, "Kyoto?"]}, "create_time": 1700000005.0}},
        "a2b": {"id": "a2b", "parent": "u2b", "children": [], "message": {"id": "a2b",
          "author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Kyoto!"]},
          "create_time": 1700000006.0, "metadata": {"model_slug": "gpt-4o"}}}
      }
    }]"#;

    #[test]
    fn takes_the_current_branch() {
        let chats = read(SAMPLE, 0).unwrap();
        assert_eq!(chats.len(), 1);
        let chat = &chats[0];
        assert_eq!(chat.title, "Japan trip");
        assert_eq!(chat.start_time, 1_700_000_000_500);
        let texts: Vec<(Role, &str)> = chat.messages.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            texts,
            [
                (Role::User, "Plan a trip"),
                (Role::Assistant, "Where to?"),
                (Role::User, "Kyoto?"),
                (Role::Assistant, "Kyoto!"),
            ]
        );
        assert_eq!(chat.messages[3].reply_to, Some(2));
        assert_eq!(chat.messages[3].model, "gpt-4o");
        assert_eq!(chat.messages[2].created_at, 1_700_000_005_000);
    }

    #[test]
    fn without_current_node_the_newest_leaf() {
        let sample = SAMPLE.replace("\"current_node\": \"a2b\",", "");
        let chats = read(&sample, 0).unwrap();
        assert_eq!(chats[0].messages.last().unwrap().content, "Kyoto!");
    }

    #[test]
    fn broken_trees_are_named() {
        let missing = SAMPLE.replace("\"current_node\": \"a2b\"", "\"current_node\": \"gone\"");
        let err = read(&missing, 0).unwrap_err().to_string();
        assert!(err.contains("conversation 1 (\"Japan trip\"): node \"gone\""), "{err}");
        let looped = SAMPLE.replace(
            "\"root\": {\"id\": \"root\", \"message\": null, \"parent\": null",
            "\"root\": {\"id\": \"root\", \"message\": null, \"parent\": \"a1\"",
        );
        let err = read(&looped, 0).unwrap_err().to_string();
        assert!(err.contains("loop"), "{err}");
        let err = read(r#"[{"title": "x"}]"#, 0).unwrap_err().to_string();
        assert!(err.contains("not a ChatGPT export"), "{err}");
    }
}
