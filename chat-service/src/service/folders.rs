//! A user's folders of chats. A chat goes into one with UpdateSession (`folder_id`);
//! deleting a folder moves its chats out, never deletes them.

use parley_service_kit::database::{is_unique_violation, now_millis};

use super::ChatService;
use crate::Error;
use crate::ids::{FolderId, OwnerId};
use crate::store::FolderRow;
use crate::validation;

impl ChatService {
    pub async fn list_folders(&self, user_id: OwnerId) -> Result<Vec<FolderRow>, Error> {
        Ok(self.store.folders(user_id).await?)
    }

    pub async fn create_folder(&self, user_id: OwnerId, name: &str) -> Result<FolderRow, Error> {
        let name = name.trim();
        validation::name("name", name)?;
        let mut write = self.within_quota(user_id, &[]).await?;
        if write.count_folders().await? >= self.library.max_folders {
            return Err(Error::LimitReached(format!(
                "you may have at most {} folders; delete one first",
                self.library.max_folders
            )));
        }
        let id = write
            .insert_folder(name, now_millis())
            .await
            .map_err(|e| folder_name_taken(e.into()))?;
        write.commit().await.map_err(|e| folder_name_taken(e.into()))?;
        self.folder(user_id, id).await
    }

    /// Renames the folder; `name` None leaves it as it is.
    pub async fn update_folder(
        &self,
        user_id: OwnerId,
        id: FolderId,
        name: Option<String>,
    ) -> Result<FolderRow, Error> {
        let current = self.folder(user_id, id).await?;
        let Some(name) = name else { return Ok(current) };
        let name = name.trim();
        validation::name("name", name)?;
        let renamed = self
            .store
            .rename_folder(user_id, id, name, now_millis())
            .await
            .map_err(|e| folder_name_taken(e.into()))?;
        if !renamed {
            return Err(Error::NotFound("folder"));
        }
        self.folder(user_id, id).await
    }

    /// Deletes the folder; its chats stay, in no folder. Answers how many moved out.
    pub async fn delete_folder(&self, user_id: OwnerId, id: FolderId) -> Result<u64, Error> {
        self.store
            .delete_folder(user_id, id, now_millis())
            .await?
            .ok_or(Error::NotFound("folder"))
    }

    /// The user's folder; another's or a missing one answers NOT_FOUND.
    pub(super) async fn folder(&self, user_id: OwnerId, id: FolderId) -> Result<FolderRow, Error> {
        self.store.folder(user_id, id).await?.ok_or(Error::NotFound("folder"))
    }
}

fn folder_name_taken(error: Error) -> Error {
    match error {
        Error::Database(e) if is_unique_violation(&e) => Error::AlreadyExists {
            field: "name",
            reason: "you already have a folder with this name".to_owned(),
        },
        other => other,
    }
}
