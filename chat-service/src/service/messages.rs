//! Messages as stored: reading a chat's shown branch a page at a time, switching to another
//! version (which shows the branch through it), editing and deleting finished ones. (Writing
//! questions and answers is a turn's: `turns`.)
//!
//! A personal chat is a tree (`message_tree`): an answer's parent is its question, a
//! question's parent the message it followed. Another answer to a question, or another version
//! of a question, is a sibling; the session records the message its shown branch ends at.

use std::collections::HashSet;

use parley_service_kit::database::now_millis;

use super::ChatService;
use super::quotas::bytes_of;
use crate::Error;
use crate::ids::{MessageId, OwnerId, SessionId};
use crate::message_tree::MessageTree;
use crate::page_token::MessageCursor;
use crate::quota::Quota;
use crate::store::{MessageRow, MessageStatus, Role, SessionRow};
use crate::validation;

/// A message with the versions at its place in the tree (oldest first, itself among them).
pub struct PlacedMessage {
    pub row: MessageRow,
    pub siblings: Vec<MessageId>,
}

/// One page of a chat's messages.
pub struct MessagePage {
    pub messages: Vec<PlacedMessage>,
    pub next_page_token: String,
    /// Where the shown branch ends (`None`: an empty chat).
    pub current_message_id: Option<MessageId>,
}

impl ChatService {
    /// The shown branch, first message first (or, with `all_branches`, every message of the
    /// chat, oldest first), a page at a time.
    pub async fn list_messages(
        &self,
        user_id: OwnerId,
        session_id: SessionId,
        page_size: i32,
        page_token: &str,
        all_branches: bool,
    ) -> Result<MessagePage, Error> {
        let size = validation::page_size("page_size", page_size)?;
        let after = if page_token.is_empty() {
            None
        } else {
            Some(
                MessageCursor::decode(page_token)
                    .ok_or_else(|| Error::invalid("page_token", "is not a valid page token"))?,
            )
        };
        let session = self.session(user_id, session_id).await?;
        let tree = MessageTree::new(self.store.message_tree(session_id).await?);
        self.page(&session, &tree, after, size, all_branches).await
    }

    /// Shows the branch through `message_id` (a version of a question or an answer): it ends
    /// where it ended when last shown. Answers the first page of it.
    pub async fn switch_branch(
        &self,
        user_id: OwnerId,
        message_id: MessageId,
        page_size: i32,
    ) -> Result<MessagePage, Error> {
        let size = validation::page_size("page_size", page_size)?;
        let row = self.message(user_id, message_id).await?;
        let mut session = self.session(user_id, row.session_id).await?;
        // The answer being written belongs to the shown branch until it ends.
        if !self.store.streaming_in_session(session.id).await?.is_empty() {
            return Err(Error::GenerationRunning { session_id: session.id });
        }
        let tree = MessageTree::new(self.store.message_tree(session.id).await?);
        let end = tree.latest_leaf_under(message_id);
        self.store.show_branch_ending_at(session.id, end, now_millis()).await?;
        session.current_message_id = Some(end);
        self.page(&session, &tree, None, size, false).await
    }

    /// Every message of the session's shown branch, first message first (what a share link
    /// copies and a Markdown export writes). The caller checked the session's owner.
    pub(super) async fn shown_branch(&self, session: &SessionRow) -> Result<Vec<MessageRow>, Error> {
        let tree = MessageTree::new(self.store.message_tree(session.id).await?);
        let ids = in_row_order(&tree, &tree.branch(session.current_message_id));
        let mut rows = Vec::with_capacity(ids.len());
        // A bounded number of ids per statement (SQLite and PostgreSQL cap the parameters).
        for chunk in ids.chunks(BRANCH_READ_CHUNK) {
            rows.extend(self.store.messages_by_ids(session.id, chunk).await?);
        }
        Ok(rows)
    }

