//! Messages as stored: reading a session's a page at a time, editing and deleting finished
//! ones. (Writing questions and answers is a turn's: `turns`.)

use parley_service_kit::database::now_millis;

use super::ChatService;
use super::quotas::bytes_of;
use crate::Error;
use crate::ids::{MessageId, OwnerId, SessionId};
use crate::page_token::MessageCursor;
use crate::quota::Quota;
use crate::store::{MessageRow, MessageStatus};
use crate::validation;

impl ChatService {
    pub async fn list_messages(
        &self,
        user_id: OwnerId,
        session_id: SessionId,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<MessageRow>, String), Error> {
        let size = validation::page_size("page_size", page_size)?;
        let after = if page_token.is_empty() {
            None
        } else {
            Some(
                MessageCursor::decode(page_token)
                    .ok_or_else(|| Error::invalid("page_token", "is not a valid page token"))?,
            )
        };
        self.session(user_id, session_id).await?;
        let mut rows = self.store.messages(session_id, after, i64::from(size) + 1).await?;
        let next = if rows.len() > size as usize {
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
        Ok((rows, next))
    }

    pub async fn update_message(&self, user_id: OwnerId, id: MessageId, content: &str) -> Result<MessageRow, Error> {
        validation::content("content", content)?;
        let row = self.message(user_id, id).await?;
        self.open_session(user_id, row.session_id).await?;
        if row.status == MessageStatus::Streaming {
            return Err(still_streaming());
        }
        let grows_by = bytes_of(content) - bytes_of(&row.content);
        let mut write = self.within_quota(user_id, &[(Quota::StoredBytes, grows_by)]).await?;
        if !write.update_message_content(id, content, now_millis()).await? {
            return Err(still_streaming());
        }
        write.commit().await?;
        self.message(user_id, id).await
    }

    pub async fn delete_message(&self, user_id: OwnerId, id: MessageId) -> Result<(), Error> {
        let row = self.message(user_id, id).await?;
        self.open_session(user_id, row.session_id).await?;
        if row.status == MessageStatus::Streaming {
            return Err(still_streaming());
        }
        if !self.store.delete_message(user_id, id).await? {
            return Err(Error::NotFound("message"));
        }
        Ok(())
    }
}

fn still_streaming() -> Error {
    Error::FailedPrecondition("the answer is still being generated; stop it first".to_owned())
}
