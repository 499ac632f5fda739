//! `@username` mentions in room messages: each member named (not the author) is notified,
//! unless their settings say otherwise. Names are resolved by user-service after the message
//! is stored and sent, so posting never waits for it; a failure only loses the notification.

use std::collections::BTreeSet;
use std::sync::Arc;

use parley_proto::chat::v1 as pb;

use super::Rooms;
use super::notifications::excerpt;
use crate::store::{RoomMessageRow, RoomRow};
use crate::user_directory::CallerToken;

/// Distinct names one message may mention (the rest are not looked up).
const MAX_MENTIONS: usize = 20;
/// Usernames are 3 to 32 characters (user-service's rule).
const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=32;

/// The names written as `@name` in `text`: `@` at the start or after a character that is not
/// part of a name (so `bob@example.com` names nobody), then letters, digits, `_`, `.`
/// and `-`. A name ending in `.`, `-` or `_` is also tried without them ("thanks @alice.").
/// `@ai` is the AI member's, not a person's.
pub fn mentioned_names(text: &str) -> Vec<String> {
    let is_name_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut names = BTreeSet::new();
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        let starts = c == '@' && !previous.is_some_and(is_name_char);
        previous = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[at + 1..];
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let name = &rest[..end];
        for candidate in [name, name.trim_end_matches(['.', '-', '_'])] {
            let count = candidate.chars().count();
            if USERNAME_CHARS.contains(&count) && !candidate.eq_ignore_ascii_case("ai") {
                names.insert(candidate.to_lowercase());
            }
        }
        if names.len() >= MAX_MENTIONS {
            break;
        }
    }
    names.into_iter().take(MAX_MENTIONS).collect()
}

impl Rooms {
    /// Notifies the members `message` mentions, in the background.
    pub(super) fn notify_mentions(
        self: &Arc<Self>,
        caller: Option<CallerToken>,
        room: &RoomRow,
        message: &RoomMessageRow,
        author_account: &str,
    ) {
        let names = mentioned_names(&message.content);
        let Some(caller) = caller.filter(|_| !names.is_empty()) else {
            return;
        };
        let rooms = Arc::clone(self);
        let room = room.clone();
        let message = message.clone();
        let author_account = author_account.to_owned();
        tokio::spawn(async move {
            let accounts = match rooms.directory.accounts_named(&caller, names).await {
                Ok(accounts) => accounts,
                Err(e) => {
                    tracing::warn!(room_id = room.id.0, error = %e, "could not look up the usernames a message mentions");
                    return;
                }
            };
            for account in accounts {
                if account == author_account {
                    continue;
                }
                let member = match rooms.store.owner_by_account(&account).await {
                    Ok(Some(owner)) if owner.erased_at.is_none() => owner.id,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not find a mentioned account");
                        continue;
                    }
                };
                match rooms.store.member(room.id, member).await {
                    Ok(Some(row)) if row.banned_at.is_none() => {}
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not check a mentioned account's membership");
                        continue;
                    }
                }
                let notification = pb::Notification {
                    kind: pb::NotificationKind::Mention as i32,
                    room_id: room.id.0,
                    room_name: room.name.clone(),
                    actor_account_id: author_account.clone(),
                    message_id: message.id.0,
                    text: excerpt(&message.content),
                    ..Default::default()
                };
                rooms.notify(member, notification).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_after_at_signs() {
        assert_eq!(mentioned_names("hi @Alice and @bob!"), ["alice", "bob"]);
        assert_eq!(mentioned_names("@carol: look"), ["carol"]);
        assert_eq!(mentioned_names("thanks @dave."), ["dave", "dave."]);
        assert_eq!(mentioned_names("@ai what now? @AI"), Vec::<String>::new());
        assert_eq!(mentioned_names("mail bob@example.com"), Vec::<String>::new());
        assert_eq!(mentioned_names("@ab too short, @@eve"), ["eve"]);
        assert_eq!(mentioned_names("你好 @小明明"), ["小明明"]);
        assert_eq!(mentioned_names("no mention"), Vec::<String>::new());
    }

    #[test]
    fn mentions_are_bounded() {
        let text: String = (0..50).map(|i| format!("@user{i:02} ")).collect();
        assert_eq!(mentioned_names(&text).len(), MAX_MENTIONS);
    }
}
