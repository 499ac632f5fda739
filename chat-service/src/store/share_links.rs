//! `chat_share_links` and `chat_share_messages`: read-only snapshots of chats. A link goes
//! with its session (deleted with it) and with its owner's account.

use sqlx::FromRow;

use super::{ChatStore, QuotaWrite, Role};
use crate::ids::{OwnerId, SessionId, ShareLinkId};

#[derive(Debug, Clone, FromRow)]
pub struct ShareLinkRow {
    pub id: ShareLinkId,
    pub share_token: String,
    pub owner_id: OwnerId,
    pub session_id: SessionId,
    pub title: String,
    pub persona_name: String,
    pub message_count: i64,
    pub created_at: i64,
}

const LINK_COLUMNS: &str = "id, share_token, owner_id, session_id, title, persona_name, message_count, created_at";

/// A message of a snapshot.
#[derive(Debug, Clone, FromRow)]
pub struct SharedMessageRow {
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub content: String,
    pub model: String,
    pub created_at: i64,
}

/// A snapshot to store.
pub struct NewShareLink<'a> {
    pub share_token: &'a str,
    pub session_id: SessionId,
    pub title: &'a str,
    pub persona_name: &'a str,
    pub messages: &'a [SharedMessageRow],
    pub now: i64,
}

impl QuotaWrite {
    /// How many links the owner has (counted inside the write, so two creations cannot both
    /// pass a limit).
    pub async fn count_share_links(&mut self) -> Result<i64, sqlx::Error> {
        let owner = self.owner();
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chat_share_links WHERE owner_id = $1")
            .bind(owner)
            .fetch_one(self.conn())
            .await?;
        Ok(count)
    }

    pub async fn insert_share_link(&mut self, new: &NewShareLink<'_>) -> Result<ShareLinkId, sqlx::Error> {
        let owner = self.owner();
        let (id,): (ShareLinkId,) = sqlx::query_as(
            "INSERT INTO chat_share_links (share_token, owner_id, session_id, title, persona_name, message_count, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(new.share_token)
        .bind(owner)
        .bind(new.session_id)
        .bind(new.title)
        .bind(new.persona_name)
        .bind(new.messages.len() as i64)
        .bind(new.now)
        .fetch_one(self.conn())
        .await?;
        for (position, message) in new.messages.iter().enumerate() {
            sqlx::query(
                "INSERT INTO chat_share_messages (link_id, position, role, content, model, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(position as i64)
            .bind(message.role.as_str())
            .bind(&message.content)
            .bind(&message.model)
            .bind(message.created_at)
            .execute(self.conn())
            .await?;
        }
        Ok(id)
    }
}

impl ChatStore {
    pub async fn share_link(&self, owner: OwnerId, id: ShareLinkId) -> Result<Option<ShareLinkRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LINK_COLUMNS} FROM chat_share_links WHERE id = $1 AND owner_id = $2"
        )))
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await
    }

    /// The owner's links (only `session`'s when given), newest first, `limit` after id `before`.
    pub async fn share_links(
        &self,
        owner: OwnerId,
        session: Option<SessionId>,
        before: Option<ShareLinkId>,
        limit: i64,
    ) -> Result<Vec<ShareLinkRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LINK_COLUMNS} FROM chat_share_links WHERE owner_id = $1 \
             AND ($2 = 0 OR session_id = $3) AND id < $4 ORDER BY id DESC LIMIT $5"
        )))
        .bind(owner)
        .bind(i64::from(session.is_some()))
        .bind(session.map_or(0, |s| s.0))
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Deletes one of the owner's links and its snapshot. False when there is none.
    pub async fn delete_share_link(&self, owner: OwnerId, id: ShareLinkId) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM chat_share_links WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM chat_share_messages WHERE link_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the session's links and snapshots, within the transaction deleting it.
    pub(super) async fn delete_share_links_of_session(
        conn: &mut sqlx::AnyConnection,
        session: SessionId,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM chat_share_messages WHERE link_id IN (SELECT id FROM chat_share_links WHERE session_id = $1)",
        )
        .bind(session)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM chat_share_links WHERE session_id = $1")
            .bind(session)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The link with this token, whoever owns it (the token is the credential).
    pub async fn share_link_by_token(&self, share_token: &str) -> Result<Option<ShareLinkRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LINK_COLUMNS} FROM chat_share_links WHERE share_token = $1"
        )))
        .bind(share_token)
        .fetch_optional(&self.pool)
        .await
    }

    /// A snapshot's messages in order.
    pub async fn shared_messages(&self, link: ShareLinkId) -> Result<Vec<SharedMessageRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT role, content, model, created_at FROM chat_share_messages WHERE link_id = $1 ORDER BY position",
        )
        .bind(link)
        .fetch_all(&self.pool)
        .await
    }
}
