//! Share links: a read-only snapshot of one of the owner's chats, taken when the link is made
//! (the text is copied: later messages, edits and deletions do not reach it), read by anyone
//! holding the link's token without signing in. Only user and assistant messages that
//! finished (complete or stopped) are copied; the snapshot holds no ids, account, config or
//! system prompt, only the persona's name. Of a chat with versions, the shown branch is copied.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parley_service_kit::database::now_millis;

use super::ChatService;
use super::quotas::bytes_of;
use crate::Error;
use crate::ids::{OwnerId, SessionId, ShareLinkId};
use crate::page_token::ShareLinkCursor;
use crate::quota::Quota;
use crate::store::{MessageStatus, NewShareLink, Role, ShareLinkRow, SharedMessageRow};
use crate::validation;

/// Links one account may have at once.
pub const MAX_SHARE_LINKS_PER_ACCOUNT: i64 = 200;
/// Random bytes in a token: 256 bits, far beyond guessing.
const TOKEN_BYTES: usize = 32;
/// The length of a token as text (URL-safe base64 without padding).
const TOKEN_CHARS: usize = 43;

impl ChatService {
    pub async fn create_share_link(&self, owner: OwnerId, session_id: SessionId) -> Result<ShareLinkRow, Error> {
        let session = self.session(owner, session_id).await?;
        // The branch the owner sees, not the versions beside it.
        let messages: Vec<SharedMessageRow> = self
            .shown_branch(&session)
            .await?
            .into_iter()
            .filter(|m| matches!(m.role, Role::User | Role::Assistant))
            .filter(|m| matches!(m.status, MessageStatus::Complete | MessageStatus::Stopped))
            .filter(|m| !m.content.trim().is_empty())
            .map(|m| SharedMessageRow {
                role: m.role,
                content: m.content,
                model: m.model,
                created_at: m.created_at,
            })
            .collect();
        if messages.is_empty() {
            return Err(Error::FailedPrecondition(
                "this chat has no finished messages to share yet".to_owned(),
            ));
        }
        let persona_name = match session.persona_id {
            Some(id) => self.store.persona(owner, id).await?.map(|p| p.name).unwrap_or_default(),
            None => String::new(),
        };
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; TOKEN_BYTES]>());
        let bytes: i64 = messages.iter().map(|m| bytes_of(&m.content)).sum();
        // The copy counts toward the stored bytes like the chat itself.
        let mut write = self.within_quota(owner, &[(Quota::StoredBytes, bytes)]).await?;
        if write.count_share_links().await? >= MAX_SHARE_LINKS_PER_ACCOUNT {
            return Err(Error::LimitReached(format!(
                "you have {MAX_SHARE_LINKS_PER_ACCOUNT} share links, the most an account may have: revoke some first"
            )));
        }
        let id = write
            .insert_share_link(&NewShareLink {
                share_token: &token,
                session_id,
                title: session.title.trim(),
                persona_name: &persona_name,
                messages: &messages,
                now: now_millis(),
            })
            .await?;
        write.commit().await?;
        tracing::info!(session_id = session_id.0, link_id = id.0, "share link created");
        self.store
            .share_link(owner, id)
            .await?
            .ok_or(Error::NotFound("share link"))
    }

    /// A page of the owner's links (of one chat when `session` is given), newest first.
    pub async fn list_share_links(
        &self,
        owner: OwnerId,
        session: Option<SessionId>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<ShareLinkRow>, String), Error> {
        let size = validation::page_size("page_size", page_size)?;
        let before = if page_token.is_empty() {
            None
        } else {
            Some(
                ShareLinkCursor::decode(page_token)
                    .ok_or_else(|| Error::invalid("page_token", "is not a valid page token"))?
                    .id,
            )
        };
        if let Some(session) = session {
            self.session(owner, session).await?;
        }
        let mut rows = self
            .store
            .share_links(owner, session, before, i64::from(size) + 1)
            .await?;
        let next = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| ShareLinkCursor { id: last.id }.encode())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    pub async fn revoke_share_link(&self, owner: OwnerId, id: ShareLinkId) -> Result<(), Error> {
        if !self.store.delete_share_link(owner, id).await? {
            return Err(Error::NotFound("share link"));
        }
        tracing::info!(link_id = id.0, "share link revoked");
        Ok(())
    }

    /// The snapshot behind a token, for anyone holding it. An unknown or revoked token is
    /// NOT_FOUND, like a token that could never have been issued.
    pub async fn shared_chat(&self, share_token: &str) -> Result<(ShareLinkRow, Vec<SharedMessageRow>), Error> {
        if share_token.is_empty() {
            return Err(Error::invalid("share_token", "must not be empty"));
        }
        let well_formed = share_token.len() == TOKEN_CHARS
            && share_token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(Error::NotFound("shared chat"));
        }
        let link = self
            .store
            .share_link_by_token(share_token)
            .await?
            .ok_or(Error::NotFound("shared chat"))?;
        let messages = self.store.shared_messages(link.id).await?;
        Ok((link, messages))
    }
}
