//! A title for an untitled session after its first answer: asked of the same model, cleaned
//! of reasoning and decoration; made from the question when the model gives none.

use std::time::Duration;

use parley_proto::chat::v1 as pb;
use parley_proto::llm::v1 as llm;
use parley_service_kit::database::now_millis;
use parley_service_kit::trace_context::TraceHeaders;

use super::log::Generation;
use crate::convert;
use crate::llm_client::LlmClient;
use crate::store::ChatStore;
use crate::validation;

/// Title generation after the first answer of an untitled session.
pub struct TitleJob {
    pub question: String,
}

/// Asks the same model for a short title; when it gives none (it failed, or spent its
/// tokens reasoning), the title is made from the question. None when nothing could be
/// stored (logged), or the user named the session meanwhile.
pub(super) async fn generate(
    store: &ChatStore,
    llm: &LlmClient,
    trace: &TraceHeaders,
    answer_request: &llm::StreamChatRequest,
    generation: &Generation,
    title: &TitleJob,
    answer: &str,
) -> Option<pb::Session> {
    let request = title_request(answer_request, &title.question, answer);
    let generated = tokio::time::timeout(TITLE_TIMEOUT, async {
        let mut stream = llm.stream_chat(request, trace).await?;
        let mut text = String::new();
        while let Some(message) = stream.message().await? {
            match message.chunk {
                Some(llm::stream_chat_response::Chunk::ContentDelta(delta)) => text.push_str(&delta),
                Some(llm::stream_chat_response::Chunk::Finish(_)) => break,
                _ => {}
            }
        }
        Ok::<_, tonic::Status>(text)
    })
    .await;
    let from_model = match generated {
        Ok(Ok(text)) => clean_title(&text),
        Ok(Err(status)) => {
            tracing::warn!(code = ?status.code(), error = status.message(), "title generation failed");
            None
        }
        Err(_) => {
            tracing::warn!("title generation timed out");
            None
        }
    };
    let title = match from_model {
        Some(title) => title,
        None => title_from_question(&title.question)?,
    };
    store_title(store, generation, &title).await
}

/// After a first answer that failed: the question names the session, so the chat is not left
/// behind as an untitled "New chat" (the model is not asked; it just failed).
pub(super) async fn from_question(store: &ChatStore, generation: &Generation, title: &TitleJob) -> Option<pb::Session> {
    store_title(store, generation, &title_from_question(&title.question)?).await
}

/// Names the session unless the user named it meanwhile; the session as stored then.
async fn store_title(store: &ChatStore, generation: &Generation, title: &str) -> Option<pb::Session> {
    let session_id = generation.session_id;
    match store.set_title_if_untitled(session_id, title, now_millis()).await {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "could not store the generated title");
            return None;
        }
    }
    match store.session(generation.user_id, session_id).await {
        Ok(Some(row)) => Some(convert::session(&row)),
        _ => None,
    }
}

/// Characters of the conversation shown to the model when asking for a title.
const TITLE_EXCERPT_CHARS: usize = 1_000;
/// Titles are cut to this many characters.
const MAX_TITLE_CHARS: usize = 60;
/// Room for the title and, from a reasoning model, the reasoning before it.
const TITLE_MAX_TOKENS: i32 = 512;
const TITLE_TIMEOUT: Duration = Duration::from_secs(30);

fn excerpt(text: &str) -> String {
    text.chars().take(TITLE_EXCERPT_CHARS).collect()
}

fn title_request(answer_request: &llm::StreamChatRequest, question: &str, answer: &str) -> llm::StreamChatRequest {
    llm::StreamChatRequest {
        provider: answer_request.provider.clone(),
        messages: vec![
            llm::ChatMessage {
                role: llm::ChatRole::System as i32,
                content: "You name conversations. Reply with a title of at most six words, in the language of \
                          the conversation, without quotes or a trailing period."
                    .to_owned(),
            },
            llm::ChatMessage {
                role: llm::ChatRole::User as i32,
                content: format!(
                    "Conversation:\nUser: {}\nAssistant: {}\n\nTitle:",
                    excerpt(question),
                    excerpt(answer)
                ),
            },
        ],
        params: Some(llm::GenerationParams {
            temperature: Some(0.3),
            top_p: None,
            max_tokens: Some(TITLE_MAX_TOKENS),
        }),
    }
}

