//! Stored rows, and the events of a generation, as the `parley.chat.v1` messages replies and
//! streams carry: the only place that builds them (handlers only wrap them in responses).
//! Times become Timestamps here and nowhere else; ids become the protos' int64; API keys
//! never leave the row (only their hint does).

mod rooms;
mod share_links;

use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::chat_event::Event;
use parley_proto::timestamp::from_unix_millis;
use parley_service_kit::grpc_status::Reason;

pub use rooms::{invitation, member, role, room, room_message};
pub use share_links::{share_link, shared_chat};

use crate::ids::MessageId;
use crate::quota::QuotaLimits;
use crate::service::{AccountQuota, ModelGroup};
use crate::store::{
    ApiConfigRow, ChatDefaultsRow, FavoriteModelRow, FinishedAnswer, FolderRow, MessageRow, MessageStatus, PersonaRow,
    PromptRow, Role, SessionRow, SharedConnectionRow, SharedModelRow, TokensUsed, UsageRow,
};
use crate::usage::picos_to_micros;

pub fn api_config(row: &ApiConfigRow) -> pb::ApiConfig {
    pb::ApiConfig {
        id: row.id.0,
        name: row.name.clone(),
        base_url: row.base_url.clone(),
        model: row.model.clone(),
        api_key_hint: row.api_key_hint.clone(),
        is_default: row.is_default != 0,
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
        session_count: i32::try_from(row.session_count).unwrap_or(i32::MAX),
    }
}

fn shared_models(models: &[SharedModelRow]) -> Vec<pb::SharedModel> {
    models
        .iter()
        .map(|m| pb::SharedModel {
            model: m.model.clone(),
            prompt_price_micros: m.prompt_price_micros,
            completion_price_micros: m.completion_price_micros,
        })
        .collect()
}

/// A shared connection as administrators see it (base URL and key hint included).
pub fn shared_connection(
    row: &SharedConnectionRow,
    models: &[SharedModelRow],
    granted: &[String],
) -> pb::SharedConnection {
    pb::SharedConnection {
        id: row.id.0,
        name: row.name.clone(),
        base_url: row.base_url.clone(),
        api_key_hint: row.api_key_hint.clone(),
        models: shared_models(models),
        currency: row.currency.clone(),
        daily_token_limit: row.daily_token_limit,
        monthly_token_limit: row.monthly_token_limit,
        everyone: row.everyone != 0,
        granted_account_ids: granted.to_vec(),
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
    }
}

/// A shared connection as a user sees it: no base URL (it may name a host of the operator's
/// network), no key hint.
pub fn available_shared_connection(
    row: &SharedConnectionRow,
    models: &[SharedModelRow],
    used: TokensUsed,
) -> pb::AvailableSharedConnection {
    pb::AvailableSharedConnection {
        id: row.id.0,
        name: row.name.clone(),
        models: shared_models(models),
        currency: row.currency.clone(),
        daily_token_limit: row.daily_token_limit,
        monthly_token_limit: row.monthly_token_limit,
        tokens_used_today: used.today,
        tokens_used_this_month: used.this_month,
    }
}

/// A usage row; `period` empty for the whole range.
pub fn usage_row(period: Option<&str>, row: &UsageRow) -> pb::UsageRow {
    pb::UsageRow {
        period: period.unwrap_or_default().to_owned(),
        connection_id: row.api_config_id.0,
        connection_name: row.config_name.clone(),
        shared: row.shared != 0,
        model: row.model.clone(),
        prompt_tokens: row.prompt_tokens,
        completion_tokens: row.completion_tokens,
        answers: row.answers,
        cost_micros: picos_to_micros(row.cost_picos),
        currency: row.currency.clone(),
        account_id: row.account_id.clone(),
    }
}

pub fn persona(row: &PersonaRow) -> pb::Persona {
    pb::Persona {
        id: row.id.0,
        name: row.name.clone(),
        description: row.description.clone(),
        system_prompt: row.system_prompt.clone(),
        built_in: row.user_id.is_none(),
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
        avatar: row.avatar.clone(),
        session_count: i32::try_from(row.session_count).unwrap_or(i32::MAX),
    }
}

