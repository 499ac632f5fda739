//! The OpenAI chat-completions wire format, typed.
//!
//! Requests are async-openai's own types (`CreateChatCompletionRequest` and its messages), used
//! without its client: the transport stays [`crate::provider`]'s, so status, headers and
//! `Retry-After` stay visible. What comes back is read with the lenient structs below instead
//! of async-openai's, which refuse what real providers send (each case is in the README under
//! "Wire format" and has a test here):
//! - an unknown `finish_reason` (`"eos"`, `"end_turn"`, vendor values) or `""` (sent on every
//!   chunk by some servers): async-openai's `FinishReason` is a closed enum;
//! - chunks without `id`, `created`, `model` or `object` (llama.cpp's and proxies' minimal
//!   chunks), and `usage` without `total_tokens`: required fields there;
//! - `reasoning_content` (DeepSeek, Qwen) and `reasoning` (vLLM, OpenRouter) deltas: absent
//!   from its delta type, so the reasoning would be silently dropped;
//! - an in-band `{"error": …}` event mid-stream: not a chunk at all.

use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestSystemMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionStreamOptions, CreateChatCompletionRequest,
};
use serde::{Deserialize, Deserializer};

/// The chat request: async-openai's type.
pub type ChatCompletionRequest = CreateChatCompletionRequest;

/// Who wrote a message of the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One message of the conversation, as the request carries it.
pub fn message(role: Role, content: String) -> ChatCompletionRequestMessage {
    match role {
        Role::System => ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
            content: ChatCompletionRequestSystemMessageContent::Text(content),
            name: None,
        }),
        Role::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Text(content),
            name: None,
        }),
        Role::Assistant => ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
            content: Some(ChatCompletionRequestAssistantMessageContent::Text(content)),
            ..Default::default()
        }),
    }
}

/// A streaming request for `model` with usage in the last chunk.
pub fn streaming_request(model: String, messages: Vec<ChatCompletionRequestMessage>) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model,
        messages,
        stream: Some(true),
        stream_options: Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One streamed event's JSON: a `chat.completion.chunk`, or an in-band error.
#[derive(Debug, Default, Deserialize)]
pub struct Chunk {
    #[serde(default, deserialize_with = "null_as_default")]
    pub choices: Vec<StreamChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Present (and not null) when the provider reports a failure in-band.
    #[serde(default)]
    pub error: Option<serde::de::IgnoredAny>,
}