/// Text without the reasoning some models write inline (`<think>…</think>`); an unclosed
/// block runs to the end.
fn without_inline_reasoning(text: &str) -> String {
    let mut rest = text;
    let mut kept = String::new();
    while let Some(open) = rest.find("<think>") {
        kept.push_str(&rest[..open]);
        match rest[open..].find("</think>") {
            Some(close) => rest = &rest[open + close + "</think>".len()..],
            None => return kept,
        }
    }
    kept.push_str(rest);
    kept
}

/// The first non-empty line outside inline reasoning, without quotes, a "Title:" prefix, a
/// trailing period or NUL characters, cut to [`MAX_TITLE_CHARS`].
fn clean_title(raw: &str) -> Option<String> {
    let text = without_inline_reasoning(&validation::storable(raw));
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line
        .strip_prefix("Title:")
        .or_else(|| line.strip_prefix("title:"))
        .unwrap_or(line)
        .trim();
    let decoration =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '“' | '”' | '「' | '」' | '《' | '》' | '*' | '#');
    // Trailing periods only: a title may well start with one (".NET tips").
    let line = line
        .trim_start_matches(decoration)
        .trim_end_matches(|c: char| decoration(c) || matches!(c, '.' | '。'));
    let title: String = line.chars().take(MAX_TITLE_CHARS).collect();
    let title = title.trim().to_owned();
    (!title.is_empty()).then_some(title)
}

/// A title made from the question when the model gives none: its first line, cut at a word
/// boundary to at most [`MAX_TITLE_CHARS`] (with "…" when cut).
fn title_from_question(question: &str) -> Option<String> {
    let line = question.lines().map(str::trim).find(|l| !l.is_empty())?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= MAX_TITLE_CHARS {
        return Some(line);
    }
    let budget = MAX_TITLE_CHARS - 1;
    let cut: String = line.chars().take(budget).collect();
    // Back to the last space, unless that would drop most of the text (one long word).
    let cut = match cut.rfind(' ') {
        Some(space) if space >= cut.len() / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    Some(format!("{}…", cut.trim_end()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cleaned() {
        assert_eq!(
            clean_title("\"Rust borrow checker\".\n").as_deref(),
            Some("Rust borrow checker")
        );
        assert_eq!(
            clean_title("\n  Title: Trip to Kyoto").as_deref(),
            Some("Trip to Kyoto")
        );
        assert_eq!(clean_title("《翻译练习》。").as_deref(), Some("翻译练习"));
        assert_eq!(clean_title("   \n "), None);
        assert_eq!(clean_title(&"x".repeat(200)).map(|t| t.len()), Some(MAX_TITLE_CHARS));
        // Inline reasoning is not the title.
        assert_eq!(
            clean_title("<think>The user asks about Kyoto.\nMaybe…</think>\nKyoto Trip").as_deref(),
            Some("Kyoto Trip")
        );
        assert_eq!(clean_title("<think>still thinking when the tokens ran out"), None);
        assert_eq!(clean_title("Nul\0 Title").as_deref(), Some("Nul Title"));
    }

    #[test]
    fn titles_from_the_question() {
        assert_eq!(
            title_from_question("\n  How do   lifetimes work?\nMore detail").as_deref(),
            Some("How do lifetimes work?")
        );
        let long = "Please explain in detail how the borrow checker decides when a reference outlives its owner";
        let title = title_from_question(long).unwrap();
        assert!(
            title.ends_with('…') && title.chars().count() <= MAX_TITLE_CHARS,
            "{title}"
        );
        assert!(long.starts_with(title.trim_end_matches('…')), "{title}");
        let one_word = "x".repeat(200);
        assert_eq!(title_from_question(&one_word).unwrap().chars().count(), MAX_TITLE_CHARS);
        assert_eq!(title_from_question(" \n "), None);
    }
}
