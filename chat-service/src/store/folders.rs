//! `chat_folders`: a user's folders of chats (`chat_sessions.folder_id`).

use super::{ChatStore, QuotaWrite};
use crate::ids::{FolderId, OwnerId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FolderRow {
    pub id: FolderId,
    pub user_id: OwnerId,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const FOLDER_COLUMNS: &str = "id, user_id, name, created_at, updated_at";

impl ChatStore {
    /// The user's folders by name.
    pub async fn folders(&self, user_id: OwnerId) -> Result<Vec<FolderRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FOLDER_COLUMNS} FROM chat_folders WHERE user_id = $1 ORDER BY name, id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn folder(&self, user_id: OwnerId, id: FolderId) -> Result<Option<FolderRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FOLDER_COLUMNS} FROM chat_folders WHERE id = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// False when the user has no such folder. A unique violation: the name is taken.
    pub async fn rename_folder(
        &self,
        user_id: OwnerId,
        id: FolderId,
        name: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("UPDATE chat_folders SET name = $1, updated_at = $2 WHERE id = $3 AND user_id = $4")
            .bind(name)
            .bind(now)
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the folder and moves its chats out of it, in one transaction. None when the
    /// user has no such folder; else how many chats moved.
    pub async fn delete_folder(&self, user_id: OwnerId, id: FolderId, now: i64) -> Result<Option<u64>, sqlx::Error> {
        self.delete_referenced(
            "DELETE FROM chat_folders WHERE id = $1 AND user_id = $2",
            "UPDATE chat_sessions SET folder_id = NULL, updated_at = $1 WHERE folder_id = $2 AND user_id = $3",
            user_id,
            id.0,
            now,
        )
        .await
    }

    /// An erased account's prompts and folders (a few hundred rows at most: both are limited).
    pub async fn delete_library_of(&self, owner: OwnerId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM prompts WHERE user_id = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM chat_folders WHERE user_id = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Creating a folder under the owner's lock, so two requests cannot pass the limit together.
impl QuotaWrite {
    pub async fn count_folders(&mut self) -> Result<i64, sqlx::Error> {
        let owner = self.owner();
        let (count,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM chat_folders WHERE user_id = $1")
            .bind(owner)
            .fetch_one(self.conn())
            .await?;
        Ok(count)
    }

    /// A unique violation: the name is taken.
    pub async fn insert_folder(&mut self, name: &str, now: i64) -> Result<FolderId, sqlx::Error> {
        let owner = self.owner();
        let (id,): (FolderId,) = sqlx::query_as(
            "INSERT INTO chat_folders (user_id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(owner)
        .bind(name)
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        Ok(id)
    }
}
