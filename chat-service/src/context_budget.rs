//! Which messages of a session are sent to the model.
//!
//! The system prompt, then as many of the most recent messages as fit the token budget. The
//! newest message (the user's question) is always sent, even when it alone exceeds the budget:
//! dropping it would answer something the user did not ask.

/// Rough token count: about four characters per token for Latin text, and one per character
/// for CJK and other wide scripts, where a character is usually a token or more.
pub fn estimate_tokens(text: &str) -> usize {
    let mut wide = 0usize;
    let mut narrow = 0usize;
    for c in text.chars() {
        if is_wide(c) {
            wide += 1;
        } else {
            narrow += 1;
        }
    }
    // Every message also costs a few tokens of framing (role, separators).
    wide + narrow.div_ceil(4) + 4
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF      // Hangul Jamo
        | 0x2E80..=0x9FFF    // CJK radicals, kana, CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF00..=0xFFEF    // full-width forms
        | 0x20000..=0x3FFFF  // CJK extensions
    )
}

/// Indices (into `messages`, oldest first) of the messages to send, oldest first: the longest
/// suffix whose estimated size plus the system prompt's fits `budget`, and never less than the
/// last message.
pub fn select_recent(system_prompt: &str, messages: &[&str], budget: usize) -> std::ops::Range<usize> {
    let Some(last) = messages.len().checked_sub(1) else {
        return 0..0;
    };
    let mut used = if system_prompt.is_empty() {
        0
    } else {
        estimate_tokens(system_prompt)
    };
    used += estimate_tokens(messages[last]);
    let mut start = last;
    while start > 0 {
        let cost = estimate_tokens(messages[start - 1]);
        if used + cost > budget {
            break;
        }
        used += cost;
        start -= 1;
    }
    start..messages.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_is_about_four_chars_per_token() {
        assert_eq!(estimate_tokens(&"a".repeat(400)), 104);
    }

    #[test]
    fn cjk_is_about_one_token_per_char() {
        assert_eq!(estimate_tokens(&"你好".repeat(50)), 104);
        assert_eq!(estimate_tokens("こんにちは"), 9);
    }

    #[test]
    fn everything_fits() {
        assert_eq!(select_recent("be brief", &["a", "b", "c"], 1000), 0..3);
    }

    #[test]
    fn keeps_most_recent_that_fit() {
        let long = "x".repeat(400); // 104 tokens
        let msgs = [long.as_str(), long.as_str(), long.as_str(), "question"];
        // system 0 + question 6 + two long ones 208 = 214 ≤ 250 < 318.
        assert_eq!(select_recent("", &msgs, 250), 1..4);
    }

    #[test]
    fn system_prompt_counts() {
        let msgs = ["one", "two"];
        let prompt = "p".repeat(40); // 14 tokens
        // 14 + 5 ("two") = 19; adding "one" (5) makes 24 > 20.
        assert_eq!(select_recent(&prompt, &msgs, 20), 1..2);
    }

    #[test]
    fn newest_message_is_never_dropped() {
        let huge = "z".repeat(100_000);
        assert_eq!(select_recent("system", &["old", huge.as_str()], 10), 1..2);
    }

    #[test]
    fn no_messages() {
        assert_eq!(select_recent("system", &[], 10), 0..0);
    }
}