impl Chunk {
    /// The first choice (`index` 0, or no index at all): Parley asks for one.
    pub fn first_choice(&self) -> Option<&StreamChoice> {
        self.choices.iter().find(|c| c.index.unwrap_or(0) == 0)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamChoice {
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub delta: Delta,
    #[serde(default, deserialize_with = "finish_reason")]
    pub finish_reason: Option<String>,
}

/// What one chunk adds; a non-streamed answer's `message` has the same fields.
#[derive(Debug, Default, Deserialize)]
pub struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    /// DeepSeek and Qwen say `reasoning_content`.
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// vLLM and OpenRouter say `reasoning`.
    #[serde(default)]
    pub reasoning: Option<String>,
}

impl Delta {
    pub fn reasoning(&self) -> Option<&str> {
        self.reasoning_content.as_deref().or(self.reasoning.as_deref())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: i64,
    #[serde(default)]
    pub completion_tokens: i64,
}

/// A non-streamed answer (`chat.completion`), from a server that ignored `stream: true`.
#[derive(Debug, Deserialize)]
pub struct Completion {
    pub choices: Vec<CompletionChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionChoice {
    pub message: Delta,
    #[serde(default, deserialize_with = "finish_reason")]
    pub finish_reason: Option<String>,
}

/// `null` read as the type's default (some servers send `"choices": null`, `"delta": null`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Any `finish_reason`: a string as it is, except `""`, which means not finished, as `null`
/// does (or a stream cut after it would count as complete); anything else as its JSON text.
fn finish_reason<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(reason) if reason.is_empty() => None,
        serde_json::Value::String(reason) => Some(reason),
        other => Some(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(json: &str) -> Chunk {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    /// Each case the README lists, read here and refused by async-openai's own type.
    fn refused_by_async_openai(json: &str) {
        let strict = serde_json::from_str::<async_openai::types::chat::CreateChatCompletionStreamResponse>(json);
        assert!(strict.is_err(), "async-openai reads it after all: {json}");
    }

    const FULL: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;

    #[test]
    fn an_ordinary_chunk_reads_alike_in_both() {
        assert!(serde_json::from_str::<async_openai::types::chat::CreateChatCompletionStreamResponse>(FULL).is_ok());
        let read = chunk(FULL);
        let choice = read.first_choice().unwrap_or_else(|| unreachable!());
        assert_eq!(choice.delta.content.as_deref(), Some("Hi"));
        assert_eq!(choice.finish_reason, None);
    }

    #[test]
    fn unknown_and_empty_finish_reasons() {
        let unknown = FULL.replace(r#""finish_reason":null"#, r#""finish_reason":"eos""#);
        refused_by_async_openai(&unknown);
        assert_eq!(chunk(&unknown).choices[0].finish_reason.as_deref(), Some("eos"));
        let empty = FULL.replace(r#""finish_reason":null"#, r#""finish_reason":"""#);
        refused_by_async_openai(&empty);
        assert_eq!(chunk(&empty).choices[0].finish_reason, None);
        let odd = FULL.replace(r#""finish_reason":null"#, r#""finish_reason":3"#);
        assert_eq!(chunk(&odd).choices[0].finish_reason.as_deref(), Some("3"));
    }

    #[test]
    fn minimal_chunks_and_usage_without_a_total() {
        let minimal = r#"{"choices":[{"delta":{"content":"Hi"}}]}"#;
        refused_by_async_openai(minimal);
        let read = chunk(minimal);
        assert_eq!(read.first_choice().and_then(|c| c.delta.content.as_deref()), Some("Hi"));
        let usage = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
        refused_by_async_openai(usage);
        let read = chunk(usage);
        let usage = read.usage.unwrap_or_default();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 4));
        let nulls = chunk(r#"{"choices":null,"usage":null}"#);
        assert!(nulls.choices.is_empty() && nulls.usage.is_none());
    }

    #[test]
    fn reasoning_in_both_spellings() {
        let deepseek = FULL.replace(r#""content":"Hi""#, r#""content":null,"reasoning_content":"Hmm""#);
        // async-openai reads it, but without the reasoning: it has no such field.
        assert!(
            serde_json::from_str::<async_openai::types::chat::CreateChatCompletionStreamResponse>(&deepseek).is_ok()
        );
        assert_eq!(chunk(&deepseek).choices[0].delta.reasoning(), Some("Hmm"));
        let vllm = FULL.replace(r#""content":"Hi""#, r#""reasoning":"Hmm""#);
        assert_eq!(chunk(&vllm).choices[0].delta.reasoning(), Some("Hmm"));
    }

    #[test]
    fn in_band_errors() {
        let error = r#"{"error":{"message":"The server had an error"}}"#;
        refused_by_async_openai(error);
        assert!(chunk(error).error.is_some());
        assert!(chunk(r#"{"choices":[],"error":null}"#).error.is_none());
    }

    #[test]
    fn the_request_is_what_providers_expect() {
        let mut request = streaming_request(
            "m".to_string(),
            vec![
                message(Role::System, "be brief".to_string()),
                message(Role::User, "hi".to_string()),
                message(Role::Assistant, "hello".to_string()),
            ],
        );
        request.temperature = Some(0.7);
        // As sent: serialized, then read back (f32 values print as written, `0.7`).
        let sent = serde_json::to_string(&request).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&sent).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "temperature": 0.7,
            })
        );
    }
}
