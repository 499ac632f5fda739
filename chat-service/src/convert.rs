//! Stored rows as the protobuf messages replies carry. Times become Timestamps here and
//! nowhere else; API keys never leave the row (only their hint does).

use parley_proto::chat::v1 as pb;
use parley_proto::timestamp::from_unix_millis;

use crate::store::{ApiConfigRow, MessageRow, PersonaRow, SessionRow, role, status};

pub fn api_config(row: &ApiConfigRow) -> pb::ApiConfig {
    pb::ApiConfig {
        id: row.id,
        name: row.name.clone(),
        base_url: row.base_url.clone(),
        model: row.model.clone(),
        api_key_hint: row.api_key_hint.clone(),
        is_default: row.is_default != 0,
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
    }
}

pub fn persona(row: &PersonaRow) -> pb::Persona {
    pb::Persona {
        id: row.id,
        name: row.name.clone(),
        description: row.description.clone(),
        system_prompt: row.system_prompt.clone(),
        built_in: row.user_id.is_none(),
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
    }
}

pub fn session(row: &SessionRow) -> pb::Session {
    pb::Session {
        id: row.id,
        title: row.title.clone(),
        system_prompt: row.system_prompt.clone(),
        persona_id: row.persona_id,
        api_config_id: row.api_config_id,
        model: row.model.clone(),
        temperature: row.temperature,
        pinned: row.pinned != 0,
        archived: row.archived != 0,
        start_time: Some(from_unix_millis(row.start_time)),
        end_time: row.end_time.map(from_unix_millis),
        updated_at: Some(from_unix_millis(row.updated_at)),
        last_active_at: Some(from_unix_millis(row.last_active_at)),
    }
}

pub fn message_role(value: &str) -> pb::MessageRole {
    match value {
        role::USER => pb::MessageRole::User,
        role::ASSISTANT => pb::MessageRole::Assistant,
        role::SYSTEM => pb::MessageRole::System,
        _ => pb::MessageRole::Unspecified,
    }
}

pub fn message_status(value: &str) -> pb::MessageStatus {
    match value {
        status::COMPLETE => pb::MessageStatus::Complete,
        status::STREAMING => pb::MessageStatus::Streaming,
        status::STOPPED => pb::MessageStatus::Stopped,
        status::FAILED => pb::MessageStatus::Failed,
        _ => pb::MessageStatus::Unspecified,
    }
}

/// Unset when the provider reported neither count.
pub fn token_usage(prompt_tokens: Option<i64>, completion_tokens: Option<i64>) -> Option<pb::TokenUsage> {
    match (prompt_tokens, completion_tokens) {
        (None, None) => None,
        (prompt, completion) => Some(pb::TokenUsage {
            prompt_tokens: prompt.unwrap_or_default(),
            completion_tokens: completion.unwrap_or_default(),
        }),
    }
}

pub fn message(row: &MessageRow) -> pb::Message {
    pb::Message {
        id: row.id,
        session_id: row.session_id,
        role: message_role(&row.role) as i32,
        content: row.content.clone(),
        reasoning: row.reasoning.clone(),
        status: message_status(&row.status) as i32,
        model: row.model.clone(),
        usage: token_usage(row.prompt_tokens, row.completion_tokens),
        error: row.error.clone(),
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
        reply_to_id: row.reply_to_id,
        error_code: i32::try_from(row.error_code).unwrap_or(tonic::Code::Unknown as i32),
    }
}