pub fn session(row: &SessionRow) -> pb::Session {
    pb::Session {
        id: row.id.0,
        title: row.title.clone(),
        system_prompt: row.system_prompt.clone(),
        persona_id: row.persona_id.map(|id| id.0),
        api_config_id: row.api_config_id.map(|id| id.0),
        model: row.model.clone(),
        temperature: row.temperature,
        top_p: row.top_p,
        max_tokens: row.max_tokens.and_then(|n| i32::try_from(n).ok()),
        pinned: row.pinned != 0,
        archived: row.archived != 0,
        start_time: Some(from_unix_millis(row.start_time)),
        end_time: row.end_time.map(from_unix_millis),
        updated_at: Some(from_unix_millis(row.updated_at)),
        last_active_at: Some(from_unix_millis(row.last_active_at)),
        folder_id: row.folder_id.map(|id| id.0),
    }
}

pub fn model_group(group: &ModelGroup) -> pb::ModelGroup {
    let (error, reason) = group.error.clone().unwrap_or_default();
    pb::ModelGroup {
        api_config_id: group.config_id.0,
        api_config_name: group.config_name.clone(),
        shared: group.shared,
        default_model: group.default_model.clone(),
        models: group.models.clone(),
        error,
        error_reason: reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        fetched_at: group.fetched_at.map(from_unix_millis),
    }
}

pub fn favorite_model(row: &FavoriteModelRow) -> pb::FavoriteModel {
    pb::FavoriteModel {
        api_config_id: row.api_config_id.0,
        model: row.model.clone(),
        created_at: Some(from_unix_millis(row.created_at)),
    }
}

pub fn chat_defaults(row: &ChatDefaultsRow) -> pb::ChatDefaults {
    pb::ChatDefaults {
        persona_id: row.persona_id.map(|id| id.0),
        system_prompt: row.system_prompt.clone(),
        temperature: row.temperature,
        top_p: row.top_p,
        max_tokens: row.max_tokens.and_then(|n| i32::try_from(n).ok()),
        updated_at: row.updated_at.map(from_unix_millis),
    }
}

pub(crate) fn message_role(role: Role) -> pb::MessageRole {
    match role {
        Role::User => pb::MessageRole::User,
        Role::Assistant => pb::MessageRole::Assistant,
        Role::System => pb::MessageRole::System,
    }
}

fn message_status(status: MessageStatus) -> pb::MessageStatus {
    match status {
        MessageStatus::Complete => pb::MessageStatus::Complete,
        MessageStatus::Streaming => pb::MessageStatus::Streaming,
        MessageStatus::Stopped => pb::MessageStatus::Stopped,
        MessageStatus::Failed => pb::MessageStatus::Failed,
    }
}

/// Unset when the provider reported neither count.
fn token_usage(prompt_tokens: Option<i64>, completion_tokens: Option<i64>) -> Option<pb::TokenUsage> {
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
        id: row.id.0,
        session_id: row.session_id.0,
        role: message_role(row.role) as i32,
        content: row.content.clone(),
        reasoning: row.reasoning.clone(),
        status: message_status(row.status) as i32,
        model: row.model.clone(),
        usage: token_usage(row.prompt_tokens, row.completion_tokens),
        error: row.error.clone(),
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
        reply_to_id: row.reply_to_id.map(|id| id.0),
        error_code: i32::try_from(row.error_code).unwrap_or(tonic::Code::Unknown as i32),
        error_reason: row.error_reason.clone(),
        api_config_name: row.api_config_name.clone(),
        parent_id: row.parent_id.map(|id| id.0),
        sibling_ids: Vec::new(),
        persona_name: row.persona_name.clone(),
        persona_avatar: row.persona_avatar.clone(),
    }
}

/// A message with the versions at its place in the chat's tree (as ListMessages lists it):
/// none when it is the only one.
pub fn message_with_versions(row: &MessageRow, siblings: &[MessageId]) -> pb::Message {
    let versions = if siblings.len() > 1 { siblings } else { &[] };
    pb::Message {
        sibling_ids: versions.iter().map(|id| id.0).collect(),
        ..message(row)
    }
}