    async fn page(
        &self,
        session: &SessionRow,
        tree: &MessageTree,
        after: Option<MessageCursor>,
        size: i32,
        all_branches: bool,
    ) -> Result<MessagePage, Error> {
        let branch = tree.branch(session.current_message_id);
        let current_message_id = branch.last().copied();
        let mut rows = if all_branches {
            self.store.messages(session.id, after, i64::from(size) + 1).await?
        } else {
            let ids: Vec<MessageId> = in_row_order(tree, &branch)
                .into_iter()
                .filter(|id| {
                    after.is_none_or(|c| {
                        tree.node(*id)
                            .is_some_and(|n| (n.created_at, n.id) > (c.created_at, c.id))
                    })
                })
                .take(size as usize + 1)
                .collect();
            self.store.messages_by_ids(session.id, &ids).await?
        };
        let next_page_token = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| {
                    MessageCursor {
                        created_at: last.created_at,
                        id: last.id,
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let messages = rows
            .into_iter()
            .map(|row| PlacedMessage {
                siblings: tree.siblings(row.id),
                row,
            })
            .collect();
        Ok(MessagePage {
            messages,
            next_page_token,
            current_message_id,
        })
    }

    /// Edits a message in place: an answer, or a question nothing follows yet. A question that
    /// was answered is not rewritten under its answers: its new text is a new version of it
    /// (SendMessage with `version_of_id`).
    pub async fn update_message(&self, user_id: OwnerId, id: MessageId, content: &str) -> Result<MessageRow, Error> {
        validation::content("content", content)?;
        let row = self.message(user_id, id).await?;
        self.open_session(user_id, row.session_id).await?;
        if row.status == MessageStatus::Streaming {
            return Err(still_streaming());
        }
        if row.role == Role::User && self.store.has_replies(id).await? {
            return Err(Error::FailedPrecondition(
                "this question has replies, which were written for its text; send the new text as a new version \
                 of it (SendMessage with version_of_id), which keeps this one and its replies as the other version"
                    .to_owned(),
            ));
        }
        let grows_by = bytes_of(content) - bytes_of(&row.content);
        let mut write = self.within_quota(user_id, &[(Quota::StoredBytes, grows_by)]).await?;
        if !write.update_message_content(id, content, now_millis()).await? {
            return Err(still_streaming());
        }
        write.commit().await?;
        self.message(user_id, id).await
    }

    /// Deletes a message and everything that followed it in its branch (the message's
    /// subtree: the versions beside it stay). When the shown branch ran through it, the
    /// branch shown next is the most recently shown one through its parent (another version,
    /// or the parent itself).
    pub async fn delete_message(&self, user_id: OwnerId, id: MessageId) -> Result<(), Error> {
        let row = self.message(user_id, id).await?;
        let session = self.open_session(user_id, row.session_id).await?;
        if row.status == MessageStatus::Streaming {
            return Err(still_streaming());
        }
        let tree = MessageTree::new(self.store.message_tree(session.id).await?);
        let doomed: HashSet<MessageId> = tree.subtree(id).into_iter().collect();
        let streaming = self.store.streaming_in_session(session.id).await?;
        if streaming.iter().any(|s| doomed.contains(s)) {
            return Err(still_streaming());
        }
        let shown_end = if tree.branch(session.current_message_id).contains(&id) {
            let rest = tree.without(&doomed);
            Some(match tree.parent(id) {
                Some(parent) => Some(rest.latest_leaf_under(parent)),
                None => rest.branch(None).last().copied(),
            })
        } else {
            None
        };
        if !self.store.delete_message_subtree(user_id, id, shown_end).await? {
            // Deleted meanwhile, or an answer below it started streaming since.
            return Err(Error::NotFound("message"));
        }
        Ok(())
    }
}

/// Ids read per statement when a whole branch is read.
const BRANCH_READ_CHUNK: usize = 500;

/// `ids` in the order rows are read and paged in (created_at, id), so that a page token means
/// the same for a branch as for the whole chat. (Along a branch this is the branch's order:
/// every message is written after the one it follows.)
fn in_row_order(tree: &MessageTree, ids: &[MessageId]) -> Vec<MessageId> {
    let mut keys: Vec<(i64, MessageId)> = ids
        .iter()
        .filter_map(|id| tree.node(*id).map(|n| (n.created_at, n.id)))
        .collect();
    keys.sort_unstable();
    keys.into_iter().map(|(_, id)| id).collect()
}

fn still_streaming() -> Error {
    Error::FailedPrecondition("the answer is still being generated; stop it first".to_owned())
}
