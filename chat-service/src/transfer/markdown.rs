//! A chat as Markdown, for people: the title, what it was set up with, then each message
//! under a heading saying who wrote it and when. It reads as one conversation: the caller
//! gives the shown branch (other versions are in the JSON export); a failed or stopped answer
//! says so.

use super::rfc3339;
use crate::store::{MessageRow, MessageStatus, Role, SessionRow};

pub fn chat_markdown(session: &SessionRow, persona_name: Option<&str>, messages: &[MessageRow], now: i64) -> String {
    let mut out = String::new();
    let title = if session.title.trim().is_empty() {
        "Untitled chat"
    } else {
        session.title.trim()
    };
    out.push_str(&format!("# {}\n\n", one_line(title)));
    out.push_str(&format!("- Started: {}\n", rfc3339(session.start_time)));
    if let Some(end) = session.end_time {
        out.push_str(&format!("- Ended: {}\n", rfc3339(end)));
    }
    if let Some(name) = persona_name {
        out.push_str(&format!("- Persona: {}\n", one_line(name)));
    }
    if !session.model.is_empty() {
        out.push_str(&format!("- Model: {}\n", one_line(&session.model)));
    }
    out.push_str(&format!("- Exported: {}\n", rfc3339(now)));
    if !session.system_prompt.trim().is_empty() {
        out.push_str("\n## System prompt\n\n");
        out.push_str(&quoted(&session.system_prompt));
    }
    for message in messages {
        out.push_str("\n---\n\n");
        out.push_str(&heading(message));
        out.push_str("\n\n");
        if !message.reasoning.trim().is_empty() {
            out.push_str("<details><summary>Reasoning</summary>\n\n");
            out.push_str(message.reasoning.trim_end());
            out.push_str("\n\n</details>\n\n");
        }
        if message.content.is_empty() {
            out.push_str("*(no text)*\n");
        } else {
            out.push_str(message.content.trim_end());
            out.push('\n');
        }
        if message.status == MessageStatus::Failed && !message.error.is_empty() {
            out.push_str(&format!("\n> Failed: {}\n", one_line(&message.error)));
        }
    }
    out
}

fn heading(message: &MessageRow) -> String {
    let who = match message.role {
        Role::User => "User".to_owned(),
        Role::System => "System".to_owned(),
        Role::Assistant if message.model.is_empty() => "Assistant".to_owned(),
        Role::Assistant => format!("Assistant ({})", one_line(&message.model)),
    };
    let status = match message.status {
        MessageStatus::Complete => "",
        MessageStatus::Streaming => " · being written",
        MessageStatus::Stopped => " · stopped",
        MessageStatus::Failed => " · failed",
    };
    format!("### {who} · {}{status}", rfc3339(message.created_at))
}

/// Text on one line (for headings and list items).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text as a Markdown block quote.
fn quoted(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_owned()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ids::{MessageId, OwnerId, SessionId};

    fn message(id: i64, role: Role, content: &str, status: MessageStatus, model: &str) -> MessageRow {
        MessageRow {
            id: MessageId(id),
            session_id: SessionId(1),
            role,
            content: content.to_owned(),
            reasoning: String::new(),
            status,
            model: model.to_owned(),
            api_config_name: String::new(),
            persona_name: String::new(),
            persona_avatar: String::new(),
            prompt_tokens: None,
            completion_tokens: None,
            error: if status == MessageStatus::Failed {
                "provider down".into()
            } else {
                String::new()
            },
            error_code: 0,
            error_reason: String::new(),
            reply_to_id: None,
            created_at: 1_767_225_600_000 + id * 1000,
            updated_at: 0,
            parent_id: None,
        }
    }

    #[test]
    fn says_who_wrote_what_and_when() {
        let session = SessionRow {
            id: SessionId(1),
            user_id: OwnerId(1),
            title: "Trip\nplans".into(),
            system_prompt: "Be brief.\n\nAlways.".into(),
            persona_id: None,
            api_config_id: None,
            model: String::new(),
            temperature: None,
            top_p: None,
            max_tokens: None,
            pinned: 0,
            archived: 0,
            start_time: 1_767_225_600_000,
            end_time: None,
            updated_at: 0,
            last_active_at: 0,
            current_message_id: None,
            folder_id: None,
        };
        let messages = [
            message(1, Role::User, "Where to?", MessageStatus::Complete, ""),
            message(2, Role::Assistant, "**Kyoto**", MessageStatus::Complete, "gpt-4o"),
            message(3, Role::Assistant, "", MessageStatus::Failed, "gpt-4o"),
        ];
        let md = chat_markdown(&session, Some("Guide"), &messages, 1_767_225_700_000);
        assert_eq!(
            md,
            "# Trip plans\n\n- Started: 2026-01-01T00:00:00Z\n- Persona: Guide\n- Exported: 2026-01-01T00:01:40Z\n\
             \n## System prompt\n\n> Be brief.\n>\n> Always.\n\
             \n---\n\n### User · 2026-01-01T00:00:01Z\n\nWhere to?\n\
             \n---\n\n### Assistant (gpt-4o) · 2026-01-01T00:00:02Z\n\n**Kyoto**\n\
             \n---\n\n### Assistant (gpt-4o) · 2026-01-01T00:00:03Z · failed\n\n*(no text)*\n\n> Failed: provider down\n"
        );
    }
}