pub fn folder(row: &FolderRow) -> pb::Folder {
    pb::Folder {
        id: row.id.0,
        name: row.name.clone(),
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
    }
}

/// `variables`: the body's variable names, as the service reads them.
pub fn prompt(row: &PromptRow, variables: Vec<String>) -> pb::Prompt {
    pb::Prompt {
        id: row.id.0,
        title: row.title.clone(),
        command: row.command.clone(),
        body: row.body.clone(),
        variables,
        created_at: Some(from_unix_millis(row.created_at)),
        updated_at: Some(from_unix_millis(row.updated_at)),
    }
}

/// The row a generation started with (`started`) with its end as `finish_answer` wrote it:
/// what COMPLETED carries, without reading the row back.
pub fn finished_message(started: pb::Message, answer: &FinishedAnswer<'_>) -> pb::Message {
    pb::Message {
        content: answer.content.to_owned(),
        reasoning: answer.reasoning.to_owned(),
        status: message_status(answer.status) as i32,
        error: answer.error.to_owned(),
        error_code: answer.error_code as i32,
        error_reason: answer.error_reason.to_owned(),
        usage: token_usage(answer.prompt_tokens, answer.completion_tokens),
        updated_at: Some(from_unix_millis(answer.now)),
        ..started
    }
}

/// The failure event of a generation (or of following one).
pub fn error_event(code: tonic::Code, message: &str, reason: Option<Reason>) -> Event {
    Event::Error(pb::ChatError {
        code: code as i32,
        message: message.to_owned(),
        reason: reason.map(Reason::as_str).unwrap_or_default().to_owned(),
    })
}

/// `assistant_started` for an answer followed through its row: the row without its text,
/// which follows as deltas.
pub fn started_event(row: &MessageRow) -> Event {
    let mut started = message(row);
    started.content.clear();
    started.reasoning.clear();
    Event::AssistantStarted(started)
}

/// Text as events: the reasoning, then the answer, each as one delta (none when empty).
pub fn text_events(reasoning: &str, content: &str) -> Vec<Event> {
    let mut events = Vec::new();
    if !reasoning.is_empty() {
        events.push(Event::ReasoningDelta(reasoning.to_owned()));
    }
    if !content.is_empty() {
        events.push(Event::Delta(content.to_owned()));
    }
    events
}

/// The terminal event of a finished answer (a FAILED one's text comes before it as deltas).
pub fn final_event(row: &MessageRow) -> Event {
    if row.status == MessageStatus::Failed {
        Event::Error(pb::ChatError {
            code: row.error_code as i32,
            message: row.error.clone(),
            reason: row.error_reason.clone(),
        })
    } else {
        Event::Completed(message(row))
    }
}

pub fn account_quota(quota: &AccountQuota) -> pb::AccountQuota {
    let usage = &quota.usage;
    let overrides = &quota.overrides;
    pb::AccountQuota {
        account_id: quota.account_id.clone(),
        limits: Some(quota_limits(&quota.limits)),
        overrides: Some(pb::QuotaOverrides {
            stored_bytes: overrides.stored_bytes,
            sessions: overrides.sessions,
            personas: overrides.personas,
            api_configs: overrides.api_configs,
            messages_per_day: overrides.messages_per_day,
        }),
        defaults: Some(quota_limits(&quota.defaults)),
        usage: Some(pb::AccountUsage {
            sessions: usage.sessions,
            messages: usage.messages,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            stored_bytes: usage.stored_bytes,
            messages_today: usage.messages_today,
            personas: usage.personas,
            api_configs: usage.api_configs,
        }),
        messages_reset_at: Some(from_unix_millis(quota.messages_reset_at)),
    }
}

fn quota_limits(limits: &QuotaLimits) -> pb::QuotaLimits {
    pb::QuotaLimits {
        stored_bytes: limits.stored_bytes,
        sessions: limits.sessions,
        personas: limits.personas,
        api_configs: limits.api_configs,
        messages_per_day: limits.messages_per_day,
    }
}
